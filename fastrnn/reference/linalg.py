"""The dense layers' products and the token-table scatter in plain NumPy: the twin of
``fastrnn.kernels.linalg`` (same names, signatures and results), used by ``nn.Linear``,
``nn.Embedding`` and the token-input layer of ``nn.Recurrent`` with ``backend='reference'``.

Arrays are checked by the callers (``fastrnn.nn``): 2-D, one dtype, ids in range.
"""

import numpy as np


def linear_forward(x2, weight, bias):
    """x2 (N, D), weight (M, D), bias (M,) -> out (N, M) = x2 @ weight.T + bias."""
    return x2 @ weight.T + bias


def linear_backward(d2, x2, weight):
    """d2 (N, M), x2 (N, D), weight (M, D) -> dx (N, D), dweight (M, D), dbias (M,)."""
    return d2 @ weight, d2.T @ x2, d2.sum(axis=0)


def scatter_add(ids, src, out):
    """out (V, C) += the rows of src (..., C) at ids (...), repeated ids adding up."""
    np.add.at(out, np.asarray(ids).reshape(-1), np.asarray(src).reshape(-1, out.shape[1]))
