"""The one-call stack step (sampling) against its reference twin and the sequence forward."""

import numpy as np
import pytest

import fastrnn.kernels.stack as K
import fastrnn.reference.stack as R
from fastrnn import nn
from cells import rel_err


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_stack_step_kernel_equals_reference(cell, dtype):
    rng = np.random.default_rng(0)
    L, B, H, V = 3, 2, 9, 7
    G = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}[cell]
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


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_sampler_equals_sequence_forward(cell):
    m = nn.CharRNN(11, 20, num_layers=2, cell=cell, dtype=np.float64, seed=2)
    ids = np.random.default_rng(1).integers(0, 11, (5, 3))
    logits, state, _ = m.forward(ids)
    s = m.sampler(batch=3)
    for t in range(5):
        np.testing.assert_allclose(s.step(ids[t]), logits[t], rtol=1e-11, atol=1e-12)
    for a, b in zip(s.state() if cell == "lstm" else (s.state(),),
                    state if cell == "lstm" else (state,)):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)
    with pytest.raises(ValueError, match=r"tokens must lie in \[0, 11\)"):
        s.step(np.array([0, 1, 11]))


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


def test_generate_equals_stepping_and_sampling_by_hand():
    m = nn.CharRNN(10, 16, num_layers=2, cell="lstm", dtype=np.float64, seed=3)
    ids = m.sampler().generate(4, 30, temperature=0.8, top_k=5, rng=np.random.default_rng(7))
    s = m.sampler()
    u = np.random.default_rng(7).random(30)
    tok, want = 4, []
    for i in range(30):
        logits = s.step(np.array([tok]))[0]
        tok = R.pick(logits, 0.8, 5, False, u[i])
        want.append(tok)
    np.testing.assert_array_equal(ids, want)
