"""Property tests over shapes (T=1, B=1, H=1, D != H included) and dtypes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastrnn.reference as ref
from cells import CELL_NAMES, Cell

shapes = st.tuples(st.integers(1, 5), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5))


@pytest.mark.parametrize("name", CELL_NAMES)
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_steps_composed_equal_sequence(name, shape, seed):
    cell = Cell(name, ref)
    T, B, D, H = shape
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, B, D))
    states, params = cell.states(rng, B, H), cell.params(rng, D, H)
    G = rng.normal(size=(T, B, H))
    hs, finals, cache = cell.forward(x, states, params)
    assert hs.shape == (T, B, H)
    s, caches = states, []
    for t in range(T):
        s, c = cell.step_forward(x[t], s, params)
        caches.append(c)
        np.testing.assert_allclose(s[0], hs[t], rtol=1e-12, atol=1e-14)
    for a, b in zip(s, finals):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # full BPTT = step backwards chained
    dx, dstates, dparams = cell.backward(G, cache)
    d = tuple(np.zeros((B, H)) for _ in states)
    acc = [np.zeros_like(p) for p in params]
    for t in range(T - 1, -1, -1):
        d = (d[0] + G[t],) + d[1:]
        dxt, d, dp = cell.step_backward(d, caches[t])
        np.testing.assert_allclose(dxt, dx[t], rtol=1e-10, atol=1e-12)
        for a, g in zip(acc, dp):
            a += g
    for a, b in zip(d, dstates):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(acc, dparams):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", CELL_NAMES)
@given(shape=shapes, seed=st.integers(0, 2**16), k=st.integers(0, 6))
def test_float32_keeps_dtype_and_tracks_float64(name, shape, seed, k):
    cell = Cell(name, ref)
    T, B, D, H = shape
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, B, D))
    states, params = cell.states(rng, B, H), cell.params(rng, D, H)
    G = rng.normal(size=(T, B, H))
    f32 = lambda arrs: tuple(a.astype(np.float32) for a in arrs)  # noqa: E731
    hs64, _, c64 = cell.forward(x, states, params)
    hs32, fin32, c32 = cell.forward(x.astype(np.float32), f32(states), f32(params))
    assert hs32.dtype == np.float32 and all(f.dtype == np.float32 for f in fin32)
    np.testing.assert_allclose(hs32, hs64, rtol=1e-4, atol=1e-5)
    g64 = cell.backward(G, c64, truncate=k)
    g32 = cell.backward(G.astype(np.float32), c32, truncate=k)
    for a, b in zip((g32[0],) + g32[1] + g32[2], (g64[0],) + g64[1] + g64[2]):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_loss_is_stable_for_huge_logits():
    logits = np.array([[[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]]], np.float32)      # (1, 2, 3)
    targets = np.array([[0, 1]])
    loss, d = ref.softmax_cross_entropy(logits, targets)
    assert np.isfinite(loss) and np.isfinite(d).all()
    np.testing.assert_allclose(loss, np.log(2) / 2, rtol=1e-6)
    np.testing.assert_allclose(d[0, 1], [0, -0.25, 0.25], atol=1e-7)


def test_loss_matches_direct_formula_and_mask():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 3, 6))
    targets = rng.integers(0, 6, size=(4, 3))
    mask = np.ones((4, 3), bool)
    mask[1:, 2] = False
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    nll = -np.log(np.take_along_axis(p, targets[..., None], -1))[..., 0]
    loss, d = ref.softmax_cross_entropy(logits, targets, mask)
    np.testing.assert_allclose(loss, nll[mask].mean(), rtol=1e-12)
    assert np.all(d[1:, 2] == 0)
    loss_all, _ = ref.softmax_cross_entropy(logits, targets)
    np.testing.assert_allclose(loss_all, nll.mean(), rtol=1e-12)
