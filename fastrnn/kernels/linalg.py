"""The dense layers' products and the token-table scatter, compiled: the twin of
``fastrnn.reference.linalg`` (same names, signatures and results). The products are split over
numba's threads with single-threaded BLAS in each (``_blocks``), small ones run serially.

Arrays are checked by the callers (``fastrnn.nn``): 2-D, one dtype, ids in range.

For callers that manage BLAS threads and output buffers themselves (``fastrnn.compat``), the
split products are public here too: ``linear_rows(a, bT, bias, out, threads)``,
``matmul_rows(a, b, out, threads)`` (call them inside ``_jit.blas_single_threaded()``) and
``threads_for(macs)``, the number of threads a product of that size is worth.
"""

import numpy as np

from . import _blocks
from ._blocks import linear_rows, matmul_rows, threads_for  # noqa: F401  (public, see above)


def linear_forward(x2, weight, bias):
    """x2 (N, D), weight (M, D), bias (M,) -> out (N, M) = x2 @ weight.T + bias."""
    N, D = x2.shape
    out = np.empty((N, weight.shape[0]), x2.dtype)          # no rows: an empty result
    with _blocks.blas_single_threaded():
        _blocks.linear_rows(np.ascontiguousarray(x2), np.ascontiguousarray(weight.T),
                            np.ascontiguousarray(bias), out,
                            _blocks.threads_for(N * D * weight.shape[0]))
    return out


def linear_backward(d2, x2, weight):
    """d2 (N, M), x2 (N, D), weight (M, D) -> dx (N, D), dweight (M, D), dbias (M,)."""
    N, M = d2.shape
    D = x2.shape[1]
    d2 = np.ascontiguousarray(d2)
    dweight = np.empty((M, D), d2.dtype)
    dbias = np.empty(M, d2.dtype)
    dx = np.empty((N, D), d2.dtype)
    with _blocks.blas_single_threaded():
        threads = _blocks.threads_for(N * D * M)
        _blocks.matmul_tn_colsum(d2, np.ascontiguousarray(x2), dweight, dbias, threads)
        _blocks.matmul_rows(d2, np.ascontiguousarray(weight), dx, threads)
    return dx, dweight, dbias


def scatter_add(ids, src, out):
    """out (V, C) += the rows of src (..., C) at ids (...), repeated ids adding up."""
    _blocks.scatter_add(ids, src, out)
