"""Truncated BPTT against a brute-force definition built from the step functions alone:
for each t, backpropagate only the loss at t through at most k recurrent transitions, and sum.
"""

import numpy as np
import pytest

import fastrnn.reference as ref
from cells import CELL_NAMES, Cell


def brute_force(cell, x, states, params, G, Gf, k):
    T = x.shape[0]
    caches, s = [], states
    for t in range(T):                                   # forward, one step at a time
        s, c = cell.step_forward(x[t], s, params)
        caches.append(c)
    dx = np.zeros_like(x)
    dstates0 = [np.zeros_like(a) for a in states]
    dparams = [np.zeros_like(p) for p in params]
    for t in range(T):
        d = [G[t].copy()] + [np.zeros_like(a) for a in states[1:]]
        if t == T - 1:
            d = [a + b for a, b in zip(d, Gf)]
        for j in range(t, max(t - k, 0) - 1, -1):         # steps t, t-1, ..., t-k
            dxj, d, dp = cell.step_backward(tuple(d), caches[j])
            dx[j] += dxj
            for acc, g in zip(dparams, dp):
                acc += g
        if t - k < 0:                                    # the window reached h0
            for acc, g in zip(dstates0, d):
                acc += g
    return dx, dstates0, dparams


@pytest.mark.parametrize("name", CELL_NAMES)
@pytest.mark.parametrize("k", [0, 1, 2, 5, 6, 7, 50])
def test_truncated_backward_equals_brute_force(name, k):
    cell = Cell(name, ref)
    T, B, D, H = 7, 3, 2, 5
    rng = np.random.default_rng(k)
    x = rng.normal(size=(T, B, D))
    states = cell.states(rng, B, H)
    params = cell.params(rng, D, H)
    G = rng.normal(size=(T, B, H))
    Gf = tuple(rng.normal(size=(B, H)) for _ in states)
    _, _, cache = cell.forward(x, states, params)
    dx, dstates, dparams = cell.backward(G, cache, Gf, truncate=k)
    bx, bstates, bparams = brute_force(cell, x, states, params, G, Gf, k)
    np.testing.assert_allclose(dx, bx, rtol=1e-10, atol=1e-12)
    for a, b in zip(dstates + dparams, tuple(bstates) + tuple(bparams)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_truncate_at_least_T_is_full_bptt(name):
    cell = Cell(name, ref)
    rng = np.random.default_rng(0)
    T, B, D, H = 6, 2, 3, 4
    x = rng.normal(size=(T, B, D))
    states, params = cell.states(rng, B, H), cell.params(rng, D, H)
    G = rng.normal(size=(T, B, H))
    _, _, cache = cell.forward(x, states, params)
    full = cell.backward(G, cache)
    for k in (T, T + 3):
        got = cell.backward(G, cache, truncate=k)
        np.testing.assert_array_equal(got[0], full[0])
        for a, b in zip(got[1] + got[2], full[1] + full[2]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_chunked_stateful_forward_equals_one_long_forward(name):
    """Carrying the final state into the next chunk's initial state (what the trainer does
    for chunked truncated BPTT) reproduces the forward of the whole sequence."""
    cell = Cell(name, ref)
    rng = np.random.default_rng(5)
    T, B, D, H = 8, 2, 3, 4
    x = rng.normal(size=(T, B, D))
    states, params = cell.states(rng, B, H), cell.params(rng, D, H)
    hs_all, fin_all, _ = cell.forward(x, states, params)
    hs1, fin1, _ = cell.forward(x[:3], states, params)
    hs2, fin2, _ = cell.forward(x[3:], fin1, params)
    np.testing.assert_allclose(np.concatenate([hs1, hs2]), hs_all, rtol=1e-13, atol=1e-14)
    for a, b in zip(fin2, fin_all):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
