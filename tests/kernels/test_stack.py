"""The one-call stack step (sampling) and its token pick against their reference twins."""

import numpy as np
import pytest

import fastrnn.kernels.stack as K
import fastrnn.reference.stack as R
from fastrnn import cells
from cells import rel_err


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_stack_step_kernel_equals_reference(cell, dtype):
    rng = np.random.default_rng(0)
    L, B, H, V = 3, 2, 9, 7
    G = cells.SAMPLER_GATES[K.CELL_CODES[cell]]
    a = lambda *s: rng.uniform(-0.5, 0.5, s).astype(dtype)  # noqa: E731
    args = (a(V, G * H), a(L, G * H, H), a(L, G * H, H), a(L, G * H), a(L, G * H), a(V, H), a(V))
    h, c = a(L, B, H), a(L, B, H)
    tokens = np.array([3, 6])
    hr, cr = h.copy(), c.copy()
    out_r = R.stack_step(tokens, R.CELL_CODES[cell], *args, hr, cr)
    out_k = K.stack_step(tokens, K.CELL_CODES[cell], *args, h, c)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert out_k.dtype == dtype
    assert rel_err(out_k, out_r) < tol and rel_err(h, hr) < tol
    if cell == "lstm":
        assert rel_err(c, cr) < tol


@pytest.mark.parametrize("top_k,argmax,temperature", [(0, False, 1.0), (3, False, 0.7),
                                                      (0, True, 1.0), (0, False, 5.0)])
def test_pick_equals_reference(top_k, argmax, temperature):
    rng = np.random.default_rng(0)
    probs = np.empty(9)
    for _ in range(200):
        logits = rng.normal(size=9) * 3
        u = rng.random()
        assert K._pick(logits, temperature, top_k, argmax, u, probs) == \
            R.pick(logits, temperature, top_k, argmax, u)
