"""GRU kernels: the compiled twin of ``fastrnn.reference.gru`` (same names, signatures and
results; read that module for the maths and the truncation semantics).

The structure is that of ``fastrnn.kernels.lstm``. Two things are particular to the GRU:
the reset gate multiplies ``W_hn h + b_hn``, so the gradient of the recurrent pre-activation
(``dhw``) differs from that of the projected input (``dxw``) in the candidate block, and both are
kept; and ``h[t]`` reaches ``h[t-1]`` directly through ``z * h[t-1]``, a second path carried
next to the one through ``W_hh`` (as the LSTM carries ``dc``).
"""

from typing import NamedTuple

import numpy as np

from .. import _checks as ck
from ._blocks import (ages, blas_single_threaded, chunk_bounds, cols_by_chunk, input_grads,
                      input_projection, njit, prange, recurrent_grads, rows_by_chunk)
from ._math import flush, sigmoid, tanh
from .lstm import _add_gate_blocks

GATES = 3


# ---------------------------------------------------------------- fused gate passes

# Loops index contiguous slices by the loop variable alone, so LLVM vectorises them (see
# ``fastrnn.kernels.lstm``).

@njit
def _gates_forward(xr, ar, bias, h_prev, h_out, g_out, ahn_out, lo, n, H):
    """One batch row, units lo..lo+n: xr (3H,), ar (3n,) recurrent part in chunk order
    [r|z|n]; writes the activated gates (3H,), W_hn h + b_hn (H,) and h (H,)."""
    hi = lo + n
    for q in range(2):
        x = xr[q * H + lo:q * H + hi]
        a = ar[q * n:(q + 1) * n]
        bq = bias[q * H + lo:q * H + hi]
        out = g_out[q * H + lo:q * H + hi]
        for u in range(n):
            out[u] = sigmoid(x[u] + a[u] + bq[u])
    r = g_out[lo:hi]
    z = g_out[H + lo:H + hi]
    nn = g_out[2 * H + lo:2 * H + hi]
    an = ar[2 * n:3 * n]
    bn = bias[2 * H + lo:2 * H + hi]
    ahn = ahn_out[lo:hi]
    xn = xr[2 * H + lo:2 * H + hi]
    hp = h_prev[lo:hi]
    h = h_out[lo:hi]
    for u in range(n):
        ahn[u] = an[u] + bn[u]
    for u in range(n):
        nn[u] = tanh(xn[u] + r[u] * ahn[u])
    for u in range(n):
        h[u] = flush((1 - z[u]) * nn[u] + z[u] * hp[u], h)     # no subnormals: _math.flush


@njit
def _gates_backward(dh, dh_ext, direct_in, gr, ahn_row, h_prev, dxw, dhw, direct_out, lo, n, H):
    """One batch row, units lo..lo+n. dh (n,): gradient reaching h through W_hh, to which the
    output gradient dh_ext and the direct one direct_in (through z) are added in place.
    Writes dxw, dhw (3H,) and direct_out = dh * z, the direct part of the gradient reaching
    h_prev (direct_out may be direct_in)."""
    hi = lo + n
    ext = dh_ext[lo:hi]
    din = direct_in[lo:hi]
    r = gr[lo:hi]
    z = gr[H + lo:H + hi]
    nn = gr[2 * H + lo:2 * H + hi]
    ahn = ahn_row[lo:hi]
    hp = h_prev[lo:hi]
    dxr = dxw[lo:hi]
    dxz = dxw[H + lo:H + hi]
    dxn = dxw[2 * H + lo:2 * H + hi]
    dhr = dhw[lo:hi]
    dhz = dhw[H + lo:H + hi]
    dhn = dhw[2 * H + lo:2 * H + hi]
    dout = direct_out[lo:hi]
    for u in range(n):
        dh[u] += ext[u] + din[u]
    for u in range(n):
        dxn[u] = flush(dh[u] * (1 - z[u]) * (1 - nn[u] * nn[u]), dxn)
    for u in range(n):
        dhn[u] = dxn[u] * r[u]
    for u in range(n):
        dxr[u] = flush(dxn[u] * ahn[u] * r[u] * (1 - r[u]), dxr)
    for u in range(n):
        dhr[u] = dxr[u]
    for u in range(n):
        dxz[u] = flush(dh[u] * (hp[u] - nn[u]) * z[u] * (1 - z[u]), dxz)
    for u in range(n):
        dhz[u] = dxz[u]
    for u in range(n):
        dout[u] = flush(dh[u] * z[u], dout)


# ---------------------------------------------------------------- time loops

@njit(parallel=True)
def _forward(xw, bias_hh, w_rows, bounds, hs, gates, ah_n):
    T, B, G3 = xw.shape
    H = G3 // 3
    P = bounds.shape[0] - 1
    ar = np.empty(B * G3, xw.dtype)
    for t in range(T):
        for j in prange(P):
            lo = bounds[j]
            hi = bounds[j + 1]
            n = hi - lo
            a = ar[B * 3 * lo:B * 3 * hi].reshape((B, 3 * n))
            np.dot(hs[t], w_rows[H * 3 * lo:H * 3 * hi].reshape((H, 3 * n)), a)
            for b in range(B):
                _gates_forward(xw[t, b], a[b], bias_hh, hs[t, b], hs[t + 1, b], gates[t, b],
                               ah_n[t, b], lo, n, H)


@njit(parallel=True)
def _backward_full(dhs, hs, gates, ah_n, w_cols, bounds, dxw, dhw, dh0):
    """Full BPTT. dh0 holds dh_n on entry; it carries the direct path and ends as dh0."""
    T, B, H = dhs.shape
    G3 = 3 * H
    P = bounds.shape[0] - 1
    dhbuf = np.empty(B * H, dhs.dtype)
    direct = dh0
    for t in range(T - 1, -1, -1):
        for j in prange(P):
            lo = bounds[j]
            hi = bounds[j + 1]
            n = hi - lo
            dh = dhbuf[B * lo:B * hi].reshape((B, n))
            if t == T - 1:
                dh[:] = 0
            else:
                np.dot(dhw[t + 1], w_cols[G3 * lo:G3 * hi].reshape((G3, n)), dh)
            for b in range(B):
                _gates_backward(dh[b], dhs[t, b], direct[b], gates[t, b], ah_n[t, b], hs[t, b],
                                dxw[t, b], dhw[t, b], direct[b], lo, n, H)
    for j in prange(P):
        lo = bounds[j]
        hi = bounds[j + 1]
        n = hi - lo
        dh = dhbuf[B * lo:B * hi].reshape((B, n))
        np.dot(dhw[0], w_cols[G3 * lo:G3 * hi].reshape((G3, n)), dh)
        for b in range(B):
            for u in range(n):
                dh0[b, lo + u] += dh[b, u]


@njit(parallel=True)
def _backward_window(dhs, dh_n, hs, gates, ah_n, w_cols, bounds, k, dxw, dhw, dh0):
    """Windowed truncation (k < T), as ``lstm._backward_window``; the direct path is carried
    per age like the LSTM's dc. dxw and dhw must be zero on entry."""
    T, B, H = dhs.shape
    G3 = 3 * H
    P = bounds.shape[0] - 1
    K1 = k + 1
    dpre = np.zeros((2, K1, B, G3), dhs.dtype)        # per-age dhw, double-buffered
    dxa = np.empty((K1, B, G3), dhs.dtype)            # per-age dxw
    direct = np.zeros((K1 + 1, B, H), dhs.dtype)      # incoming direct gradient per age
    dhbuf = np.empty(K1 * B * H, dhs.dtype)
    zeros = np.zeros(H, dhs.dtype)
    na = 1
    for t in range(T - 1, -1, -1):
        na = min(k, T - 1 - t) + 1
        cur = t % 2
        prev = 1 - cur
        for j in prange(P):
            lo = bounds[j]
            hi = bounds[j + 1]
            n = hi - lo
            dh = dhbuf[K1 * B * lo:K1 * B * hi].reshape((K1 * B, n))
            if na > 1:
                np.dot(dpre[prev, 0:na - 1].reshape(((na - 1) * B, G3)),
                       w_cols[G3 * lo:G3 * hi].reshape((G3, n)), dh[B:na * B])
            for b in range(B):
                for u in range(n):
                    dh[b, u] = 0
                    direct[0, b, lo + u] = dh_n[b, lo + u] if t == T - 1 else 0
            for a in range(na - 1, -1, -1):
                for b in range(B):
                    _gates_backward(dh[a * B + b], dhs[t, b] if a == 0 else zeros, direct[a, b],
                                    gates[t, b], ah_n[t, b], hs[t, b], dxa[a, b],
                                    dpre[cur, a, b], direct[a + 1, b], lo, n, H)
                    _add_gate_blocks(dxw[t, b], dxa[a, b], lo, n, H, 3)
                    _add_gate_blocks(dhw[t, b], dpre[cur, a, b], lo, n, H, 3)
    m = min(k, na)
    for j in prange(P):
        lo = bounds[j]
        hi = bounds[j + 1]
        n = hi - lo
        dh = dhbuf[K1 * B * lo:K1 * B * hi].reshape((K1 * B, n))
        if m > 0:
            np.dot(dpre[0, 0:m].reshape((m * B, G3)), w_cols[G3 * lo:G3 * hi].reshape((G3, n)),
                   dh[0:m * B])
        for b in range(B):
            for u in range(n):
                s = 0.0
                for a in range(m):
                    s += dh[a * B + b, u] + direct[a + 1, b, lo + u]
                dh0[b, lo + u] = s


# ---------------------------------------------------------------- step API

class GRUStepCache(NamedTuple):
    seq: "GRUInputCache"


def gru_step_forward(x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    """One step: x (B, D), h_prev (B, H) -> h_next (B, H), cache."""
    ck.check_step(GATES, x, {"h_prev": h_prev}, weight_ih, weight_hh, bias_ih, bias_hh)
    hs, cache = gru_forward(x[None], h_prev, weight_ih, weight_hh, bias_ih, bias_hh)
    return hs[0], GRUStepCache(cache)


def gru_step_backward(dh_next, cache):
    """-> dx (B, D), dh_prev (B, H), dweight_ih, dweight_hh, dbias_ih, dbias_hh."""
    c = ck.check_cache(cache, GRUStepCache, "gru_step_backward")
    B, H = c.seq.proj.hs.shape[1:]
    ck.check_state("dh_next", dh_next, B, H, c.seq.proj.hs.dtype, finite=False)
    dx, dh0, dwih, dwhh, dbih, dbhh = gru_backward(
        np.zeros((1, B, H), dh_next.dtype), c.seq, dh_next)
    return dx[0], dh0, dwih, dwhh, dbih, dbhh


# ---------------------------------------------------------------- sequence API

class GRUCache(NamedTuple):
    hs: np.ndarray           # (T+1, B, H): hs[0] = h0
    gates: np.ndarray        # (T, B, 3H) activated r, z, n
    ah_n: np.ndarray         # (T, B, H)
    weight_hh: np.ndarray


class GRUInputCache(NamedTuple):
    proj: GRUCache
    x: np.ndarray            # (T, B, D)
    weight_ih: np.ndarray


def gru_forward_proj(xw, h0, weight_hh, bias_hh):
    """xw (T, B, 3H), h0 (B, H) -> hs (T, B, H), cache."""
    _, H, dtype = ck.check_cell_params(GATES, None, weight_hh, None, bias_hh)
    T, B = ck.check_sequence("xw", xw, GATES * H, dtype, "(T, B, G*H)")
    ck.check_state("h0", h0, B, H, dtype)
    bounds = chunk_bounds(H, rows=B, gates=GATES)
    hs = np.empty((T + 1, B, H), dtype)
    gates = np.empty((T, B, GATES * H), dtype)
    ah_n = np.empty((T, B, H), dtype)
    hs[0] = h0
    with blas_single_threaded():
        _forward(np.ascontiguousarray(xw), np.ascontiguousarray(bias_hh),
                 rows_by_chunk(weight_hh, GATES, bounds), bounds, hs, gates, ah_n)
    return hs[1:], GRUCache(hs, gates, ah_n, weight_hh)


def gru_backward_proj(dhs, cache, dh_n=None, truncate=None):
    """dhs (T, B, H) (and dh_n (B, H)) -> dxw (T, B, 3H), dh0, dweight_hh, dbias_hh."""
    c = ck.check_cache(cache, GRUCache, "gru_backward_proj")
    Tp1, B, H = c.hs.shape
    T = Tp1 - 1
    dtype = c.hs.dtype
    ck.check_sequence("dhs", dhs, H, dtype, "(T, B, H)")
    ck.check_shape("dhs", dhs, (T, B, H), "(T, B, H)")
    dh_n = np.zeros((B, H), dtype) if dh_n is None else ck.check_state(
        "dh_n", dh_n, B, H, dtype, finite=False)
    truncate = ck.check_truncate(truncate)
    bounds = chunk_bounds(H, rows=B * ages(T, truncate), gates=GATES)
    w_cols = cols_by_chunk(c.weight_hh, bounds)
    dhs = np.ascontiguousarray(dhs)
    with blas_single_threaded():
        if truncate is None or truncate >= T:
            dxw = np.empty((T, B, GATES * H), dtype)
            dhw = np.empty((T, B, GATES * H), dtype)
            dh0 = np.array(dh_n, dtype, copy=True, order="C")
            _backward_full(dhs, c.hs, c.gates, c.ah_n, w_cols, bounds, dxw, dhw, dh0)
        else:
            dxw = np.zeros((T, B, GATES * H), dtype)
            dhw = np.zeros((T, B, GATES * H), dtype)
            dh0 = np.empty((B, H), dtype)
            _backward_window(dhs, np.ascontiguousarray(dh_n), c.hs, c.gates, c.ah_n, w_cols,
                             bounds, truncate, dxw, dhw, dh0)
    dweight_hh, dbias_hh = recurrent_grads(dhw, c.hs)
    return dxw, dh0, dweight_hh, dbias_hh


def gru_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    """x (T, B, D), h0 (B, H) -> hs (T, B, H), cache. The final state is ``hs[-1]``."""
    D, H, dtype = ck.check_cell_params(GATES, weight_ih, weight_hh, bias_ih, bias_hh)
    ck.check_sequence("x", x, D, dtype, "(T, B, D)")
    xw = input_projection(x, weight_ih, bias_ih)
    hs, proj = gru_forward_proj(xw, h0, weight_hh, bias_hh)
    return hs, GRUInputCache(proj, x, weight_ih)


def gru_backward(dhs, cache, dh_n=None, truncate=None):
    """-> dx (T, B, D), dh0 (B, H), dweight_ih, dweight_hh, dbias_ih, dbias_hh."""
    c = ck.check_cache(cache, GRUInputCache, "gru_backward")
    dxw, dh0, dweight_hh, dbias_hh = gru_backward_proj(dhs, c.proj, dh_n, truncate)
    dx, dweight_ih, dbias_ih = input_grads(dxw, c.x, c.weight_ih)
    return dx, dh0, dweight_ih, dweight_hh, dbias_ih, dbias_hh
