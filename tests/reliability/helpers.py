"""Helpers of the reliability suite: tiny training configs, the CLI as a real subprocess
(signals, kill -9, locks), file listings and checkpoint comparison."""

import os
import subprocess
import sys

import numpy as np

from fastrnn import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tiny_cfg(corpus, out, **kw):
    base = dict(corpus=str(corpus), hidden=16, layers=1, seq=8, batch=4, steps=12,
                eval_every=1000, eval_batches=2, checkpoint_every=4, out=str(out), lr=1e-2)
    base.update(kw)
    return train.TrainConfig(**base)


TINY_ARGS = ["--hidden", "16", "--layers", "1", "--batch", "4", "--seq", "8",
             "--eval-batches", "2", "--no-progress"]


def cli_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("NUMBA_NUM_THREADS", "1")     # a shared 2-core machine: one thread each
    return env


def popen_cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "fastrnn.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(), **kw)


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "fastrnn.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=cli_env())


def files_under(path):
    return sorted(os.path.relpath(os.path.join(d, f), path)
                  for d, _, fs in os.walk(path) for f in fs)


def same_weights(a, b):
    """Bit-identical model weights (and the carried state) of two checkpoint trees."""
    assert a["step"] == b["step"]
    for k in a["model"]:
        np.testing.assert_array_equal(a["model"][k], b["model"][k], err_msg=k)
    for x, y in zip(a["hidden"] or [], b["hidden"] or []):
        np.testing.assert_array_equal(x, y)


def main(capsys, *args):
    """fastrnn in-process -> (exit code, stdout, stderr)."""
    from fastrnn import cli
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err
