"""Faults that need a real process: kill -9 in the middle of a checkpoint write, SIGINT and
SIGTERM to ``fastrnn train`` (then ``--resume`` must continue bit-identically), and two
trainers on one run directory."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from fastrnn import checkpoint as ckpt
from fastrnn import train
from reliability.helpers import (TINY_ARGS, cli_env, files_under, popen_cli, run_cli,
                                 same_weights, tiny_cfg)

# A child that writes checkpoints of a ~7 MB model in a loop and prints each step once its
# checkpoint is on disk: killing it at a random moment lands inside a write most of the time.
SAVER = """
import sys
from fastrnn import train
cfg = train.TrainConfig(corpus=sys.argv[1], out=sys.argv[2], hidden=256, layers=2, seq=8,
                        batch=4, steps=10, eval_batches=2)
t = train.Trainer(cfg, progress=False)
step = 0
while True:
    step += 1
    t.step = step
    t.save()
    print(step, flush=True)
"""


def wait_for(pred, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_kill_9_during_checkpoint_writes_keeps_a_loadable_checkpoint(corpus, tmp_path):
    out = tmp_path / "run"
    rng = random.Random(0)
    torn = 0
    for trial in range(6):
        p = subprocess.Popen([sys.executable, "-c", SAVER, str(corpus), str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=cli_env())
        assert p.stdout.readline().strip() == "1", p.stderr.read()  # one checkpoint exists
        time.sleep(rng.uniform(0, 0.6))
        p.send_signal(signal.SIGKILL)
        rest, _ = p.communicate(timeout=60)
        printed = int(([line for line in rest.split()] or ["1"])[-1])
        torn += any(f.endswith(".tmp") for f in os.listdir(out))
        tree = ckpt.load(out / "checkpoint.npz")            # never torn
        assert printed <= tree["step"] <= printed + 1
    print(f"{torn} of 6 kills left a half-written temporary file")
    # resume works, and the locked run removes the dead writers' temporary files
    t = train.Trainer(tiny_cfg(corpus, out, hidden=256, layers=2, steps=tree["step"] + 2),
                      progress=False, resume=str(out / "checkpoint.npz"), log=lambda *a: None)
    assert t.run() == "done"
    assert ckpt.load(out / "checkpoint.npz")["step"] == tree["step"] + 2
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_saves_and_resume_is_bit_identical_to_an_uninterrupted_run(corpus, tmp_path,
                                                                          sig):
    steps = 400
    common = [*TINY_ARGS, "--eval-every", "5", "--checkpoint-every", "50", "--dropout", "0.2",
              "--layers", "2"]
    out = tmp_path / "run"
    p = popen_cli("train", corpus, "--steps", steps, "--out", out, *common)
    assert wait_for(lambda: (out / "log.jsonl").exists() and (out / "log.jsonl").stat().st_size)
    time.sleep(random.Random(str(sig)).uniform(0, 0.5))
    p.send_signal(sig)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "checkpoint saved" in stdout
    stopped = ckpt.load(out / "checkpoint.npz")["step"]
    assert 5 <= stopped < steps
    r = run_cli("train", "--resume", out, "--steps", steps, "--no-progress")
    assert r.returncode == 0, r.stderr
    full = tmp_path / "full"
    r = run_cli("train", corpus, "--steps", steps, "--out", full, *common)
    assert r.returncode == 0, r.stderr
    same_weights(ckpt.load(full / "checkpoint.npz"), ckpt.load(out / "checkpoint.npz"))


def test_a_second_trainer_on_the_same_run_directory_is_refused(corpus, tmp_path):
    out = tmp_path / "run"
    p = popen_cli("train", corpus, "--steps", 1000000, "--out", out, *TINY_ARGS,
                  "--eval-every", "5", "--checkpoint-every", "20")
    try:
        assert wait_for(lambda: (out / "log.jsonl").exists()
                        and (out / "log.jsonl").stat().st_size)
        r = run_cli("train", corpus, "--steps", 5, "--out", out, *TINY_ARGS)
        assert r.returncode == 2, r.stderr
        assert f"the run directory {out} is in use by another fastrnn train (pid {p.pid})" \
            in r.stderr
        assert "wait for it to finish or choose another --out" in r.stderr
        r = run_cli("train", "--resume", out, "--steps", 5, "--no-progress")
        assert r.returncode == 2 and "is in use by another fastrnn train" in r.stderr
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=120)
    assert p.returncode == 130
    assert ckpt.load(out / "checkpoint.npz")["step"] >= 5


def test_a_crashed_trainer_leaves_no_lock_behind(corpus, tmp_path):
    """flock locks die with their process: kill -9 must not block the next run forever."""
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                               "from fastrnn import train\n"
                               "lock = train.lock_run_dir(sys.argv[1])\n"
                               "print('locked', flush=True)\n"
                               "time.sleep(600)\n", str(out)],
                              stdout=subprocess.PIPE, text=True, env=cli_env())
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(train.RunLockedError, match=f"pid {holder.pid}"):
        train.Trainer(tiny_cfg(corpus, out), progress=False)
    holder.kill()
    holder.communicate(timeout=60)
    assert (out / train.LOCK).exists()                       # the file stays, the lock not
    t = train.Trainer(tiny_cfg(corpus, out, steps=2), progress=False, log=lambda *a: None)
    assert t.run() == "done"
    assert ".lock" in files_under(out)


def test_the_lock_is_held_only_while_training(corpus, tmp_path):
    out = tmp_path / "run"
    t = train.Trainer(tiny_cfg(corpus, out, steps=2), progress=False, log=lambda *a: None)
    seen = []
    real = t._step

    def step(x, y):
        try:
            train.lock_run_dir(str(out)).close()
            seen.append("free")
        except train.RunLockedError:
            seen.append("locked")
        return real(x, y)
    t._step = step
    t.run()
    assert seen == ["locked", "locked"]
    train.lock_run_dir(str(out)).close()                    # released after run()
