"""``fastrnn bench`` prints measured tables (numbers are checked for sanity, not speed)."""

import json

import numpy as np

from fastrnn import bench, cli
from fastrnn.compat import speed


def bench_json(capsys, *argv):
    assert cli.main(["bench", "--json", "--repeat", "1", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_bench_cells_reports_ratios(capsys):
    res = bench_json(capsys, "--cells", "rnn,lstm", "--hidden", "16", "--batch", "2",
                     "--seq", "3")
    assert [(r["cell"], r["H"]) for r in res["rows"]] == [("rnn", 16), ("lstm", 16)]
    for r in res["rows"]:
        assert r["fastrnn_tok_s"] > 0 and r["reference_tok_s"] > 0
        assert np.isclose(r["vs_reference"], r["fastrnn_tok_s"] / r["reference_tok_s"])
    assert res["sgemm_gflops"] > 0


def test_bench_model_reports_torch_free_rows_and_peak_fraction(capsys):
    res = bench_json(capsys, "--model", "--cells", "gru", "--hidden", "16", "--layers", "1,2",
                     "--batch", "2", "--seq", "3")
    rows = res["char_steps"]
    assert [(r["cell"], r["layers"]) for r in rows] == [("gru", 1), ("gru", 2)]
    for r in rows:
        flops = bench.char_step_flops("gru", r["layers"], 3, 2, 16)
        assert np.isclose(r["gflops"], flops * r["fastrnn_tok_s"] / 6 / 1e9)
        assert np.isclose(r["peak_fraction"], r["gflops"] / res["sgemm_gflops"])
    (samp,) = res["sampling"]
    assert samp["cell"] == "gru" and samp["fastrnn_chars_s"] > 0


def test_char_step_flops_counts_each_product_three_times():
    # LSTM, 2 layers, T=B=1, H=2, V=3: recurrent 2x(4*2*2), upper input 1x(4*2*2), decoder 2*3
    assert bench.char_step_flops("lstm", 2, 1, 1, 2, V=3) == 3 * 2 * (16 * 3 + 6)


def test_bench_compat_covers_every_case_and_agrees(capsys, monkeypatch):
    one_call = speed.per_call
    monkeypatch.setattr(speed, "per_call", lambda fn, min_time: one_call(fn, 0.0))
    rows = bench_json(capsys, "--compat")
    assert len(rows) == len(speed.CASES)
    for r in rows:
        assert r["max_rel_err"] < 1e-10
        assert np.isclose(r["speedup"], r["numpy_s"] / r["fastrnn_s"])
