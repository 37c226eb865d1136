"""The trainer: it learns, resumes bit-identically, stops on a non-finite loss, and the CLI
works end to end."""

import os
import subprocess
import sys

import numpy as np
import pytest

from fastrnn import checkpoint as ckpt
from fastrnn import train
from fastrnn.sample import evaluate_file, generate, load_model


@pytest.fixture
def corpus(tmp_path):
    """Text with structure a unigram model cannot see: words from a small lexicon."""
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "mat", "and", "dog", "ran", "home", "fast"]
    text = " ".join(rng.choice(words, 6000)) + "\n"
    p = tmp_path / "corpus.txt"
    p.write_text(text)
    return p


def cfg(corpus, out, **kw):
    base = dict(corpus=str(corpus), hidden=32, layers=1, seq=16, batch=8, steps=40,
                eval_every=20, checkpoint_every=1000, out=str(out), lr=1e-2)
    base.update(kw)
    return train.TrainConfig(**base)


def unigram_entropy(text):
    _, counts = np.unique(list(text), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def test_training_beats_a_unigram_model(corpus, tmp_path):
    t = train.Trainer(cfg(corpus, tmp_path / "run", steps=250, eval_every=50), progress=False)
    assert t.run() == "done"
    h1 = unigram_entropy(corpus.read_text())
    assert t.best_val < h1 - 0.5, (t.best_val, h1)
    model, vocab, tree = load_model(tmp_path / "run")
    assert tree["step"] == 250
    text = generate(model, vocab, 200, temperature=0.5, seed=1)
    assert len(text) == 200 and set(text) <= set(corpus.read_text())
    assert generate(model, vocab, 50, seed=3) == generate(model, vocab, 50, seed=3)
    nats, n = evaluate_file(model, vocab, corpus)
    assert n == len(corpus.read_text()) - 1 and nats < h1


@pytest.mark.parametrize("cell,dropout", [("lstm", 0.3), ("gru", 0.0)])
def test_resume_is_bit_identical(corpus, tmp_path, cell, dropout):
    """N steps + resume + N steps = 2N steps, with a schedule that does not depend on the
    budget (a decaying one is shaped over its budget: see the next test)."""
    kw = dict(cell=cell, layers=2, dropout=dropout, eval_every=7, optimizer="rmsprop",
              schedule="none")
    full = train.Trainer(cfg(corpus, tmp_path / "full", steps=30, **kw), progress=False)
    full.run()
    half = train.Trainer(cfg(corpus, tmp_path / "half", steps=15, **kw), progress=False)
    half.run()
    rest = train.Trainer(cfg(corpus, tmp_path / "half", steps=30, **kw), progress=False,
                         resume=str(tmp_path / "half" / train.CHECKPOINT))
    rest.run()
    assert_same_run(full, rest)


def assert_same_run(a, b):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    for x, y in zip(train._state_list(a.state), train._state_list(b.state)):
        np.testing.assert_array_equal(x, y)
    assert a.opt.lr == b.opt.lr


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_interrupted_decaying_schedule_resumes_bit_identically(corpus, tmp_path, monkeypatch,
                                                               schedule):
    """A run of 30 steps stopped by Ctrl-C at step 12 and resumed with the same budget equals
    the uninterrupted run: the schedule's plan is in the checkpoint, not recomputed."""
    import signal
    kw = dict(layers=2, dropout=0.2, schedule=schedule, warmup=0.2, steps=30)
    full = train.Trainer(cfg(corpus, tmp_path / "full", **kw), progress=False)
    full.run()
    assert full.opt.lr == 0.0                          # the bottom of the schedule at the end
    part = train.Trainer(cfg(corpus, tmp_path / "part", **kw), progress=False,
                         log=lambda *a: None)
    real, calls = part.model.loss_and_grad, []

    def ctrl_c_at_12(*args):
        calls.append(1)
        if len(calls) == 12:
            os.kill(os.getpid(), signal.SIGINT)        # read between steps: stops after 12
        return real(*args)
    monkeypatch.setattr(part.model, "loss_and_grad", ctrl_c_at_12)
    assert part.run() == "interrupted" and part.step == 12
    rest = train.Trainer(cfg(corpus, tmp_path / "part", **kw), progress=False,
                         resume=str(tmp_path / "part" / train.CHECKPOINT))
    assert rest.run() == "done" and rest.step == 30
    assert_same_run(full, rest)


def test_resume_refuses_another_model_or_vocabulary(corpus, tmp_path):
    t = train.Trainer(cfg(corpus, tmp_path / "r", steps=2), progress=False)
    t.run()
    path = str(tmp_path / "r" / train.CHECKPOINT)
    with pytest.raises(ckpt.CheckpointError, match="holds a different model: hidden=32"):
        train.Trainer(cfg(corpus, tmp_path / "r", hidden=48), resume=path, progress=False)
    other = tmp_path / "other.txt"
    other.write_text("xyz " * 500)
    with pytest.raises(ckpt.CheckpointError, match="different vocabulary"):
        train.Trainer(cfg(other, tmp_path / "r"), resume=path, progress=False)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(corpus, tmp_path,
                                                                  monkeypatch):
    messages = []
    t = train.Trainer(cfg(corpus, tmp_path / "nan", steps=20, checkpoint_every=4),
                      progress=False, log=messages.append)
    real = t.model.loss_and_grad
    calls = []

    def poisoned(x, y, state=None):
        calls.append(1)
        loss, state = real(x, y, state)
        return (float("nan") if len(calls) == 7 else loss), state
    monkeypatch.setattr(t.model, "loss_and_grad", poisoned)
    assert t.run() == "diverged"
    assert "loss became nan at step 7" in messages[-1]
    assert "The last good checkpoint is" in messages[-1]
    assert ckpt.load(t.checkpoint_path)["step"] == 4


def run_cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "fastrnn.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300, **kw)


def test_cli_train_sample_info_eval(corpus, tmp_path):
    out = tmp_path / "cli"
    r = run_cli("train", corpus, "--steps", 6, "--hidden", 16, "--layers", 1, "--batch", 4,
                "--seq", 8, "--eval-every", 3, "--out", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert os.path.exists(out / "checkpoint.npz") and os.path.exists(out / "log.jsonl")
    r = run_cli("sample", out, "-n", 30, "--seed", 2, "--prime", "the ")
    assert r.returncode == 0 and len(r.stdout.rstrip("\n")) == len("the ") + 30
    assert r.stdout.startswith("the ")                       # the prime is echoed first
    r = run_cli("info", out)
    assert "lstm 1 x 16" in r.stdout and "trained 6 steps" in r.stdout
    r = run_cli("eval", out, corpus)
    assert r.returncode == 0 and "bits/char" in r.stdout
    r = run_cli("sample", out, "--prime", "☃")
    assert r.returncode == 2 and "not in the training vocabulary" in r.stderr


@pytest.mark.parametrize("args,msg", [
    (["train", "--hidden", "0", "--steps", "1"], "must be >= 1"),
    (["train", "--val-fraction", "0.7", "--steps", "1"], "must be in [0, 0.5)"),
    (["train", "--schedule", "cos"], "invalid choice: 'cos'"),
    (["sample", "x", "--temperature", "0"], "must be > 0"),
    (["train", "/nonexistent/corpus.txt", "--steps", "1"], "error"),
])
def test_cli_bad_arguments_exit_2(args, msg):
    r = run_cli(*args)
    assert r.returncode == 2 and msg in r.stderr, r.stderr


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_saves_a_checkpoint_and_resume_continues(corpus, tmp_path, sig):
    import signal
    import time
    out = tmp_path / "sig"
    p = subprocess.Popen([sys.executable, "-m", "fastrnn.cli", "train", str(corpus), "--steps",
                          "1000000", "--hidden", "16", "--layers", "1", "--batch", "4", "--seq",
                          "8", "--out", str(out), "--no-progress", "--eval-every", "5"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "log.jsonl").exists():
        time.sleep(0.2)
    while time.time() < deadline and (out / "log.jsonl").stat().st_size == 0:
        time.sleep(0.2)
    p.send_signal(getattr(signal, sig))
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr
    assert "checkpoint saved" in stdout
    tree = ckpt.load(out / "checkpoint.npz")
    assert tree["step"] >= 5
    # the model settings come from the checkpoint; only the budget is given
    r = run_cli("train", "--resume", out, "--steps", tree["step"] + 3, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert ckpt.load(out / "checkpoint.npz")["step"] == tree["step"] + 3


def test_a_time_budget_picks_the_model_size(corpus, tmp_path, capsys):
    """`--time S` without --hidden/--layers/--dropout: the 2x128 LSTM while it would read the
    training text at most OVERFIT_PASSES times in S seconds, else train.LARGE_MODEL; the
    first line says what was chosen and why; given sizes and resumed runs are left alone."""
    from fastrnn import cli

    def first_line(*args):
        code = cli.main(["train", str(corpus), "--steps", "1", "--batch", "4", "--seq", "8",
                         "--no-progress", *map(str, args)])
        out = capsys.readouterr().out
        assert code == 0, out
        return out.splitlines()[0]

    big = tmp_path / "big"
    line = first_line("--time", 600, "--out", big)
    assert line.startswith("model: lstm 2 x 256, dropout 0.4,") and "and overfit" in line
    assert "chosen for --time 600 s" in line
    config = ckpt.load_run(big / "checkpoint.npz")["config"]
    assert (config["hidden"], config["layers"], config["dropout"]) == (256, 2, 0.4)
    line = first_line("--time", 1, "--out", tmp_path / "short")       # ~2 passes: the default
    assert line.startswith("model: lstm 2 x 128,") and "chosen for --time 1 s" in line
    assert "overfit" not in line
    line = first_line("--time", 600, "--hidden", 16, "--out", tmp_path / "given")
    assert line.startswith("model: lstm 2 x 16,") and "chosen" not in line
    assert cli.main(["train", "--resume", str(big), "--time", "1", "--steps", "2",
                     "--no-progress"]) == 0                             # resumed: as it was
    assert ckpt.load_run(big / "checkpoint.npz")["config"]["hidden"] == 256
    assert train.model_for_time(10, 62_000 * 10 // train.OVERFIT_PASSES)[0] == {}
    assert train.model_for_time(10, 62_000 * 10 // train.OVERFIT_PASSES - 1)[0] == \
        train.LARGE_MODEL


def test_the_large_pick_stops_after_its_passes(tmp_path, capsys):
    """The model `--time` picks when the default would overfit trains at most
    LARGE_MODEL_PASSES passes when neither --steps nor --epochs is given (then the run ends
    early, its schedule decayed to 0 at that step), also when resumed; a given --epochs is
    kept."""
    from fastrnn import cli

    p = tmp_path / "small.txt"
    p.write_text("the cat sat on the mat and ran home fast " * 30)
    t = train.Trainer(cfg(p, tmp_path / "capped", steps=None, time=600, auto_model=True,
                          hidden=128, layers=2, dropout=0.0, batch=4, seq=8),
                      progress=False)
    bpe = t.train_data.batches_per_epoch
    assert (t.cfg.hidden, t.cfg.dropout, t.cfg.epochs) == (256, 0.4, train.LARGE_MODEL_PASSES)
    assert f"stops after {train.LARGE_MODEL_PASSES} passes" in t.model_choice
    assert t.run() == "done"
    assert t.step == train.LARGE_MODEL_PASSES * bpe
    assert t.opt.lr == 0.0                          # the schedule ended where the run did
    # resumed with --time alone, the limit stays (budgets do not carry over, this one does)
    code = cli.main(["train", "--resume", str(tmp_path / "capped"), "--time", "600",
                     "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and f"past the budget --epochs {train.LARGE_MODEL_PASSES}" in err
    assert f"e.g. --epochs {2 * train.LARGE_MODEL_PASSES})" in err and "--time SECONDS" not in err
    t = train.Trainer(cfg(p, tmp_path / "given", steps=None, time=600, auto_model=True,
                          hidden=128, layers=2, epochs=1, batch=4, seq=8), progress=False)
    assert (t.cfg.hidden, t.cfg.epochs) == (256, 1) and "stops after" not in t.model_choice
