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
from ..cells import GRU, CellFunctions, CellKernels
from ._blocks import input_grads, input_projection, njit, recurrent_grads
from ._bptt import (STATE_IN_DH, ages, make_backward, make_backward_window, make_forward,
                    pack_backward, pack_forward, split_rows)
from ._math import flush, sigmoid, tanh



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


# ---------------------------------------------------------------- the cell in the time loops

# saved (T, B, 4H): the activated gates r, z, n in [:3H], W_hn h + b_hn in [3H:]

@njit
def _forward_row(xw, t, b, ar, bias, hs, cs, saved, flag):
    H = hs.shape[2]
    s = saved[t, b]
    _gates_forward(xw[t, b], ar, bias, hs[t, b], hs[t + 1, b], s[:3 * H], s[3 * H:], 0, H, H)


@njit
def _backward_row(t, b, dh, dh_ext, direct_in, direct_out, hs, cs, saved, dx_row, dh_row,
                  scratch, flag):
    H = hs.shape[2]
    s = saved[t, b]
    _gates_backward(dh, dh_ext, direct_in, s[:3 * H], s[3 * H:], hs[t, b], dx_row, dh_row,
                    direct_out, 0, H, H)


# ---------------------------------------------------------------- one step (sampling)

@njit
def _step_row(gx, gh, work, h, c, flag):
    """One step of one batch row for the sampler (``kernels.stack``): gx, gh (3H,) the input
    and recurrent pre-activations, each with its bias; updates h (H,) in place (c is unused).
    The time loops' fused pass, with the recurrent bias already in gh: work (3, 3H), work[0]
    zeros (the bias), the rest scratch (no output overlaps an input: LLVM would not
    vectorise)."""
    H = h.shape[0]
    h_new = work[2, H:2 * H]
    _gates_forward(gx, gh, work[0], h, h_new, work[1], work[2, :H], 0, H, H)
    h[:] = h_new


def _flag():
    """The ``flag`` the row functions take for these options (unused)."""
    return False


_forward = make_forward("gru", _forward_row)
_backward_full = make_backward("gru", _backward_row, STATE_IN_DH, True)
_backward_window = make_backward_window("gru", _backward_row, STATE_IN_DH, True)


# ---------------------------------------------------------------- step API

class GRUStepCache(NamedTuple):
    seq: "GRUInputCache"


def gru_step_forward(x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    """One step: x (B, D), h_prev (B, H) -> h_next (B, H), cache."""
    ck.check_step(GRU.gates, x, {"h_prev": h_prev}, weight_ih, weight_hh, bias_ih, bias_hh)
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
    _, H, dtype = ck.check_cell_params(GRU.gates, None, weight_hh, None, bias_hh)
    T, B = ck.check_sequence("xw", xw, GRU.gates * H, dtype, "(T, B, G*H)")
    ck.check_state("h0", h0, B, H, dtype)
    hs = np.empty((T + 1, B, H), dtype)
    saved = np.empty((T, B, (GRU.gates + 1) * H), dtype)
    hs[0] = h0
    _forward(np.ascontiguousarray(xw), np.ascontiguousarray(bias_hh), pack_forward(weight_hh),
             split_rows(B, T * B * GRU.gates * H * H), hs, hs, saved, False)
    return hs[1:], GRUCache(hs, saved[..., :GRU.gates * H], saved[..., GRU.gates * H:], weight_hh)


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
    saved = c.gates.base if c.gates.base is not None and c.gates.base is c.ah_n.base else None
    if saved is None or saved.shape != (T, B, (GRU.gates + 1) * H):
        saved = np.concatenate([c.gates, c.ah_n], axis=2)      # a cache built by hand
    wp = pack_backward(c.weight_hh)
    split = split_rows(B, T * B * ages(T, truncate) * GRU.gates * H * H)
    dhs = np.ascontiguousarray(dhs)
    dh_n = np.ascontiguousarray(dh_n)
    direct = np.zeros((B, H), dtype)          # the direct path (through z) starts at zero
    dh0 = np.empty((B, H), dtype)
    if truncate is None or truncate >= T:
        dxw = np.empty((T, B, GRU.gates * H), dtype)
        dhw = np.empty((T, B, GRU.gates * H), dtype)
        _backward_full(dhs, dh_n, direct, c.hs, c.hs, saved, wp, split, dxw, dhw, dh0, False)
    else:
        dxw = np.zeros((T, B, GRU.gates * H), dtype)
        dhw = np.zeros((T, B, GRU.gates * H), dtype)
        _backward_window(dhs, dh_n, direct, c.hs, c.hs, saved, wp, split, truncate, dxw, dhw,
                         dh0, np.empty((B, H), dtype), False)
    dweight_hh, dbias_hh = recurrent_grads(dhw, c.hs)
    return dxw, dh0, dweight_hh, dbias_hh


def gru_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    """x (T, B, D), h0 (B, H) -> hs (T, B, H), cache. The final state is ``hs[-1]``."""
    D, H, dtype = ck.check_cell_params(GRU.gates, weight_ih, weight_hh, bias_ih, bias_hh)
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


FUNCTIONS = CellFunctions(gru_step_forward, gru_step_backward, gru_forward, gru_backward,
                          gru_forward_proj, gru_backward_proj)
KERNELS = CellKernels(_forward, _backward_full, _step_row, _flag)
