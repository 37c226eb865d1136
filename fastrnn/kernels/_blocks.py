"""The big products around the time loops, split over numba's threads: the input projection
of all steps before the loop, the weight gradients over all T*B rows after it, the layers'
products and the token-table scatter.

Inside a kernel exactly one thread pool owns the cores: numba's. Each of its threads calls a
single-threaded BLAS (``np.dot``) on its own block, so the two pools never spin against each
other (see ``fastrnn._jit``). The time loops themselves are in ``_bptt``.
"""

import numba
import numpy as np

from .._jit import blas_single_threaded, njit, parallel_or_serial, prange  # noqa: F401

# Fewest multiply-adds per thread worth a parallel region: smaller products run serially (one
# compiled call, no region). Shared with the time loops (``_bptt``).
MIN_MACS_PER_THREAD = 1 << 20


def threads_for(macs, threads=None):
    """Threads for a product of ``macs`` multiply-adds: at least MIN_MACS_PER_THREAD each."""
    threads = numba.get_num_threads() if threads is None else threads
    return max(1, min(threads, macs // MIN_MACS_PER_THREAD))


_serial_on_one_thread = parallel_or_serial(lambda *args: args[-1] == 1)

# ---------------------------------------------------------------- split products

@_serial_on_one_thread
def linear_rows(a, bT, bias, out, threads):
    """out (M, N) = a (M, K) @ bT (K, N) + bias (N,), rows split over the threads."""
    M = a.shape[0]
    P = min(threads, M)
    for j in prange(P):
        lo = j * M // P
        hi = (j + 1) * M // P
        o = out[lo:hi]
        np.dot(a[lo:hi], bT, o)
        for r in range(hi - lo):
            orow = o[r]
            for c in range(bias.shape[0]):
                orow[c] += bias[c]


@_serial_on_one_thread
def matmul_rows(a, b, out, threads):
    """out (M, N) = a (M, K) @ b (K, N), rows split over the threads."""
    M = a.shape[0]
    P = min(threads, M)
    for j in prange(P):
        lo = j * M // P
        hi = (j + 1) * M // P
        np.dot(a[lo:hi], b, out[lo:hi])


@_serial_on_one_thread
def matmul_tn_colsum(a, b, out, colsum, threads):
    """out (M, N) = a (K, M)^T @ b (K, N) and colsum (M,) = a.sum(axis=0), split over K.

    This is the shape of every weight gradient (``dW = dpre^T @ inputs`` over all T*B rows,
    ``db = dpre.sum(0)``): each thread reduces its block of rows, then the partial results
    are added in a fixed order, so the result does not depend on scheduling.
    """
    K, M = a.shape
    N = b.shape[1]
    P = max(1, min(threads, K))
    part = np.empty((P, M, N), out.dtype)
    psum = np.zeros((P, M), np.float64)
    for j in prange(P):
        lo = j * K // P
        hi = (j + 1) * K // P
        np.dot(a[lo:hi].T, b[lo:hi], part[j])
        s = psum[j]
        for r in range(lo, hi):
            arow = a[r]
            for m in range(M):
                s[m] += arow[m]
    for m in prange(M):
        orow = out[m]
        for n in range(N):
            orow[n] = part[0, m, n]
        for j in range(1, P):
            prow = part[j, m]
            for n in range(N):
                orow[n] += prow[n]
        acc = psum[0, m]
        for j in range(1, P):
            acc += psum[j, m]
        colsum[m] = acc


def input_projection(x, weight_ih, bias_ih):
    """xw (T, B, G*H) = x (T, B, D) @ weight_ih.T + bias_ih: ONE product for all steps."""
    T, B, D = x.shape
    xw = np.empty((T, B, weight_ih.shape[0]), x.dtype)
    with blas_single_threaded():
        # weight_ih.T copied C-contiguous: a plain operand is BLAS's fastest case
        linear_rows(np.ascontiguousarray(x).reshape(T * B, D),
                    np.ascontiguousarray(weight_ih.T), np.ascontiguousarray(bias_ih),
                    xw.reshape(T * B, -1), threads_for(T * B * D * weight_ih.shape[0]))
    return xw


def input_grads(dxw, x, weight_ih):
    """Back through ``input_projection``: dx, dweight_ih, dbias_ih (one product each)."""
    T, B, D = x.shape
    gh = weight_ih.shape[0]
    dxw2 = dxw.reshape(T * B, gh)
    dx = np.empty((T, B, D), x.dtype)
    dweight_ih = np.empty((gh, D), x.dtype)
    dbias_ih = np.empty(gh, x.dtype)
    with blas_single_threaded():
        threads = threads_for(T * B * D * gh)
        matmul_rows(dxw2, np.ascontiguousarray(weight_ih), dx.reshape(T * B, D), threads)
        matmul_tn_colsum(dxw2, np.ascontiguousarray(x).reshape(T * B, D), dweight_ih, dbias_ih,
                         threads)
    return dx, dweight_ih, dbias_ih


def recurrent_grads(dhw, hs):
    """dweight_hh = sum_t dhw[t]^T @ hs[t] and dbias_hh, for dhw (T, B, G*H), hs (T+1, B, H)."""
    T, B, gh = dhw.shape
    H = hs.shape[2]
    dweight_hh = np.empty((gh, H), dhw.dtype)
    dbias_hh = np.empty(gh, dhw.dtype)
    with blas_single_threaded():
        matmul_tn_colsum(dhw.reshape(T * B, gh), hs[:T].reshape(T * B, H), dweight_hh, dbias_hh,
                         threads_for(T * B * gh * H))
    return dweight_hh, dbias_hh


@_serial_on_one_thread
def scatter_add_rows(ids, src, out, threads):
    """out[ids[i]] += src[i] for the rows of src (N, C); threads split the columns, so no
    two threads ever add into the same element (the backward of a table gather)."""
    N, C = src.shape
    P = max(1, min(threads, C // 8))
    for j in prange(P):
        lo = j * C // P
        hi = (j + 1) * C // P
        for i in range(N):
            o = out[ids[i], lo:hi]
            s = src[i, lo:hi]
            for c in range(hi - lo):
                o[c] += s[c]


def scatter_add(ids, src, out):
    """out (V, C) += rows of src (..., C) at ids (...): ``np.add.at(out, ids, src)``, compiled.
    ids must already be checked to lie in [0, V)."""
    C = out.shape[1]
    scatter_add_rows(np.ascontiguousarray(ids).reshape(-1).astype(np.int64, copy=False),
                     np.ascontiguousarray(src).reshape(-1, C), out, threads_for(src.size))
