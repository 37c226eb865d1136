"""Data parallelism over MPI (fastrnn.dist): N ranks give the results of one process.

Each test launches ``mpiexec -n N python rank_main.py`` (tiny float64 models, a tiny corpus,
NUMBA_NUM_THREADS=1 in every rank) with a timeout. Skipped without mpi4py or mpiexec
(``pip install -e ".[dist]"`` installs both).
"""

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="needs mpi4py: pip install -e '.[dist]'")


def _mpiexec():
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")  # the venv's (mpich wheel)
    return beside if os.path.exists(beside) else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="needs mpiexec on PATH: "
                                "pip install -e '.[dist]' installs the mpich wheel")
MAIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rank_main.py")
TIMEOUT = 300               # a cold numba cache compiles for a while; a hang must still end
RTOL = 1e-10                # float64 round-off: the ranks group the sums differently


def run(n, kw, env=None, timeout=TIMEOUT, check=True, cmd=None):
    """Train with ``kw`` in 1 plain process (n=0), or under ``mpiexec -n n``."""
    full_env = {**os.environ, "NUMBA_NUM_THREADS": "1", **(env or {})}
    full_env.pop("FASTRNN_MPI", None)
    cmd = cmd or [sys.executable, MAIN, json.dumps(kw)]
    if n:
        cmd = [MPIEXEC, "-n", str(n)] + cmd
    p = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def config(corpus, out, **kw):
    base = dict(corpus=str(corpus), cell="lstm", hidden=12, layers=2, seq=8, batch=6, steps=20,
                eval_every=5, eval_batches=3, checkpoint_every=10, dtype="float64",
                optimizer="adam", lr=1e-2, out=str(out),
                schedule="none")       # N + resume + N steps = 2N needs a budget-free schedule
    base.update(kw)
    return base


def log(out):
    with open(os.path.join(out, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


def weights(out, rank=0):
    with np.load(os.path.join(out, f"weights-rank{rank}.npz")) as z:
        return {k: z[k] for k in z.files}


def statuses(out, n):
    out = str(out)
    assert not os.path.exists(os.path.join(out, f"weights-rank{n}.json"))
    result = []
    for r in range(n):
        with open(os.path.join(out, f"weights-rank{r}.json")) as f:
            result.append(json.load(f))
    return result


def assert_same_run(a, b, rtol=RTOL):
    la, lb = log(a), log(b)
    assert [r["step"] for r in la] == [r["step"] for r in lb]
    for key in ("train_loss", "val_loss", "tokens"):
        np.testing.assert_allclose([r[key] for r in la], [r[key] for r in lb], rtol=rtol,
                                   err_msg=key)
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_allclose(wa[k], wb[k], rtol=rtol, atol=1e-13, err_msg=k)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = np.random.default_rng(0)
    words = "the quick brown fox jumps over a lazy dog while seven cats sleep".split()
    p = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    p.write_text(" ".join(rng.choice(words, 2500)) + "\n")
    return p


# (ranks, B, cell, dropout): an even split with dropout (masks drawn for all B streams and
# sliced), and an uneven one (streams 3 + 2 + 2, gradients weighted by token share).
CASES = [(2, 6, "lstm", 0.3), (3, 7, "gru", 0.0)]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c[0]}ranks-B{c[1]}-{c[2]}")
def pair(request, corpus, tmp_path_factory):
    """One plain process and N ranks on the same config; the single run goes first, so it
    fills the numba cache the ranks then share."""
    n, batch, cell, dropout = request.param
    d = tmp_path_factory.mktemp(f"pair{n}")
    kw = dict(batch=batch, cell=cell, dropout=dropout)
    run(0, config(corpus, d / "single", **kw))
    p = run(n, config(corpus, d / "ranks", **kw))
    return n, d / "single", d / "ranks", p


def test_n_ranks_give_the_loss_curve_and_weights_of_one_process(pair):
    n, single, ranks, p = pair
    assert [(s["rank"], s["size"], s["status"]) for s in statuses(ranks, n)] \
        == [(r, n, "done") for r in range(n)]
    assert len(log(ranks)) == 4                      # eval_every=5 over 20 steps
    assert_same_run(single, ranks)


def test_weights_are_bit_identical_on_every_rank(pair):
    n, _, ranks, _ = pair
    digests = set()
    for r in range(n):
        w = weights(ranks, r)
        digests.add(b"".join(np.ascontiguousarray(w[k]).tobytes() for k in sorted(w)))
    assert len(digests) == 1


def test_rank_0_alone_writes(pair):
    _, _, ranks, _ = pair
    assert sorted(f for f in os.listdir(ranks) if not f.startswith(("weights", "."))) \
        == ["best.npz", "checkpoint.npz", "log.jsonl"]
    assert len(log(ranks)) == 4                      # one line per evaluation, not one per rank


def test_checkpoint_written_by_n_ranks_resumes_on_m_ranks(corpus, tmp_path):
    from fastrnn import checkpoint

    kw = config(corpus, tmp_path / "whole")
    run(0, kw)                                       # 20 steps in one process
    half = dict(kw, steps=10)
    run(2, dict(half, out=str(tmp_path / "two")))    # 10 steps on 2 ranks ...
    run(0, dict(half, out=str(tmp_path / "one")))    # ... and in one process
    a = checkpoint.load(str(tmp_path / "two" / "checkpoint.npz"))
    b = checkpoint.load(str(tmp_path / "one" / "checkpoint.npz"))
    assert a["data"] == b["data"] and a["step"] == b["step"] == 10
    for ha, hb in zip(a["hidden"], b["hidden"]):     # all 6 streams gathered, in order
        assert ha.shape == hb.shape == (2, 6, 12)
        np.testing.assert_allclose(ha, hb, rtol=RTOL, atol=1e-13)
    # 2 ranks -> 1 process, and 1 process -> 2 ranks: both continue as the uninterrupted run
    for n, d in ((0, "two"), (2, "one")):
        run(n, dict(kw, out=str(tmp_path / d), resume=str(tmp_path / d / "checkpoint.npz")))
    for d in ("two", "one"):
        np.testing.assert_allclose([r["train_loss"] for r in log(tmp_path / d)],
                                   [r["train_loss"] for r in log(tmp_path / "whole")], rtol=RTOL)
        for k, v in weights(tmp_path / "whole").items():
            np.testing.assert_allclose(weights(tmp_path / d)[k], v, rtol=RTOL, atol=1e-13)


@pytest.mark.parametrize("on_nan", ["skip", "rollback"])
def test_a_nan_gradient_on_one_rank_is_handled_alike_on_all(corpus, tmp_path, on_nan):
    # a NaN in rank 1's gradient at step 13 reaches every rank through the Allreduce: all
    # skip the update (or roll back to the step-10 state and halve lr) as one process does
    kw = config(corpus, tmp_path / "single", on_nan=on_nan)
    run(0, kw, env={"FASTRNN_TEST_NAN": "0:13"})
    p = run(2, dict(kw, out=str(tmp_path / "ranks")), env={"FASTRNN_TEST_NAN": "1:13"})
    assert ("update skipped" if on_nan == "skip" else "rolled back to step 10") in p.stdout
    assert_same_run(tmp_path / "single", tmp_path / "ranks")
    for r in range(2):
        assert all(np.isfinite(v).all() for v in weights(tmp_path / "ranks", r).values())


def test_a_config_mismatch_between_ranks_is_caught_at_start(corpus, tmp_path):
    args = ["-m", "fastrnn.cli", "train", str(corpus), "--steps", "5", "--hidden", "8",
            "--batch", "4", "--seq", "8", "--no-progress", "--out", str(tmp_path / "run")]
    cmd = [sys.executable] + args + ["--lr", "0.002", ":", "-n", "1", sys.executable] + args \
        + ["--lr", "0.003"]
    p = run(1, None, cmd=cmd, check=False, timeout=120)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "the ranks disagree on the config and corpus: lr=0.003 on rank 1 but 0.002 on " \
           "rank 0" in p.stderr
    assert p.stderr.count("disagree") == 1           # one message, from rank 0
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_fewer_streams_than_ranks_is_a_clear_error(corpus, tmp_path):
    p = run(2, config(corpus, tmp_path / "run", batch=1), check=False, timeout=120)
    assert p.returncode != 0
    assert "batch=1 streams cannot be shared by 2 ranks" in p.stderr


def test_a_time_budget_stops_every_rank_at_the_same_step(corpus, tmp_path):
    out = tmp_path / "run"
    run(2, config(corpus, out, steps=None, time=2.0, eval_every=1000, checkpoint_every=1000))
    assert [s["status"] for s in statuses(out, 2)] == ["done"] * 2
    w0, w1 = weights(out, 0), weights(out, 1)
    assert all(np.array_equal(w0[k], w1[k]) for k in w0)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_signal_stops_every_rank_at_the_same_step_with_a_checkpoint(corpus, tmp_path, sig):
    import signal

    from fastrnn import checkpoint

    out = tmp_path / "run"
    kw = config(corpus, out, steps=100000, eval_every=2, checkpoint_every=100000)
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    proc = subprocess.Popen([MPIEXEC, "-n", "2", sys.executable, MAIN, json.dumps(kw)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t = time.perf_counter()
        while not (out / "log.jsonl").exists() or not log(out):     # training is under way
            assert time.perf_counter() - t < TIMEOUT and proc.poll() is None
            time.sleep(0.2)
        proc.send_signal(getattr(signal, sig))       # mpiexec forwards it to both ranks
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, stdout + stderr      # rank_main returns normally
    assert [s["status"] for s in statuses(out, 2)] == ["interrupted"] * 2
    tree = checkpoint.load(str(out / "checkpoint.npz"))
    assert 2 <= tree["step"] < 100000
    w0, w1 = weights(out, 0), weights(out, 1)        # both ranks stopped at the same step
    assert all(np.array_equal(w0[k], w1[k]) for k in w0)
    assert all(np.array_equal(tree["model"][k], w0[k]) for k in w0)


@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_dying_rank_ends_the_run(corpus, tmp_path, how):
    t = time.perf_counter()
    p = run(2, config(corpus, tmp_path / "run", steps=1000, checkpoint_every=1000),
            env={"FASTRNN_TEST_DIE": f"1:3:{how}"}, check=False, timeout=120)
    assert p.returncode != 0
    assert time.perf_counter() - t < 60
    if how == "raise":                   # our message, then MPI_Abort
        assert "rank_main (rank 1 of 2): error:" in p.stderr
        assert "RuntimeError: test fault on rank 1 at step 3" in p.stderr
        assert "aborting all 2 ranks" in p.stderr
    else:                                # mpiexec (hydra) notices the signal and ends rank 0
        assert "KILLED BY SIGNAL: 9" in p.stdout + p.stderr or "signal 9" in p.stdout + p.stderr
    assert not (tmp_path / "run" / "weights-rank0.npz").exists()
