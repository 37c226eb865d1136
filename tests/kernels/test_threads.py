"""1 thread vs 2 threads give the same results to round-off; kernels are safe to call from
several Python threads at once (the threading layer is never workqueue)."""

import importlib.metadata
import os
import threading

import numba
import numpy as np
import pytest

import fastrnn
import fastrnn.kernels as K
from fastrnn.kernels import _blocks, _bptt
from cells import CELL_NAMES, Cell, rel_err


def run(name, threads, truncate):
    fastrnn.set_num_threads(threads)
    try:
        cell = Cell(name, K)
        rng = np.random.default_rng(0)
        T, B, D, H = 6, 3, 5, 48                  # H=48: two chunks of hidden units
        x = rng.normal(size=(T, B, D))
        states, params = cell.states(rng, B, H), cell.params(rng, D, H)
        hs, fin, cache = cell.forward(x, states, params)
        grads = cell.backward(rng.normal(size=(T, B, H)), cache, truncate=truncate)
        return (hs,) + fin + (grads[0],) + grads[1] + grads[2]
    finally:
        fastrnn.set_num_threads(numba.config.NUMBA_NUM_THREADS)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
@pytest.mark.parametrize("truncate", [None, 2])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_one_thread_equals_two_threads(name, truncate):
    one = run(name, 1, truncate)
    two = run(name, 2, truncate)
    for a, b in zip(one, two):
        assert rel_err(a, b) < 1e-12


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
@pytest.mark.parametrize("truncate", [None, 2])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_serial_path_equals_parallel(name, truncate, monkeypatch):
    """Small problems run the serial copies of the loops and products (no parallel region)."""
    parallel = run(name, 2, truncate)                     # MIN_MACS_PER_THREAD = 1 here
    monkeypatch.setattr(_blocks, "MIN_MACS_PER_THREAD", 1 << 40)
    serial = run(name, 2, truncate)
    for a, b in zip(serial, parallel):
        assert rel_err(a, b) < 1e-12


def test_threading_layer_is_thread_safe():
    run("lstm", 2, None)
    assert numba.threading_layer() in ("omp", "tbb")


def _tbb_installed():
    try:
        importlib.metadata.version("tbb")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(not _tbb_installed(), reason="tbb is not installed on this platform")
@pytest.mark.skipif("NUMBA_THREADING_LAYER" in os.environ, reason="layer chosen by the user")
def test_tbb_is_the_layer_when_installed():
    # OpenMP's per-step barrier collapses under CPU contention (fastrnn/_jit.py); a venv's
    # libtbb is found only because fastrnn preloads it.
    run("rnn_tanh", 2, None)
    assert numba.threading_layer() == "tbb"


def test_concurrent_calls_from_python_threads():
    expected = run("gru", 2, None)
    results, errors = [None] * 4, []

    def work(i):
        try:
            results[i] = run("gru", 2, None)
        except Exception as e:           # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        for a, b in zip(r, expected):
            assert rel_err(a, b) < 1e-12


def test_set_num_threads_validates():
    with pytest.raises(ValueError, match="n must be between 1 and NUMBA_NUM_THREADS"):
        fastrnn.set_num_threads(0)


def test_thread_split_by_batch_rows(monkeypatch):
    monkeypatch.setattr(_blocks, "MIN_MACS_PER_THREAD", 1 << 20)
    # each thread owns whole batch rows; B=1 and small calls run on one thread (no region)
    assert list(_bptt.split_rows(1, 1 << 30, threads=2)) == [0, 1]
    assert list(_bptt.split_rows(50, 1 << 19, threads=2)) == [0, 50]
    assert list(_bptt.split_rows(50, 1 << 30, threads=2)) == [0, 25, 50]
    assert list(_bptt.split_rows(7, 1 << 30, threads=2)) == [0, 3, 7]
    assert list(_bptt.split_rows(3, 1 << 30, threads=4)) == [0, 1, 2, 3]
    # windowed truncation multiplies k+1 ages per step
    assert _bptt.ages(50, None) == 1 and _bptt.ages(50, 50) == 1
    assert _bptt.ages(50, 4) == 5
