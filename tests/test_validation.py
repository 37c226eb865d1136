"""fastrnn.validation, honest validation (issue 15): a held-out tail the model never trains
on, --val-file, the evaluation's share of the run, and the best checkpoint beside the last
one."""

import json

import numpy as np
import pytest

from fastrnn import checkpoint as ckpt
from fastrnn import cli, train
from fastrnn.sample import load_model


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(1)
    words = ["the", "cat", "sat", "on", "mat", "and", "dog", "ran", "home", "fast"]
    p = tmp_path / "corpus.txt"
    p.write_text(" ".join(rng.choice(words, 3000)) + "\n")
    return p


def cfg(corpus, out, **kw):
    base = dict(corpus=str(corpus), hidden=16, layers=1, seq=8, batch=4, steps=20,
                checkpoint_every=1000, out=str(out), lr=1e-2)
    base.update(kw)
    return train.TrainConfig(**base)


def test_the_default_holds_out_the_tail_and_never_trains_on_it(corpus, tmp_path):
    t = train.Trainer(cfg(corpus, tmp_path / "r", val_fraction=0.1), progress=False)
    ids = np.asarray(t.corpus.ids)
    cut = len(ids) - round(len(ids) * 0.1)
    tr, va = t.train_data, t.val_data
    assert tr.n_tokens == cut and tr._streams.base is not None
    # every training window lies before the cut; the held-out streams tile the tail
    seen = np.concatenate([np.asarray(x).ravel() for x, _ in
                           (tr.batch_at(k) for k in range(tr.batches_per_epoch))])
    assert len(seen) < cut
    np.testing.assert_array_equal(va._streams.ravel(), ids[cut:cut + va._streams.size])
    assert t.heldout_what == "the last 10% of the corpus"
    old = train.Trainer(cfg(corpus, tmp_path / "s", val_split="streams"), progress=False)
    assert old.val_data.split == "val" and "each of the 4 streams" in old.heldout_what


def test_val_file_in_the_vocabulary_and_out_of_it(corpus, tmp_path, capsys):
    ok = tmp_path / "val.txt"
    ok.write_text("the dog sat on the mat and ran home " * 20)
    t = train.Trainer(cfg(corpus, tmp_path / "v", val_file=str(ok)), progress=False)
    assert t.train_data.n_tokens == len(t.corpus.ids)             # the whole corpus trains
    assert t.val_data.n_tokens == len(ok.read_text())
    bad = tmp_path / "bad.txt"
    bad.write_text("the cat sat on the mat. Zürich! " * 20)
    code = cli.main(["train", str(corpus), "--steps", "1", "--out", str(tmp_path / "b"),
                     "--val-file", str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert "has 5 characters that are not in the training vocabulary" in err
    assert "'!', '.', 'Z', 'i', 'ü'" in err and "--byte" in err
    short = tmp_path / "short.txt"
    short.write_text("the cat")
    with pytest.raises(ValueError, match="held-out text .* is too short"):
        train.Trainer(cfg(corpus, tmp_path / "s", val_file=str(short)), progress=False)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_evaluation_costs_at_most_3_percent_and_ends_with_a_full_one(corpus, tmp_path):
    clock = Clock()
    t = train.Trainer(cfg(corpus, tmp_path / "e", steps=None, time=120.0), progress=False,
                      clock=clock, log=lambda *a: None)
    spent = {"train": 0.0, "eval": 0.0}
    step, loss = t._step, t.model.loss

    def timed_step(x, y):
        clock.now += 0.1
        spent["train"] += 0.1
        return step(x, y)

    def timed_loss(x, y, state=None):                  # a window costs a third of a step
        clock.now += 0.1 / 3
        spent["eval"] += 0.1 / 3
        return loss(x, y, state)
    t._step, t.model.loss = timed_step, timed_loss
    assert t.run() == "done"
    assert spent["eval"] <= 0.03 * (spent["train"] + spent["eval"]), spent
    assert clock.now <= 120.0 + 0.1                    # the final evaluation fits the budget
    with open(tmp_path / "e" / "log.jsonl") as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) >= 5                              # evaluated during the run as well
    assert t.heldout["tokens"] == t.val_data.batches_per_epoch * 8 * 4
    assert rows[-1]["heldout"] == t.heldout["loss"]


def test_best_checkpoint_is_kept_and_sample_uses_it(corpus, tmp_path, monkeypatch, capsys):
    losses = iter([1.0, 0.5, 0.8])                     # periodic evaluations at 5, 10, 15

    def fake(model, batcher, max_batches=None, prefix=None):
        if prefix is not None:                         # the final, full one at step 20
            return 0.9, 0.9
        return next(losses, 0.55)                      # 0.55: the best model's full one
    monkeypatch.setattr(train, "evaluate", fake)
    out = tmp_path / "b"
    t = train.Trainer(cfg(corpus, out, eval_every=5), progress=False)
    assert t.run() == "done"
    assert t.best == {"step": 10, "loss": 0.5, "heldout": 0.55} and t.best_val == 0.55
    assert t.heldout["loss"] == 0.9 and t.heldout["step"] == 20
    assert ckpt.load(out / "best.npz")["step"] == 10
    assert ckpt.load(out / "checkpoint.npz")["step"] == 20
    assert load_model(str(out), best=True)[2]["step"] == 10
    assert load_model(str(out))[2]["step"] == 20
    assert cli.main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "held-out loss: 0.9000 nats/char" in text and "best checkpoint (step 10)" in text
    # a new run in the same directory does not inherit that best.npz
    monkeypatch.undo()
    t = train.Trainer(cfg(corpus, out, steps=3), progress=False)
    assert t.run() == "done" and ckpt.load(out / "best.npz")["step"] == 3
