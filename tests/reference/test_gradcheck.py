"""Central finite differences (float64) against every reference backward.

Full BPTT is checked against the plain loss; truncated BPTT against its definition as the sum,
over steps t, of the gradient of the loss at t through a forward that starts at the state
S[t-k] held constant (or at the live initial state when t - k < 0).
"""

import numpy as np
import pytest

import fastrnn.reference as ref
from cells import CELL_NAMES, Cell, rel_err

EPS = 1e-6
TOL = 1e-6


def numeric_grad(f, a):
    """Central differences of the scalar f() w.r.t. every element of a (perturbed in place)."""
    g = np.zeros_like(a)
    it = np.nditer(a, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = a[i]
        a[i] = old + EPS
        fp = f()
        a[i] = old - EPS
        fm = f()
        a[i] = old
        g[i] = (fp - fm) / (2 * EPS)
    return g


def make_problem(cell, T, B, D, H, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, B, D))
    states = cell.states(rng, B, H)
    params = cell.params(rng, D, H)
    G = rng.normal(size=(T, B, H))                              # dL/dhs
    Gf = tuple(rng.normal(size=(B, H)) for _ in states)         # dL/d final states
    return x, states, params, G, Gf


def full_loss(cell, x, states, params, G, Gf):
    hs, finals, _ = cell.forward(x, states, params)
    return np.sum(G * hs) + sum(np.sum(g * f) for g, f in zip(Gf, finals))


def truncated_loss(cell, x, states, params, G, Gf, k, nominal):
    """sum_t L_t, each through steps max(t-k, 0) .. t only (see the module docstring)."""
    T = x.shape[0]
    total = 0.0
    for t in range(T):
        start = max(t - k, 0)
        s0 = states if t - k < 0 else nominal[start]
        hs, finals, _ = cell.forward(x[start:t + 1], s0, params)
        total += np.sum(G[t] * hs[-1])
        if t == T - 1:
            total += sum(np.sum(g * f) for g, f in zip(Gf, finals))
    return total


def nominal_states(cell, x, states, params):
    """S[j] for j = 0..T-1, as constants."""
    out = [tuple(s.copy() for s in states)]
    for j in range(1, x.shape[0]):
        _, finals, _ = cell.forward(x[:j], states, params)
        out.append(tuple(f.copy() for f in finals))
    return out


@pytest.mark.parametrize("name", CELL_NAMES)
@pytest.mark.parametrize("truncate", [None, 1, 2, 4, 9])
def test_sequence_backward_matches_finite_differences(name, truncate):
    cell = Cell(name, ref)
    T, B, D, H = 4, 2, 3, 3
    x, states, params, G, Gf = make_problem(cell, T, B, D, H, seed=len(name))
    if truncate is None or truncate >= T:
        f = lambda: full_loss(cell, x, states, params, G, Gf)  # noqa: E731
    else:
        nominal = nominal_states(cell, x, states, params)
        f = lambda: truncated_loss(cell, x, states, params, G, Gf, truncate,  # noqa: E731
                                   nominal)
    _, _, cache = cell.forward(x, states, params)
    dx, dstates, dparams = cell.backward(G, cache, Gf, truncate=truncate)
    assert rel_err(dx, numeric_grad(f, x)) < TOL
    for s, ds in zip(states, dstates):
        assert rel_err(ds, numeric_grad(f, s)) < TOL
    for p, dp in zip(params, dparams):
        assert rel_err(dp, numeric_grad(f, p)) < TOL


@pytest.mark.parametrize("name", CELL_NAMES)
def test_truncate_T_minus_1_differs_from_full_only_in_initial_state(name):
    cell = Cell(name, ref)
    T, B, D, H = 5, 2, 3, 4
    x, states, params, G, Gf = make_problem(cell, T, B, D, H)
    _, _, cache = cell.forward(x, states, params)
    full = cell.backward(G, cache, Gf, truncate=None)
    tm1 = cell.backward(G, cache, Gf, truncate=T - 1)
    np.testing.assert_allclose(tm1[0], full[0], rtol=1e-12, atol=1e-14)
    for a, b in zip(tm1[2], full[2]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert rel_err(tm1[1][0], full[1][0]) > 1e-6       # the loss at T-1 no longer reaches h0


@pytest.mark.parametrize("name", CELL_NAMES)
@pytest.mark.parametrize("truncate", [None, 2])
def test_proj_backward_matches_finite_differences(name, truncate):
    cell = Cell(name, ref)
    T, B, H = 4, 2, 3
    rng = np.random.default_rng(7)
    xw = rng.normal(size=(T, B, cell.gates * H))
    states = cell.states(rng, B, H)
    _, weight_hh, _, bias_hh = cell.params(rng, 2, H)
    G = rng.normal(size=(T, B, H))
    Gf = tuple(rng.normal(size=(B, H)) for _ in states)

    def f():
        hs, finals, _ = cell.forward_proj(xw, states, weight_hh, bias_hh)
        return np.sum(G * hs) + sum(np.sum(g * s) for g, s in zip(Gf, finals))

    _, _, cache = cell.forward_proj(xw, states, weight_hh, bias_hh)
    dxw, dstates, (dwhh, dbhh) = cell.backward_proj(G, cache, Gf, truncate=None)
    assert rel_err(dxw, numeric_grad(f, xw)) < TOL
    for s, ds in zip(states, dstates):
        assert rel_err(ds, numeric_grad(f, s)) < TOL
    assert rel_err(dwhh, numeric_grad(f, weight_hh)) < TOL
    assert rel_err(dbhh, numeric_grad(f, bias_hh)) < TOL
    if truncate is not None:   # and the truncated proj path equals the truncated full path
        W_ih = np.eye(cell.gates * H)
        b_ih = np.zeros(cell.gates * H)
        _, _, c2 = cell.forward(xw, states, (W_ih, weight_hh, b_ih, bias_hh))
        dx2, ds2, _ = cell.backward(G, c2, Gf, truncate=truncate)
        dxw_t, ds_t, _ = cell.backward_proj(G, cache, Gf, truncate=truncate)
        np.testing.assert_allclose(dxw_t, dx2, rtol=1e-12, atol=1e-14)
        for a, b in zip(ds_t, ds2):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_step_backward_matches_finite_differences(name):
    cell = Cell(name, ref)
    B, D, H = 3, 2, 4
    rng = np.random.default_rng(3)
    x = rng.normal(size=(B, D))
    states = cell.states(rng, B, H)
    params = cell.params(rng, D, H)
    Gs = tuple(rng.normal(size=(B, H)) for _ in states)

    def f():
        nxt, _ = cell.step_forward(x, states, params)
        return sum(np.sum(g * s) for g, s in zip(Gs, nxt))

    _, cache = cell.step_forward(x, states, params)
    dx, dstates, dparams = cell.step_backward(Gs, cache)
    assert rel_err(dx, numeric_grad(f, x)) < TOL
    for s, ds in zip(states, dstates):
        assert rel_err(ds, numeric_grad(f, s)) < TOL
    for p, dp in zip(params, dparams):
        assert rel_err(dp, numeric_grad(f, p)) < TOL


@pytest.mark.parametrize("use_mask", [False, True])
def test_loss_gradient_matches_finite_differences(use_mask):
    rng = np.random.default_rng(1)
    T, B, V = 3, 2, 5
    logits = rng.normal(size=(T, B, V)) * 3
    targets = rng.integers(0, V, size=(T, B))
    mask = rng.random((T, B)) < 0.6 if use_mask else None
    if mask is not None:
        mask[0, 0] = True
    loss, dlogits = ref.softmax_cross_entropy(logits, targets, mask)
    num = numeric_grad(lambda: ref.softmax_cross_entropy(logits, targets, mask)[0], logits)
    assert rel_err(dlogits, num) < TOL
