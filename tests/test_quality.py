"""fastrnn.quality, ``fastrnn bench --quality``: both trainers run for the budget and are
scored the same way."""

import numpy as np
import pytest

from fastrnn import bench, train


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(2)
    words = ["def", "return", "self", "import", "class", "if", "else", "for", "in", "x"]
    p = tmp_path / "c.txt"
    p.write_text(" ".join(rng.choice(words, 6000)) + "\n")
    return p


def test_heldout_loss_reads_every_window(corpus):
    from fastrnn import data, nn
    ids = data.load_corpus(str(corpus), progress=False).ids
    model = nn.CharRNN(int(ids.max()) + 1, 8, 1)
    full = train.heldout_loss(model, ids[:5000], streams=10, seq=7)
    # by hand: 10 streams of 500, windows of 7 over the first 499 + 1 of each, state carried
    total, n = 0.0, 0
    streams = np.asarray(ids[:5000]).reshape(10, 500)
    state = None
    for k in range(498 // 7):
        w = streams[:, k * 7:k * 7 + 8].T.astype(np.int64)
        loss, state = model.loss(np.ascontiguousarray(w[:-1]), np.ascontiguousarray(w[1:]),
                                 state)
        total, n = total + loss * 70, n + 70
    assert full == pytest.approx(total / n, rel=1e-6)


def test_bench_quality_trains_both_and_scores_them(corpus, capsys):
    pytest.importorskip("torch")
    res = bench.run_quality(seconds=1.0, use_torch=True, threads=1, corpus=str(corpus))
    out = capsys.readouterr().out
    assert res["fastrnn"]["steps"] >= 1 and res["torch"]["steps"] >= 1
    for who in ("fastrnn", "torch"):
        assert 0 < res[who]["heldout"] < 5, res
    assert res["fastrnn_minus_torch"] == pytest.approx(res["fastrnn"]["heldout"]
                                                       - res["torch"]["heldout"])
    assert "held-out loss" in out and "fastrnn - torch:" in out
    total = res["train_tokens"] + res["heldout_tokens"]
    assert abs(res["heldout_tokens"] - 0.1 * total) <= 1               # a 90/10 split
