"""Building blocks shared by the cell kernels: the thread plan and split matrix products.

Inside a kernel exactly one thread pool owns the cores: numba's. Each of its threads calls a
single-threaded BLAS (``np.dot``) on its own block, so the two pools never spin against each
other (see ``fastrnn._jit``).

Per time step the cores share the work by **hidden units**: thread j owns units
``bounds[j]:bounds[j+1]`` of every gate, computes their recurrent pre-activations with one
product against a contiguous block of weight rows and applies the fused gate math to them, so a
step costs one parallel region and no thread waits for another's gates. This works for every
batch size, B = 1 included.
"""

import functools

import numba
import numpy as np

from .._jit import blas_single_threaded, njit, prange  # noqa: F401  (re-exported)

ALIGN = 8           # chunk widths are multiples of 8 (one 256-bit float32 register)
# Fewest multiply-adds per step worth a thread: below ~2^18 a second thread costs more in
# synchronisation than it saves (measured, LSTM fwd+bwd, 1 vs 2 threads: H=128 B=1 0.65x,
# H=256 B=1 0.70x, H=128 B=4 0.97x, H=128 B=8 1.12x, H=512 B=1 1.44x).
MIN_MACS_PER_THREAD = 1 << 18


def chunk_bounds(H, threads=None, rows=None, gates=1):
    """Split H hidden units into one contiguous, aligned block per thread -> int64 (P+1,).
    With ``rows`` (batch rows multiplied per step) and ``gates``, small steps use fewer
    threads: each thread gets at least MIN_MACS_PER_THREAD multiply-adds per step."""
    threads = numba.get_num_threads() if threads is None else threads
    if rows is not None:
        threads = min(threads, max(1, rows * gates * H * H // MIN_MACS_PER_THREAD))
    return _bounds(H, max(1, min(threads, H // (2 * ALIGN))))


@functools.lru_cache(maxsize=256)
def _bounds(H, P):
    units = max(ALIGN, round(H / P / ALIGN) * ALIGN) if P > 1 else H
    bounds = np.minimum(np.arange(P + 1) * units, H)
    bounds[-1] = H
    return np.unique(bounds).astype(np.int64)   # shared between calls: read, never written


def ages(T, truncate):
    """Gradient rows per batch row that one backward step multiplies: 1 for full BPTT, the
    k+1 "ages" of windowed truncation otherwise."""
    return 1 if truncate is None or truncate >= T else truncate + 1


def rows_by_chunk(w, gates, bounds):
    """For the forward: chunk j's weight rows (gate 0's units lo..hi, then gate 1's, ...),
    transposed to a C-contiguous (H, G*(hi-lo)) block, concatenated flat (chunk j's block
    starts at offset H*G*lo). ``h @ block`` then gives the chunk's recurrent pre-activations
    in one plain (non-transposed) product, the fastest BLAS case at small batch."""
    H = w.shape[0] // gates
    w3 = w.reshape(gates, H, -1)
    return np.concatenate([np.ascontiguousarray(w3[:, lo:hi].reshape(-1, w.shape[1]).T).ravel()
                           for lo, hi in zip(bounds[:-1], bounds[1:])])


def cols_by_chunk(w, bounds):
    """Columns lo..hi of w (G*H, H) for each chunk, each block C-contiguous, concatenated
    flat: chunk j's (G*H, hi-lo) block starts at offset G*H*lo."""
    return np.concatenate([np.ascontiguousarray(w[:, lo:hi]).ravel()
                           for lo, hi in zip(bounds[:-1], bounds[1:])])


# ---------------------------------------------------------------- split products

@njit(parallel=True)
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


@njit(parallel=True)
def matmul_rows(a, b, out, threads):
    """out (M, N) = a (M, K) @ b (K, N), rows split over the threads."""
    M = a.shape[0]
    P = min(threads, M)
    for j in prange(P):
        lo = j * M // P
        hi = (j + 1) * M // P
        np.dot(a[lo:hi], b, out[lo:hi])


@njit(parallel=True)
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
                    xw.reshape(T * B, -1), numba.get_num_threads())
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
        threads = numba.get_num_threads()
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
                         numba.get_num_threads())
    return dweight_hh, dbias_hh


@njit(parallel=True)
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
                     np.ascontiguousarray(src).reshape(-1, C), out, numba.get_num_threads())
