"""The packed micro-GEMM of the time loops against NumPy: every row count of a tile, K and N
that are not multiples of the vector width, both dtypes; packing round-trips."""

import os
import subprocess
import sys

import numpy as np
import pytest

from fastrnn.kernels import _gemm

TOL = {np.float64: 1e-13, np.float32: 1e-5}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("K, N", [(1, 1), (7, 5), (17, 68), (100, 400), (128, 512)])
def test_packing_round_trips(K, N, dtype):
    w = np.random.default_rng(0).normal(size=(K, N)).astype(dtype)
    wp = _gemm.pack_panels(w)
    NR = _gemm.panel_width(dtype)
    assert wp.shape == (-(-N // NR), K, NR) and wp.dtype == dtype
    assert np.array_equal(_gemm.unpack_panels(wp, N), w)
    assert not wp.reshape(-1, K, NR).transpose(1, 0, 2).reshape(K, -1)[:, N:].any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("K, N", [(1, 1), (7, 5), (17, 68), (100, 400), (33, 96)])
def test_gemm_rows_matches_numpy(K, N, dtype):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(9, K)).astype(dtype)
    w = rng.normal(size=(K, N)).astype(dtype)
    wp = _gemm.pack_panels(w)
    width = wp.shape[0] * wp.shape[2]
    for r0, m in [(0, 1), (3, 2), (2, 3), (5, 4), (1, 5), (3, 6)]:
        c = np.full((_gemm.MR_MAX, width), np.nan, dtype)
        _gemm.gemm_rows(a, r0, m, wp, c)
        want = a[r0:r0 + m].astype(np.float64) @ w.astype(np.float64)
        err = np.abs(c[:m, :N] - want).max() / max(1.0, np.abs(want).max())
        assert err < TOL[dtype], (r0, m, err)
        assert not c[:m, N:].any()              # padded columns are exact zeros
        assert np.isnan(c[m:]).all()            # rows beyond m are untouched
        flipped = np.full_like(c, np.nan)       # panels in reverse order: the same bits
        _gemm.gemm_rows(a, r0, m, wp, flipped, True)
        assert np.array_equal(flipped, c, equal_nan=True)


@pytest.mark.parametrize("vector_bytes", ["32", "64"])
def test_both_register_layouts(vector_bytes, tmp_path):
    """The AVX-512 (64-byte) and AVX2 (32-byte) tile layouts both give the product, whatever
    this CPU has (LLVM splits vectors wider than the hardware's)."""
    code = (
        "import numpy as np\n"
        "from fastrnn.kernels import _gemm\n"
        f"assert _gemm.VECTOR_BYTES == {vector_bytes}\n"
        "rng = np.random.default_rng(2)\n"
        "for dt in (np.float32, np.float64):\n"
        "    a = rng.normal(size=(7, 19)).astype(dt); w = rng.normal(size=(19, 70)).astype(dt)\n"
        "    wp = _gemm.pack_panels(w); c = np.zeros((6, wp.shape[0] * wp.shape[2]), dt)\n"
        "    for m in range(1, 7):\n"
        "        _gemm.gemm_rows(a, 7 - m, m, wp, c)\n"
        "        assert np.allclose(c[:m, :70], a[7 - m:] @ w, rtol=1e-4, atol=1e-4), (dt, m)\n"
        "print('ok')\n")
    env = dict(os.environ, FASTRNN_VECTOR_BYTES=vector_bytes, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("M, K, N", [(1, 1, 1), (1, 128, 512), (2, 7, 70), (13, 9, 33),
                                     (50, 100, 65)])
def test_gemm_packed_matches_numpy(M, K, N, dtype):
    """The serial product of a whole matrix (row blocks of every size, the multi-panel tiles
    of one and two rows, panels cut at N) against NumPy; compiled packing round-trips."""
    rng = np.random.default_rng(3)
    a = rng.normal(size=(M, K)).astype(dtype)
    w = rng.normal(size=(K, N)).astype(dtype)
    wp = _gemm.pack_panels(w)
    assert np.array_equal(_gemm.unpack_panels(wp, N), w)
    out = np.full((M, N), np.nan, dtype)
    _gemm.gemm_packed(a, wp, out)
    want = a.astype(np.float64) @ w.astype(np.float64)
    assert np.abs(out - want).max() / max(1.0, np.abs(want).max()) < TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("M, K, N", [(1, 1, 1), (1, 128, 512), (2, 7, 70), (13, 9, 33),
                                     (50, 100, 65), (7, 5, 200)])
def test_gemm_packed_cols_is_gemm_packed_split(M, K, N, dtype):
    """The product split over threads by panels gives gemm_packed's bits for 1, 2 and more
    threads than panels (every element is summed in the same order)."""
    rng = np.random.default_rng(4)
    a = rng.normal(size=(M, K)).astype(dtype)
    wp = _gemm.pack_panels(rng.normal(size=(K, N)).astype(dtype))
    want = np.full((M, N), np.nan, dtype)
    _gemm.gemm_packed(a, wp, want)
    for threads in (1, 2, wp.shape[0] + 1):
        out = np.full((M, N), np.nan, dtype)
        _gemm.gemm_packed_cols(a, wp, out, threads)
        assert np.array_equal(out, want), threads


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N, K", [(1, 1), (3, 100), (20, 7), (65, 100)])
def test_pack_panels_T_is_the_panels_of_the_transpose(N, K, dtype):
    a = np.random.default_rng(5).normal(size=(N, K)).astype(dtype)
    for view in (a, np.asfortranarray(a)):
        wp = _gemm.pack_panels_T(view)
        assert wp.dtype == dtype and np.array_equal(wp, _gemm.pack_panels(a.T))
