"""Runs, memory and failure paths (issue 19): a user's ``latest`` is never replaced, a model
too big for the machine is refused with the estimate, ``sample -n`` keeps no text, a full disk ends with exit 1 naming the last good checkpoint, and Ctrl-C anywhere prints one
line and exits 130 (the corpus cache and the stack step: test_cache_and_stack.py)."""

import errno
import importlib.util
import os
import signal
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

from fastrnn import _checks as ck
from fastrnn import checkpoint as ckpt
from fastrnn import _progress, sample, train
from reliability.helpers import TINY_ARGS, cli_env, files_under, main, tiny_cfg


# ---------------------------------------------------------------- runs/latest

@pytest.mark.parametrize("kind", ["file", "directory", "foreign-link", "relative-link"])
def test_a_users_latest_is_never_replaced(capsys, tmp_path, corpus, kind):
    runs = tmp_path / "runs"
    runs.mkdir()
    latest = runs / "latest"
    if kind == "file":
        latest.write_text("my notes\n")
    elif kind == "directory":
        latest.mkdir()
        (latest / "x").write_text("mine")
    elif kind == "foreign-link":
        (tmp_path / "elsewhere").mkdir()
        latest.symlink_to(tmp_path / "elsewhere")
    else:
        latest.symlink_to("somewhere")
    (runs / "latest.tmp").write_text("also mine\n")       # the old code unlinked it
    before = {f: (runs / f).read_bytes() for f in ("latest.tmp",)}
    link = os.readlink(latest) if latest.is_symlink() else None
    code, out, err = main(capsys, "train", corpus, "--out", runs / "r1", "--steps", 2,
                          *TINY_ARGS)
    assert code == 0, err
    assert f"warning: {latest} is not fastrnn's link to its latest run: left as it is" in out
    assert out.count("is not fastrnn's link") == 1
    if kind == "file":
        assert latest.read_text() == "my notes\n" and not latest.is_symlink()
    elif kind == "directory":
        assert (latest / "x").read_text() == "mine" and not latest.is_symlink()
    else:
        assert os.readlink(latest) == link
    assert {f: (runs / f).read_bytes() for f in before} == before


def test_fastrnns_own_latest_link_moves_to_the_newest_run(capsys, tmp_path, corpus):
    runs = tmp_path / "runs"
    for name in ("r1", "r2"):
        code, out, err = main(capsys, "train", corpus, "--out", runs / name, "--steps", 2,
                              *TINY_ARGS)
        assert code == 0 and "not fastrnn's link" not in out, err
        assert os.readlink(runs / "latest") == str(runs / name)
    (runs / "r1").rename(runs / "gone")                   # a dangling link of its own
    os.unlink(runs / "latest")
    os.symlink(str(runs / "r1"), runs / "latest")
    code, out, err = main(capsys, "train", corpus, "--out", runs / "r3", "--steps", 2,
                          *TINY_ARGS)
    assert code == 0 and os.readlink(runs / "latest") == str(runs / "r3")
    assert not [f for f in os.listdir(runs) if f.startswith(".latest")]


# ---------------------------------------------------------------- memory

@pytest.mark.parametrize("args,what", [
    (["--hidden", "1000000000"], "hidden size 1000000000"),
    (["--layers", "100000000"], "a 100000000-layer lstm"),
    (["--hidden", "30000", "--layers", "6"], "hidden size 30000")])
def test_a_model_too_big_for_the_machine_is_refused_with_the_estimate(capsys, tmp_path, corpus,
                                                                     args, what):
    out = tmp_path / "run"
    code, _, err = main(capsys, "train", corpus, "--out", out, "--steps", 1, "--batch", 4,
                        "--seq", 8, "--no-progress", *args)
    assert code == 2, err
    assert what in err and "needs about" in err and "GiB to train (parameters" in err
    assert "available; use a smaller --hidden, --layers, --batch or --seq" in err
    assert not out.exists()


def test_the_memory_estimate_covers_what_training_allocates(corpus, tmp_path):
    """The estimate is not a guess in the dark: it is at least the parameters, gradients and
    optimizer state a real (small) run holds, and the refusal follows the available memory."""
    for cell, opt, rollback in (("lstm", "adam", True), ("gru", "rmsprop", False)):
        t = train.Trainer(tiny_cfg(corpus, tmp_path / f"r-{cell}", cell=cell, optimizer=opt,
                                   layers=2, on_nan="rollback" if rollback else "stop"),
                          progress=False, log=lambda *a: None)
        t.run()
        held = sum(p.data.nbytes + p.grad.nbytes for p in t.params)
        held += sum(a.nbytes for k, a in t.opt.state_dict().items() if isinstance(a, np.ndarray))
        est = ck.training_memory(cell, 16, 2, t.vocab.size, 4, 8, "float32", opt, rollback)
        params = sum(p.data.nbytes for p in t.params)
        assert est["parameters"] == params
        assert held <= est["total"] < 20 * held + 10 * est["activations"]
        with pytest.raises(ValueError, match="needs about"):
            ck.check_training_memory(cell, 16, 2, t.vocab.size, 4, 8, "float32", opt, rollback,
                                     available=est["total"] - 1)
        ck.check_training_memory(cell, 16, 2, t.vocab.size, 4, 8, "float32", opt, rollback,
                                 available=est["total"])
    assert ck.available_memory() > 0


# ---------------------------------------------------------------- sample -n

def test_streamed_sampling_keeps_no_text(tmp_path, corpus):
    """sample -n 10**9 used to keep all the text (about 2 GB) while streaming it."""
    out = tmp_path / "run"
    train.Trainer(tiny_cfg(corpus, out, steps=2, hidden=8), progress=False,
                  log=lambda *a: None).run()
    model, vocab, _ = sample.load_model(out)
    n, chars = 100_000, []
    sample.generate(model, vocab, 200, seed=1, write=lambda s: None)         # warm up
    tracemalloc.start()
    try:
        got = sample.generate(model, vocab, n, seed=1,
                              write=lambda s: chars.append(len(s)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got is None and sum(chars) == n
    assert peak < 64_000, peak                      # the text alone would be 100 kB and more
    assert len(sample.generate(model, vocab, 300, seed=1)) == 300    # no write: returned


# ---------------------------------------------------------------- a full disk on the way out

def test_a_full_disk_ends_with_exit_1_naming_the_last_good_checkpoint(capsys, tmp_path, corpus,
                                                                     monkeypatch):
    """After the first checkpoint every write fails with ENOSPC: checkpoints, log.jsonl (whose
    close used to raise before the final save was tried: exit 2, a bare errno message), the
    latest link and the loss plot. Every one is reported, the run ends with exit 1."""
    out = tmp_path / "run"
    enospc = OSError(errno.ENOSPC, "No space left on device")
    real_savez, real_save, full = ckpt.np.savez, ckpt.save, []

    def savez(f, **arrays):
        if full:
            raise enospc
        return real_savez(f, **arrays)

    def save(path, tree):                  # the disk fills up once checkpoint.npz is written
        real_save(path, tree)
        if str(path).endswith("checkpoint.npz"):
            full.append(path)

    class FullFile:
        def __init__(self, f):
            self.f = f

        def write(self, s):
            return len(s)

        def flush(self):
            raise enospc

        def close(self):
            self.f.close()
            raise enospc

    real_open = open

    def fake_open(path, *a, **k):
        f = real_open(path, *a, **k)
        return FullFile(f) if str(path).endswith("log.jsonl") else f

    def full_symlink(*a, **k):
        raise enospc

    def full_plot(*a, **k):
        raise enospc
    monkeypatch.setattr(ckpt.np, "savez", savez)
    monkeypatch.setattr(ckpt, "save", save)
    monkeypatch.setattr(_progress, "open", fake_open, raising=False)   # log.jsonl
    monkeypatch.setattr(train.os, "symlink", full_symlink)
    monkeypatch.setattr(train, "plot_log", full_plot)
    plot = ["--plot"] if importlib.util.find_spec("matplotlib") else []    # the plot extra
    code, text, err = main(capsys, "train", corpus, "--out", out, "--steps", 9,
                           "--checkpoint-every", 4, "--eval-every", 2, *plot, *TINY_ARGS)
    assert code == 1, err
    assert f"warning: cannot write {out / 'log.jsonl'}: [Errno 28]" in text
    assert text.count("cannot write") == 1                      # reported once
    assert "warning: step 8: [Errno 28] could not write checkpoint" in text
    assert "error: step 9: [Errno 28] could not write checkpoint" in text
    assert "The last good checkpoint is" in text and "(step 4)" in text
    assert "save_failed after 9 steps" in text
    assert not plot or "warning: could not write the loss curves: [Errno 28]" in err
    assert f"warning: could not update the link {out.parent / 'latest'}: [Errno 28]" in text
    assert ckpt.load_run(out / "checkpoint.npz")["step"] == 4


# ---------------------------------------------------------------- Ctrl-C

def test_ctrl_c_during_the_final_save_aborts_it_keeping_the_last_good_one(capsys, tmp_path,
                                                                          corpus, monkeypatch):
    """A (second) Ctrl-C while the final checkpoint is written: one line, exit 130, the
    previous checkpoint intact, no temporary file."""
    out = tmp_path / "run"
    real_savez, saves = ckpt.np.savez, []

    def savez(f, **arrays):
        saves.append(1)
        if len(saves) == 2:                            # the final save: Ctrl-C mid-write
            real_savez(f, **arrays)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)                              # the handler raises in here
        return real_savez(f, **arrays)
    monkeypatch.setattr(ckpt.np, "savez", savez)
    code, text, err = main(capsys, "train", corpus, "--out", out, "--steps", 6,
                           "--checkpoint-every", 4, *TINY_ARGS)
    assert code == 130, err
    assert "aborted at step 6 without saving it" in text and "(step 4)" in text
    assert ckpt.load_run(out / "checkpoint.npz")["step"] == 4
    assert not [f for f in files_under(out) if ".tmp" in f]


STARTER = """
import sys, time
import fastrnn.cli
if sys.argv[1] == "corpus":                 # start-up made slow where the signal must land
    from fastrnn import data
    real = data.load_corpus
    def load_corpus(*a, **k):
        print("ready", flush=True)
        time.sleep(30)
        return real(*a, **k)
    data.load_corpus = load_corpus
else:                                       # inside main, before numpy and numba load
    real = fastrnn.cli.build_parser
    def build_parser():
        print("ready", flush=True)
        return real()
    fastrnn.cli.build_parser = build_parser
sys.exit(fastrnn.cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("where", ["imports", "corpus"])
def test_ctrl_c_during_start_up_is_one_line_and_exit_130(tmp_path, corpus, where):
    """Ctrl-C while fastrnn imports numpy and numba, or encodes the corpus: it used to print
    a KeyboardInterrupt traceback."""
    out = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-c", STARTER, where, "train", str(corpus), "--out",
                          str(out), "--steps", "100000", *TINY_ARGS],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=cli_env())
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    if "checkpoint saved" not in stdout:             # still starting up: one line
        assert stdout == "" and stderr in ("fastrnn train: interrupted\n",
                                           "fastrnn: interrupted\n"), stderr
    if where == "corpus":
        assert stdout == "" and stderr == "fastrnn train: interrupted\n"


def test_ctrl_c_during_sample_is_one_line_and_exit_130(tmp_path, corpus):
    out = tmp_path / "run"
    train.Trainer(tiny_cfg(corpus, out, steps=2), progress=False, log=lambda *a: None).run()
    p = subprocess.Popen([sys.executable, "-m", "fastrnn.cli", "sample", str(out), "-n",
                          "1000000000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=cli_env())
    assert p.stdout.read(64)                                   # it is generating
    p.send_signal(signal.SIGINT)
    _, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr
    assert stderr.decode() == "fastrnn sample: interrupted\n"
