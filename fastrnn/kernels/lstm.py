"""LSTM kernels: the compiled twin of ``fastrnn.reference.lstm`` (same names, signatures and
results; read that module for the maths and the truncation semantics).

Shape of the computation (after haste):
- the input projection of all T steps is ONE product before the time loop
  (``_blocks.input_projection``); the ``*_proj`` entry points take it ready-made;
- per step, each thread j owns hidden units ``lo:hi`` of all four gates: one BLAS product
  ``h[t] @ W_rows_j.T`` for their recurrent pre-activations, then one fused pass that applies
  the gate nonlinearities and the state update, writing ``h``, ``c`` into ``(T+1, B, H)``
  storage and the activated gates into ``(T, B, 4H)`` for the backward;
- backward, per step: one product ``dxw[t+1] @ W_hh[:, lo:hi]`` for the gradient reaching
  thread j's units of ``h[t]``, then one fused pass for all gate derivatives;
- weight gradients are ONE product each over all T*B rows after the loop.
No allocation happens inside any time loop: scratch is allocated once per call.
"""

from typing import NamedTuple

import numpy as np

from .. import _checks as ck
from ..cells import LSTM, CellFunctions, CellKernels
from ._blocks import input_grads, input_projection, njit, recurrent_grads
from ._bptt import (OWN_STATE, ages, make_backward, make_backward_window, make_forward,
                    pack_backward, pack_forward, split_rows)
from ._math import flush, sigmoid, tanh



# ---------------------------------------------------------------- fused gate passes

# Each loop below reads a few contiguous slices and writes one, indexed by the loop variable
# alone: that is what LLVM vectorises (an index like ``lo + u`` keeps numba's negative-index
# check and a loop over many arrays exceeds LLVM's runtime alias checks; either one makes the
# pass ~8x slower).

@njit
def _gates_forward(xr, ar, bias, c_prev, c_out, h_out, g_out, lo, n, H):
    """One batch row, units lo..lo+n: xr (4H,) projected input, ar (4n,) recurrent part in
    chunk order [i|f|g|o]; writes the activated gates g_out (4H,) and c, h (H,)."""
    hi = lo + n
    for q in range(4):
        x = xr[q * H + lo:q * H + hi]
        a = ar[q * n:(q + 1) * n]
        bq = bias[q * H + lo:q * H + hi]
        out = g_out[q * H + lo:q * H + hi]
        if q == 2:
            for u in range(n):
                out[u] = tanh(x[u] + a[u] + bq[u])
        else:
            for u in range(n):
                out[u] = sigmoid(x[u] + a[u] + bq[u])
    i = g_out[lo:hi]
    f = g_out[H + lo:H + hi]
    g = g_out[2 * H + lo:2 * H + hi]
    o = g_out[3 * H + lo:3 * H + hi]
    cp = c_prev[lo:hi]
    c = c_out[lo:hi]
    h = h_out[lo:hi]
    for u in range(n):
        c[u] = flush(f[u] * cp[u] + i[u] * g[u], c)     # no subnormals: see _math.flush
    for u in range(n):
        h[u] = flush(o[u] * tanh(c[u]), h)


@njit
def _gates_backward(dh, dh_ext, dc_in, gr, c_prev, c_row, da, dc_out, dc, lo, n, H):
    """One batch row, units lo..lo+n. dh (n,): gradient reaching h through W_hh, to which
    the output gradient dh_ext[lo:hi] is added in place; dc_in (H,): incoming dc; dc (n,):
    scratch. Writes the pre-activation gradients da (4H,) and dc_out (H,), the gradient
    reaching c_prev (dc_out may be dc_in)."""
    hi = lo + n
    ext = dh_ext[lo:hi]
    i = gr[lo:hi]
    f = gr[H + lo:H + hi]
    g = gr[2 * H + lo:2 * H + hi]
    o = gr[3 * H + lo:3 * H + hi]
    cp = c_prev[lo:hi]
    cc = c_row[lo:hi]
    dci = dc_in[lo:hi]
    dai = da[lo:hi]
    daf = da[H + lo:H + hi]
    dag = da[2 * H + lo:2 * H + hi]
    dao = da[3 * H + lo:3 * H + hi]
    dco = dc_out[lo:hi]
    for u in range(n):
        dh[u] += ext[u]
    for u in range(n):
        tc = tanh(cc[u])
        dc[u] = dci[u] + dh[u] * o[u] * (1 - tc * tc)
    for u in range(n):
        dao[u] = flush(dh[u] * tanh(cc[u]) * o[u] * (1 - o[u]), dao)
    for u in range(n):
        dai[u] = flush(dc[u] * g[u] * i[u] * (1 - i[u]), dai)
    for u in range(n):
        dag[u] = flush(dc[u] * i[u] * (1 - g[u] * g[u]), dag)
    for u in range(n):
        daf[u] = flush(dc[u] * cp[u] * f[u] * (1 - f[u]), daf)
    for u in range(n):
        dco[u] = flush(dc[u] * f[u], dco)


# ---------------------------------------------------------------- the cell in the time loops

@njit
def _forward_row(xw, t, b, ar, bias, hs, cs, gates, flag):
    H = hs.shape[2]
    _gates_forward(xw[t, b], ar, bias, cs[t, b], cs[t + 1, b], hs[t + 1, b], gates[t, b], 0, H, H)


@njit
def _backward_row(t, b, dh, dh_ext, dc_in, dc_out, hs, cs, gates, dx_row, dh_row, scratch, flag):
    H = hs.shape[2]
    _gates_backward(dh, dh_ext, dc_in, gates[t, b], cs[t, b], cs[t + 1, b], dh_row, dc_out,
                    scratch, 0, H, H)


# ---------------------------------------------------------------- one step (sampling)

@njit
def _step_row(gx, gh, work, h, c, flag):
    """One step of one batch row for the sampler (``kernels.stack``): gx, gh (4H,) the input
    and recurrent pre-activations, each with its bias; updates h, c (H,) in place. The time
    loops' fused pass, with the recurrent bias already in gh: work (3, 4H), work[0] zeros (the
    bias), the rest scratch (no output overlaps an input: LLVM would not vectorise)."""
    H = h.shape[0]
    c_new = work[2, :H]
    _gates_forward(gx, gh, work[0], c, c_new, h, work[1], 0, H, H)
    c[:] = c_new


def _flag():
    """The ``flag`` the row functions take for these options (unused)."""
    return False


_forward = make_forward("lstm", _forward_row)
_backward_full = make_backward("lstm", _backward_row, OWN_STATE, False)
_backward_window = make_backward_window("lstm", _backward_row, OWN_STATE, False)


# ---------------------------------------------------------------- step API

class LSTMStepCache(NamedTuple):
    seq: "LSTMInputCache"


def lstm_step_forward(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    """One step: x (B, D), h_prev, c_prev (B, H) -> h_next, c_next (B, H), cache."""
    ck.check_step(LSTM.gates, x, {"h_prev": h_prev, "c_prev": c_prev}, weight_ih, weight_hh,
                  bias_ih, bias_hh)
    hs, c_n, cache = lstm_forward(x[None], h_prev, c_prev, weight_ih, weight_hh, bias_ih,
                                  bias_hh)
    return hs[0], c_n, LSTMStepCache(cache)


def lstm_step_backward(dh_next, dc_next, cache):
    """-> dx (B, D), dh_prev, dc_prev (B, H), dweight_ih, dweight_hh, dbias_ih, dbias_hh."""
    c = ck.check_cache(cache, LSTMStepCache, "lstm_step_backward")
    B, H = c.seq.proj.hs.shape[1:]
    ck.check_state("dh_next", dh_next, B, H, c.seq.proj.hs.dtype, finite=False)
    ck.check_state("dc_next", dc_next, B, H, c.seq.proj.hs.dtype, finite=False)
    dx, dh0, dc0, dwih, dwhh, dbih, dbhh = lstm_backward(
        np.zeros((1,) + dh_next.shape, dh_next.dtype), c.seq, dh_next, dc_next)
    return dx[0], dh0, dc0, dwih, dwhh, dbih, dbhh


# ---------------------------------------------------------------- sequence API

class LSTMCache(NamedTuple):
    hs: np.ndarray           # (T+1, B, H): hs[0] = h0
    cs: np.ndarray           # (T+1, B, H): cs[0] = c0
    gates: np.ndarray        # (T, B, 4H) activated i, f, g, o
    weight_hh: np.ndarray


class LSTMInputCache(NamedTuple):
    proj: LSTMCache
    x: np.ndarray            # (T, B, D)
    weight_ih: np.ndarray


def lstm_forward_proj(xw, h0, c0, weight_hh, bias_hh):
    """xw (T, B, 4H), h0, c0 (B, H) -> hs (T, B, H), c_n (B, H), cache."""
    _, H, dtype = ck.check_cell_params(LSTM.gates, None, weight_hh, None, bias_hh)
    T, B = ck.check_sequence("xw", xw, LSTM.gates * H, dtype, "(T, B, G*H)")
    ck.check_state("h0", h0, B, H, dtype)
    ck.check_state("c0", c0, B, H, dtype)
    hs = np.empty((T + 1, B, H), dtype)
    cs = np.empty((T + 1, B, H), dtype)
    gates = np.empty((T, B, LSTM.gates * H), dtype)
    hs[0], cs[0] = h0, c0
    _forward(np.ascontiguousarray(xw), np.ascontiguousarray(bias_hh), pack_forward(weight_hh),
             split_rows(B, T * B * LSTM.gates * H * H), hs, cs, gates, False)
    return hs[1:], cs[T], LSTMCache(hs, cs, gates, weight_hh)


def lstm_backward_proj(dhs, cache, dh_n=None, dc_n=None, truncate=None):
    """dhs (T, B, H), dh_n, dc_n (B, H) -> dxw (T, B, 4H), dh0, dc0, dweight_hh, dbias_hh."""
    c = ck.check_cache(cache, LSTMCache, "lstm_backward_proj")
    Tp1, B, H = c.hs.shape
    T = Tp1 - 1
    dtype = c.hs.dtype
    ck.check_sequence("dhs", dhs, H, dtype, "(T, B, H)")
    ck.check_shape("dhs", dhs, (T, B, H), "(T, B, H)")
    dh_n = np.zeros((B, H), dtype) if dh_n is None else ck.check_state(
        "dh_n", dh_n, B, H, dtype, finite=False)
    dc_n = np.zeros((B, H), dtype) if dc_n is None else ck.check_state(
        "dc_n", dc_n, B, H, dtype, finite=False)
    truncate = ck.check_truncate(truncate)
    wp = pack_backward(c.weight_hh)
    split = split_rows(B, T * B * ages(T, truncate) * LSTM.gates * H * H)
    dh0 = np.empty((B, H), dtype)
    dhs = np.ascontiguousarray(dhs)
    dh_n = np.ascontiguousarray(dh_n)
    if truncate is None or truncate >= T:
        dxw = np.empty((T, B, LSTM.gates * H), dtype)
        dc0 = np.array(dc_n, dtype, copy=True, order="C")
        _backward_full(dhs, dh_n, dc0, c.hs, c.cs, c.gates, wp, split, dxw, dxw, dh0, False)
    else:
        dxw = np.zeros((T, B, LSTM.gates * H), dtype)
        dc0 = np.empty((B, H), dtype)
        _backward_window(dhs, dh_n, np.ascontiguousarray(dc_n), c.hs, c.cs, c.gates, wp, split,
                         truncate, dxw, dxw, dh0, dc0, False)
    dweight_hh, dbias_hh = recurrent_grads(dxw, c.hs)
    return dxw, dh0, dc0, dweight_hh, dbias_hh


def lstm_forward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh):
    """x (T, B, D), h0, c0 (B, H) -> hs (T, B, H), c_n (B, H), cache. ``h_n`` is ``hs[-1]``."""
    D, H, dtype = ck.check_cell_params(LSTM.gates, weight_ih, weight_hh, bias_ih, bias_hh)
    ck.check_sequence("x", x, D, dtype, "(T, B, D)")
    xw = input_projection(x, weight_ih, bias_ih)
    hs, c_n, proj = lstm_forward_proj(xw, h0, c0, weight_hh, bias_hh)
    return hs, c_n, LSTMInputCache(proj, x, weight_ih)


def lstm_backward(dhs, cache, dh_n=None, dc_n=None, truncate=None):
    """-> dx (T, B, D), dh0, dc0 (B, H), dweight_ih, dweight_hh, dbias_ih, dbias_hh."""
    c = ck.check_cache(cache, LSTMInputCache, "lstm_backward")
    dxw, dh0, dc0, dweight_hh, dbias_hh = lstm_backward_proj(dhs, c.proj, dh_n, dc_n, truncate)
    dx, dweight_ih, dbias_ih = input_grads(dxw, c.x, c.weight_ih)
    return dx, dh0, dc0, dweight_ih, dweight_hh, dbias_ih, dbias_hh


FUNCTIONS = CellFunctions(lstm_step_forward, lstm_step_backward, lstm_forward, lstm_backward,
                          lstm_forward_proj, lstm_backward_proj)
KERNELS = CellKernels(_forward, _backward_full, _step_row, _flag)
