"""What training shows: the start banner, the compile notice, a bar whose fields persist (and
the time left of a --time budget), log.jsonl's smoothed train loss with wall time, --plot."""

import json
import sys

import numba
import numpy as np
import pytest

from fastrnn import _progress, cli, train


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "corpus.txt"
    p.write_text(" ".join(rng.choice(["the", "cat", "sat", "on", "mat"], 2000)) + "\n")
    return p


def test_banner_log_records_and_smoothed_loss(corpus, tmp_path, monkeypatch):
    messages = []
    cfg = train.TrainConfig(corpus=str(corpus), hidden=8, layers=1, seq=8, batch=2, steps=13,
                            eval_every=6, eval_batches=1, log_every=4, out=str(tmp_path / "r"))
    t = train.Trainer(cfg, progress=False, log=messages.append)
    losses = []
    real = t.model.loss_and_grad

    def recording(x, y, state=None):
        loss, state = real(x, y, state)
        losses.append(loss)
        return loss, state
    monkeypatch.setattr(t.model, "loss_and_grad", recording)
    assert t.run() == "done"
    head = "\n".join(messages[:4])
    for part in ("model: lstm 1 x 8", f"{sum(p.data.size for p in t.model.parameters()):,} "
                 "parameters", f"vocabulary {t.vocab.size} characters",
                 f"{len(t.corpus.ids):,} tokens", f"run directory: {tmp_path / 'r'}",
                 "budget: 13 steps"):
        assert part in head, (part, head)
    rows = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().split("\n")
            if line]
    assert [r["step"] for r in rows] == [4, 6, 8, 12, 13]        # every 4, and evaluations
    assert ["val_loss" in r for r in rows] == [False, True, False, True, True]
    bounds = [0, 4, 6, 8, 12, 13]                                  # the mean since the last
    for r, lo, hi in zip(rows, bounds, bounds[1:]):
        assert r["train_loss"] == pytest.approx(np.mean(losses[lo:hi]), rel=1e-12)
    times = [r["time"] for r in rows]
    assert times == sorted(times) and times[0] > 0


def test_bar_fields_persist_and_a_time_budget_shows_time_left():
    bar = _progress.Progress(100, None, 0, enabled=True)
    bar.show(loss="1.500", tok_s="10,000", val="1.700")
    for step in range(1, 25):
        bar.step(step, step * 0.1)
        if step % 10 == 0:
            bar.show(loss="1.400")                       # a later update keeps val and tok/s
    assert "val=1.700" in bar.bar.postfix and "tok_s=10,000" in bar.bar.postfix
    assert "loss=1.400" in bar.bar.postfix
    bar.close()
    timed = _progress.Progress(None, 60.0, 0, enabled=True)
    timed.step(3, 12.0)
    text = str(timed.bar)
    assert "12/60 s" in text and "left" in text and "step=3" in text
    timed.close()
    both = _progress.Progress(500, 90.0, 0, enabled=True)
    both.step(1, 30.0)
    assert "time left=01:00" in both.bar.postfix
    both.close()


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing compiles without the JIT")
def test_compile_notice_fires_once_on_a_compilation_only():
    messages = []

    def make():
        return numba.njit(cache=False)(lambda x: x + 1)       # never in the on-disk cache
    with _progress.compile_notice(messages.append):
        make()(1)
        make()(2.0)
    assert messages == ["compiling kernels (once per machine: later runs load them from "
                        "numba's cache) ..."]
    make()(3)                                                 # after it: nothing
    assert len(messages) == 1


def test_plot_needs_matplotlib_before_training(corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # imports raise (even once loaded)
    code = cli.main(["train", str(corpus), "--steps", "2", "--out", str(tmp_path / "r"),
                     "--plot", "--no-progress"])
    assert code == 2
    assert "pip install 'fastrnn[plot]'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()                  # nothing trained


def test_plot_against_steps_and_time(tmp_path):
    pytest.importorskip("matplotlib")
    log = tmp_path / "log.jsonl"
    rows = [{"step": s, "time": 0.5 * s, "train_loss": 2.0 - s / 100} for s in range(10, 60, 10)]
    rows[2].update(val_loss=1.8, val_bpc=1.8 / np.log(2))
    rows.append({"step": 60, "train_loss": 1.3})             # an older record without time
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    png = _progress.plot_log(str(log), str(tmp_path / "loss.png"))
    assert (tmp_path / "loss.png").stat().st_size > 1000 and png.endswith("loss.png")
