"""``fastrnn bench`` prints measured tables (numbers are checked for sanity, not speed)."""

import json

import numpy as np

from fastrnn import cli
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


def test_bench_compat_covers_every_case_and_agrees(capsys, monkeypatch):
    one_call = speed.per_call
    monkeypatch.setattr(speed, "per_call", lambda fn, min_time: one_call(fn, 0.0))
    rows = bench_json(capsys, "--compat")
    assert len(rows) == len(speed.CASES)
    for r in rows:
        assert r["max_rel_err"] < 1e-10
        assert np.isclose(r["speedup"], r["numpy_s"] / r["fastrnn_s"])
