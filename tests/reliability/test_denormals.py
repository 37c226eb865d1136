"""Hidden states and gradients that decay towards zero must not become subnormal numbers,
which cost 10-70x per operation on x86 (measured before the fix, LSTM forward over decayed
states: 23x slower in float32, 57x in float64). The kernels flush values below
``_math.FLUSH32/64`` to zero where they store them (see ``fastrnn.kernels._math.flush``)."""

import time

import numpy as np
import pytest

import fastrnn.kernels
import fastrnn.reference
from cells import CELL_NAMES, Cell
from fastrnn.kernels import _math


def subnormal(a):
    a = np.asarray(a)
    return (a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny)


def decaying(name, dtype, T=40, B=3, H=16, D=4, scale=None):
    """A cell whose state shrinks slowly (W_hh = 0.99 * orthogonal, no input, no bias),
    started from subnormal (or, with ``scale``, any) magnitudes."""
    cell = Cell(name, fastrnn.kernels)
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((H, H)))
    G = cell.gates
    params = (np.zeros((G * H, D), dtype), np.concatenate([0.99 * q] * G).astype(dtype),
              np.zeros(G * H, dtype), np.zeros(G * H, dtype))
    scale = np.finfo(dtype).tiny / 4 if scale is None else scale
    states = tuple((rng.uniform(0.5, 1, (B, H)) * scale).astype(dtype)
                   for _ in range(cell.n_states))
    return cell, np.zeros((T, B, D), dtype), states, params


def test_flush_in_python():
    assert _math.FLUSH32 == np.float32(np.finfo(np.float32).tiny / np.finfo(np.float32).eps)
    f32 = np.zeros(1, np.float32)
    assert _math.flush(np.float32(1e-32), f32) == 0
    assert _math.flush(np.float32(-1e-30), f32) == np.float32(-1e-30)
    assert np.isnan(_math.flush(np.nan, f32)) and _math.flush(-np.inf, f32) == -np.inf
    assert _math.flush(1e-300, np.zeros(1)) == 0 and _math.flush(1e-290, np.zeros(1)) == 1e-290
    assert _math.flush(1e-290, f32) == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_no_subnormal_state_or_gradient_is_stored(name, dtype):
    cell, x, states, params = decaying(name, dtype)
    assert all(subnormal(s).all() for s in states)            # it starts subnormal
    hs, finals, cache = cell.forward(x, states, params)
    tiny_grad = np.full(hs.shape, np.finfo(dtype).tiny / 8, dtype)
    dx, dstates, dparams = cell.backward(hs + tiny_grad, cache)
    stored = [hs, *finals, dx, *dstates, *dparams]
    if cell.kind == "lstm":
        stored.append(cache.proj.cs[1:])                      # cs[0] is c0, the input
    assert not any(subnormal(a).any() for a in stored), name
    # values that matter are untouched: from small but normal magnitudes, the kernels agree
    # with the NumPy reference (which does not flush)
    cell, x, states, params = decaying(name, dtype, scale=1e-3)
    hs, _, _ = cell.forward(x, states, params)
    want, _, _ = Cell(name, fastrnn.reference).forward(x, states, params)
    assert np.abs(want[-1]).max() > 1e-14
    np.testing.assert_allclose(hs, want, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5 * np.abs(want).max())


def test_decayed_states_do_not_slow_the_forward_down():
    """Timing, measured robustly: interleaved repeats, the fastest of each, a bound far from
    both the protected ratio (~1) and the unprotected one (~20-60x)."""
    cell, x, sub_states, params = decaying("lstm", np.float64, T=60, B=16, H=128)
    _, _, normal_states, _ = decaying("lstm", np.float64, T=60, B=16, H=128, scale=1e-3)
    cell.forward(x, sub_states, params)
    best = {"normal": np.inf, "subnormal": np.inf}
    for _ in range(7):
        for key, states in (("normal", normal_states), ("subnormal", sub_states)):
            t0 = time.perf_counter()
            cell.forward(x, states, params)
            best[key] = min(best[key], time.perf_counter() - t0)
    assert best["subnormal"] < 4 * best["normal"], best
