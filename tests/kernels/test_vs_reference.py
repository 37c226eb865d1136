"""Every kernel against its reference twin: cell x dtype x shape x truncation.

float64 must agree to 1e-10 relative, float32 to 1e-4 (the float32 kernels use fast
rational approximations of tanh/sigmoid, accurate to ~2e-7 absolute).
"""

import numpy as np
import pytest

import fastrnn.kernels as K
import fastrnn.reference as R
from cells import CELL_NAMES, Cell, rel_err

TOL = {np.float64: 1e-10, np.float32: 1e-4}
# (T, B, D, H): T=1, B=1, H=1, D != H, odd sizes; batches that split unevenly over 2 threads
# and into row blocks of the micro-GEMM (B = 3, 7, 33), H not a multiple of the packed panel
# width (1, 7, 17, 33, 100)
SHAPES = [(1, 1, 1, 1), (5, 3, 4, 7), (4, 1, 5, 33), (6, 2, 3, 40), (3, 5, 17, 16),
          (4, 7, 3, 17), (3, 33, 2, 100)]


def problem(name, shape, dtype, seed=0):
    T, B, D, H = shape
    rng = np.random.default_rng(seed)
    cr = Cell(name, R)
    x = rng.normal(size=(T, B, D)).astype(dtype)
    states = cr.states(rng, B, H, dtype)
    params = cr.params(rng, D, H, dtype)
    G = rng.normal(size=(T, B, H)).astype(dtype)
    Gf = tuple(rng.normal(size=(B, H)).astype(dtype) for _ in states)
    return cr, Cell(name, K), x, states, params, G, Gf


def assert_close(got, want, dtype, what):
    assert got.dtype == want.dtype == dtype, what
    assert got.shape == want.shape, what
    err = rel_err(got, want)
    assert err < TOL[dtype], f"{what}: relative error {err:.2e}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", CELL_NAMES)
def test_sequence_forward_backward(name, shape, dtype):
    cr, ck, x, states, params, G, Gf = problem(name, shape, dtype)
    T = shape[0]
    hr, fr, cache_r = cr.forward(x, states, params)
    hk, fk, cache_k = ck.forward(x, states, params)
    assert_close(hk, hr, dtype, "hs")
    for i, (a, b) in enumerate(zip(fk, fr)):
        assert_close(a, b, dtype, f"final state {i}")
    for truncate in sorted({None, 1, 2, max(T - 1, 0), T}, key=lambda k: -1 if k is None else k):
        gr = cr.backward(G, cache_r, Gf, truncate=truncate)
        gk = ck.backward(G, cache_k, Gf, truncate=truncate)
        assert_close(gk[0], gr[0], dtype, f"dx, truncate={truncate}")
        for i, (a, b) in enumerate(zip(gk[1] + gk[2], gr[1] + gr[2])):
            assert_close(a, b, dtype, f"gradient {i}, truncate={truncate}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_projected_entry_points(name, dtype):
    cr, ck, x, states, params, G, Gf = problem(name, (5, 3, 4, 34), dtype, seed=1)
    xw = (x @ params[0].T + params[2]).astype(dtype)
    hr, fr, cache_r = cr.forward_proj(xw, states, params[1], params[3])
    hk, fk, cache_k = ck.forward_proj(xw, states, params[1], params[3])
    assert_close(hk, hr, dtype, "hs")
    for truncate in (None, 2):
        gr = cr.backward_proj(G, cache_r, Gf, truncate=truncate)
        gk = ck.backward_proj(G, cache_k, Gf, truncate=truncate)
        assert_close(gk[0], gr[0], dtype, "dxw")
        for i, (a, b) in enumerate(zip(gk[1] + gk[2], gr[1] + gr[2])):
            assert_close(a, b, dtype, f"gradient {i}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_step_functions(name, dtype):
    cr, ck, x, states, params, G, Gf = problem(name, (1, 3, 5, 9), dtype, seed=2)
    sr, cache_r = cr.step_forward(x[0], states, params)
    sk, cache_k = ck.step_forward(x[0], states, params)
    for a, b in zip(sk, sr):
        assert_close(a, b, dtype, "next state")
    gr = cr.step_backward(Gf, cache_r)
    gk = ck.step_backward(Gf, cache_k)
    assert_close(gk[0], gr[0], dtype, "dx")
    for i, (a, b) in enumerate(zip(gk[1] + gk[2], gr[1] + gr[2])):
        assert_close(a, b, dtype, f"gradient {i}")


@pytest.mark.parametrize("name", CELL_NAMES)
def test_long_sequence_with_truncation_and_saturation(name):
    """T=40 with large weights (saturated gates), k in the middle: O(T*k) path, float64."""
    cr, ck, x, states, params, G, Gf = problem(name, (40, 2, 3, 18), np.float64, seed=3)
    params = tuple(p * 4 for p in params)
    _, _, cache_r = cr.forward(x, states, params)
    _, _, cache_k = ck.forward(x, states, params)
    for truncate in (0, 5, 39):
        gr = cr.backward(G, cache_r, Gf, truncate=truncate)
        gk = ck.backward(G, cache_k, Gf, truncate=truncate)
        for i, (a, b) in enumerate(zip((gk[0],) + gk[1] + gk[2], (gr[0],) + gr[1] + gr[2])):
            assert_close(a, b, np.float64, f"gradient {i}, truncate={truncate}")


@pytest.mark.parametrize("name", CELL_NAMES)
def test_non_contiguous_inputs_are_accepted(name):
    cr, ck, x, states, params, G, Gf = problem(name, (4, 3, 5, 8), np.float64, seed=4)
    xt = np.asfortranarray(x)
    pt = tuple(np.asfortranarray(p) for p in params)
    hr, _, cache_r = cr.forward(x, states, params)
    hk, _, cache_k = ck.forward(xt, states, pt)
    assert_close(hk, hr, np.float64, "hs")
    gk = ck.backward(G[:, :, :][::1], cache_k)
    gr = cr.backward(G, cache_r)
    assert_close(gk[0], gr[0], np.float64, "dx")
