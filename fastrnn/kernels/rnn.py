"""Vanilla RNN kernels: the compiled twin of ``fastrnn.reference.rnn`` (same names,
signatures and results; read that module for the maths and the truncation semantics).

The structure is that of ``fastrnn.kernels.lstm`` with one gate and no cell state: the input
projection of all steps is one product; per step each thread owns hidden units ``lo:hi``, does
one BLAS product for their recurrent pre-activations and one fused pass for the nonlinearity;
the weight gradients are one product each after the loop.
"""

from typing import NamedTuple

import numpy as np

from .. import _checks as ck
from ..cells import RNN, CellFunctions, CellKernels
from ._blocks import input_grads, input_projection, njit, recurrent_grads
from ._bptt import (NO_STATE, ages, make_backward, make_backward_window, make_forward,
                    pack_backward, pack_forward, split_rows)
from ._math import flush, tanh



# ---------------------------------------------------------------- fused passes

# Loops index contiguous slices by the loop variable alone, so LLVM vectorises them (see
# ``fastrnn.kernels.lstm``).

@njit
def _act_forward(xr, ar, bias, h_out, lo, n, relu):
    """One batch row, units lo..lo+n: h_out = act(xr + ar + bias) on those units."""
    x = xr[lo:lo + n]
    bq = bias[lo:lo + n]
    h = h_out[lo:lo + n]
    if relu:
        for u in range(n):
            a = x[u] + ar[u] + bq[u]
            h[u] = flush(a, h) if (a > 0 or a != a) else 0.0   # NaN stays NaN, as np.maximum
    else:
        for u in range(n):
            h[u] = flush(tanh(x[u] + ar[u] + bq[u]), h)     # no subnormals: see _math.flush


@njit
def _act_backward(dh_in, dh_ext, h_row, da_row, lo, n, relu):
    """One batch row: da = (dh_in + dh_ext) * act'(.) on units lo..lo+n, from the output h."""
    ext = dh_ext[lo:lo + n]
    h = h_row[lo:lo + n]
    da = da_row[lo:lo + n]
    if relu:
        for u in range(n):
            da[u] = flush(dh_in[u] + ext[u], da) if h[u] > 0 else 0.0
    else:
        for u in range(n):
            da[u] = flush((dh_in[u] + ext[u]) * (1 - h[u] * h[u]), da)


# ---------------------------------------------------------------- the cell in the time loops

@njit
def _forward_row(xw, t, b, ar, bias, hs, cs, saved, relu):
    _act_forward(xw[t, b], ar, bias, hs[t + 1, b], 0, hs.shape[2], relu)


@njit
def _backward_row(t, b, dh, dh_ext, ds_in, ds_out, hs, cs, saved, dx_row, dh_row, scratch,
                  relu):
    _act_backward(dh, dh_ext, hs[t + 1, b], dh_row, 0, hs.shape[2], relu)


# ---------------------------------------------------------------- one step (sampling)

@njit
def _step_row(gx, gh, work, h, c, relu):
    """One step of one batch row for the sampler (``kernels.stack``): gx, gh (H,) the input
    and recurrent pre-activations, each with its bias; updates h (H,) in place (c is unused).
    The time loops' fused pass, with the recurrent bias already in gh: work (3, H), work[0]
    zeros (the bias)."""
    _act_forward(gx, gh, work[0], h, 0, h.shape[0], relu)


def _flag(nonlinearity="tanh"):
    """The ``flag`` the row functions take for these options: relu."""
    return nonlinearity == "relu"


_forward = make_forward("rnn", _forward_row)
_backward_full = make_backward("rnn", _backward_row, NO_STATE, False)
_backward_window = make_backward_window("rnn", _backward_row, NO_STATE, False)


# ---------------------------------------------------------------- step API

class RNNStepCache(NamedTuple):
    seq: "RNNInputCache"


def rnn_step_forward(x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity="tanh"):
    """One step: x (B, D), h_prev (B, H) -> h_next (B, H), cache."""
    ck.check_step(RNN.gates, x, {"h_prev": h_prev}, weight_ih, weight_hh, bias_ih, bias_hh)
    hs, cache = rnn_forward(x[None], h_prev, weight_ih, weight_hh, bias_ih, bias_hh,
                            nonlinearity)
    return hs[0], RNNStepCache(cache)


def rnn_step_backward(dh_next, cache):
    """-> dx (B, D), dh_prev (B, H), dweight_ih, dweight_hh, dbias_ih, dbias_hh."""
    c = ck.check_cache(cache, RNNStepCache, "rnn_step_backward")
    B, H = c.seq.proj.hs.shape[1:]
    ck.check_state("dh_next", dh_next, B, H, c.seq.proj.hs.dtype, finite=False)
    dx, dh0, dwih, dwhh, dbih, dbhh = rnn_backward(
        np.zeros((1, B, H), dh_next.dtype), c.seq, dh_next)
    return dx[0], dh0, dwih, dwhh, dbih, dbhh


# ---------------------------------------------------------------- sequence API

class RNNCache(NamedTuple):
    hs: np.ndarray           # (T+1, B, H): hs[0] = h0
    weight_hh: np.ndarray
    nonlinearity: str


class RNNInputCache(NamedTuple):
    proj: RNNCache
    x: np.ndarray            # (T, B, D)
    weight_ih: np.ndarray


def rnn_forward_proj(xw, h0, weight_hh, bias_hh, nonlinearity="tanh"):
    """xw (T, B, H) projected inputs, h0 (B, H) -> hs (T, B, H), cache."""
    _, H, dtype = ck.check_cell_params(RNN.gates, None, weight_hh, None, bias_hh)
    ck.check_nonlinearity(nonlinearity)
    T, B = ck.check_sequence("xw", xw, RNN.gates * H, dtype, "(T, B, G*H)")
    ck.check_state("h0", h0, B, H, dtype)
    hs = np.empty((T + 1, B, H), dtype)
    hs[0] = h0
    _forward(np.ascontiguousarray(xw), np.ascontiguousarray(bias_hh), pack_forward(weight_hh),
             split_rows(B, T * B * H * H), hs, hs, hs, nonlinearity == "relu")
    return hs[1:], RNNCache(hs, weight_hh, nonlinearity)


def rnn_backward_proj(dhs, cache, dh_n=None, truncate=None):
    """dhs (T, B, H) (and dh_n (B, H)) -> dxw (T, B, H), dh0, dweight_hh, dbias_hh."""
    c = ck.check_cache(cache, RNNCache, "rnn_backward_proj")
    Tp1, B, H = c.hs.shape
    T = Tp1 - 1
    dtype = c.hs.dtype
    ck.check_sequence("dhs", dhs, H, dtype, "(T, B, H)")
    ck.check_shape("dhs", dhs, (T, B, H), "(T, B, H)")
    dh_n = np.zeros((B, H), dtype) if dh_n is None else ck.check_state(
        "dh_n", dh_n, B, H, dtype, finite=False)
    truncate = ck.check_truncate(truncate)
    wp = pack_backward(c.weight_hh)
    split = split_rows(B, T * B * ages(T, truncate) * H * H)
    relu = c.nonlinearity == "relu"
    dh0 = np.empty((B, H), dtype)
    dhs = np.ascontiguousarray(dhs)
    dh_n = np.ascontiguousarray(dh_n)
    unused = np.zeros((B, H), dtype)         # no second state
    if truncate is None or truncate >= T:
        dxw = np.empty((T, B, H), dtype)
        _backward_full(dhs, dh_n, unused, c.hs, c.hs, c.hs, wp, split, dxw, dxw, dh0, relu)
    else:
        dxw = np.zeros((T, B, H), dtype)
        _backward_window(dhs, dh_n, unused, c.hs, c.hs, c.hs, wp, split, truncate, dxw, dxw,
                         dh0, np.empty((B, H), dtype), relu)
    dweight_hh, dbias_hh = recurrent_grads(dxw, c.hs)
    return dxw, dh0, dweight_hh, dbias_hh


def rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity="tanh"):
    """x (T, B, D), h0 (B, H) -> hs (T, B, H), cache. The final state is ``hs[-1]``."""
    D, H, dtype = ck.check_cell_params(RNN.gates, weight_ih, weight_hh, bias_ih, bias_hh)
    ck.check_sequence("x", x, D, dtype, "(T, B, D)")
    ck.check_nonlinearity(nonlinearity)
    xw = input_projection(x, weight_ih, bias_ih)
    hs, proj = rnn_forward_proj(xw, h0, weight_hh, bias_hh, nonlinearity)
    return hs, RNNInputCache(proj, x, weight_ih)


def rnn_backward(dhs, cache, dh_n=None, truncate=None):
    """-> dx (T, B, D), dh0 (B, H), dweight_ih, dweight_hh, dbias_ih, dbias_hh."""
    c = ck.check_cache(cache, RNNInputCache, "rnn_backward")
    dxw, dh0, dweight_hh, dbias_hh = rnn_backward_proj(dhs, c.proj, dh_n, truncate)
    dx, dweight_ih, dbias_ih = input_grads(dxw, c.x, c.weight_ih)
    return dx, dh0, dweight_ih, dweight_hh, dbias_ih, dbias_hh


FUNCTIONS = CellFunctions(rnn_step_forward, rnn_step_backward, rnn_forward, rnn_backward,
                          rnn_forward_proj, rnn_backward_proj)
KERNELS = CellKernels(_forward, _backward_full, _step_row, _flag)
