"""fastrnn.nn.Sampler (fastrnn/sampler.py): stepping equals the sequence forward, generate()
equals stepping and drawing by hand with the reference pick. Its argument errors are in
tests/reliability/test_bad_input.py."""

import numpy as np
import pytest

import fastrnn.reference.stack as R
from fastrnn import nn


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
