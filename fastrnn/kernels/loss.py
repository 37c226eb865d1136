"""Softmax cross-entropy over a sequence of logits: the compiled twin of
``fastrnn.reference.loss`` (same signature, validation, semantics and results).

    p = softmax(logits[t, b])                  (V,)
    loss = mean over counted (t, b) of -log p[targets[t, b]]
    dlogits[t, b] = (p - onehot(targets[t, b])) * mask[t, b] / count

One fused parallel pass over the T*B rows: per row the maximum, ``exp`` of the shifted logits
and their sum, the loss term and ``dlogits``, written once. The rows are split into a fixed
number of contiguous blocks (independent of the thread count) that the threads share; each
block sums its loss terms in float64 and the block sums are added in block order afterwards,
so the loss and ``dlogits`` are bit-identical for any number of threads. float32 logits are
computed in float32 (``exp`` by the vectorisable ``_math.exp``), only the loss sum is float64.
"""

import math

import numpy as np

from .._jit import njit, prange
from .._checks import check_loss_inputs
from ._math import exp, fmax

_BLOCKS = 64        # row blocks per call (at most one per row); a multiple of common core counts


def softmax_cross_entropy(logits, targets, mask=None):
    """logits (T, B, V), targets int (T, B), mask (T, B) or None -> loss (float), dlogits."""
    mask = check_loss_inputs(logits, targets, mask)
    T, B, V = logits.shape
    count = mask.sum(dtype=np.float64)
    x = np.ascontiguousarray(logits).reshape(T * B, V)                   # (N, V)
    tgt = np.ascontiguousarray(targets, dtype=np.int64).reshape(T * B)   # (N,)
    w = np.ascontiguousarray(mask).reshape(T * B)                        # (N,)
    dlogits = np.empty((T, B, V), logits.dtype)                          # (T, B, V)
    loss = _softmax_xent(x, tgt, w, logits.dtype.type(1.0 / count), dlogits.reshape(T * B, V))
    return float(loss / count), dlogits


@njit(parallel=True)
def _softmax_xent(x, targets, w, inv_count, d):
    """x (N, V) logits, targets (N,), w (N,) weights, inv_count = 1/sum(w) in x's dtype;
    writes d (N, V) = dlogits and returns sum_i w[i] * -log p_i[targets[i]] (float64)."""
    N, V = x.shape
    nblocks = min(N, _BLOCKS)
    partial = np.zeros(nblocks)                                          # (nblocks,) float64
    for k in prange(nblocks):
        e = np.empty(V, x.dtype)                                         # (V,) exp, per block
        acc = 0.0
        for i in range(k * N // nblocks, (k + 1) * N // nblocks):
            xi = x[i]                                                    # (V,)
            m = xi[0]
            for j in range(1, V):
                m = fmax(m, xi[j])      # a NaN is skipped here but poisons the exp sum below
            s = x.dtype.type(0.0)
            for j in range(V):
                ej = exp(xi[j] - m)
                e[j] = ej
                s += ej
            t = targets[i]
            acc -= w[i] * (np.float64(xi[t] - m) - math.log(np.float64(s)))
            scale = w[i] * inv_count                                     # mask / count
            r = scale / s
            di = d[i]                                                    # (V,)
            for j in range(V):
                di[j] = e[j] * r
            di[t] -= scale
        partial[k] = acc
    loss = 0.0
    for k in range(nblocks):
        loss += partial[k]
    return loss
