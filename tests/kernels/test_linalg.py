"""The dense products and the token-table scatter (kernels.linalg) against their NumPy twin,
and a model built with backend='reference' against the same model on the kernels."""

import numpy as np
import pytest

from fastrnn import nn
from fastrnn.kernels import linalg as K
from fastrnn.reference import linalg as R

TOL = {np.float64: 1e-12, np.float32: 1e-5}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N, D, M", [(1, 1, 1), (7, 5, 3), (33, 17, 65), (256, 64, 40)])
def test_linear_and_scatter_match_the_reference(N, D, M, dtype):
    rng = np.random.default_rng(0)
    x2, w, b = (rng.normal(size=s).astype(dtype) for s in ((N, D), (M, D), (M,)))
    d2 = rng.normal(size=(N, M)).astype(dtype)
    scale = max(1.0, np.abs(R.linear_forward(x2, w, b)).max())
    err = np.abs(K.linear_forward(x2, w, b) - R.linear_forward(x2, w, b)).max()
    assert err < TOL[dtype] * scale
    for got, want in zip(K.linear_backward(d2, x2, w), R.linear_backward(d2, x2, w)):
        assert got.dtype == want.dtype == dtype and got.shape == want.shape
        assert np.abs(got - want).max() < TOL[dtype] * max(1.0, np.abs(want).max()) * 10
    ids = rng.integers(0, 4, (N, 3))                 # repeated ids must add up
    src = rng.normal(size=(N, 3, D)).astype(dtype)
    out_k, out_r = np.ones((4, D), dtype), np.ones((4, D), dtype)
    K.scatter_add(ids, src, out_k)
    R.scatter_add(ids, src, out_r)
    assert np.abs(out_k - out_r).max() < TOL[dtype] * 10 * N


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_reference_backend_model_equals_kernels(cell):
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 11, (6, 3))
    targets = rng.integers(0, 11, (6, 3))
    models = [nn.CharRNN(11, 9, 2, cell, dtype=np.float64, backend=b)
              for b in ("kernels", "reference")]
    losses = []
    for m in models:
        m.zero_grad()
        losses.append(m.loss_and_grad(ids, targets)[0])
    assert abs(losses[0] - losses[1]) < 1e-12
    for (name, pk), (_, pr) in zip(models[0].named_parameters(), models[1].named_parameters()):
        assert np.abs(pk.grad - pr.grad).max() < 1e-10, name
        assert pk.grad.any(), name
