"""LSTM in plain NumPy: the readable reference the kernels are checked against.

PyTorch's ``nn.LSTM`` names, shapes and gate order (i, f, g, o):
``weight_ih (4H, D)``, ``weight_hh (4H, H)``, ``bias_ih (4H,)``, ``bias_hh (4H,)``.

    a = x[t] @ weight_ih.T + bias_ih + h[t-1] @ weight_hh.T + bias_hh      (B, 4H)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)
    c[t] = f * c[t-1] + i * g
    h[t] = o * tanh(c[t])

Layout is time-major: ``x (T, B, D)``, states ``(B, H)``, outputs ``hs (T, B, H)``.

Entry points (the kernels in ``fastrnn.kernels.lstm`` have the same names and signatures):
``lstm_step_forward`` / ``lstm_step_backward`` (one step), ``lstm_forward`` / ``lstm_backward``
(a sequence), ``lstm_forward_proj`` / ``lstm_backward_proj`` (a sequence given the projected
inputs ``xw = x @ weight_ih.T + bias_ih`` (T, B, 4H), returning their gradient).

Truncated BPTT (``truncate=k``): the loss at step t sends its gradient (through both h and c)
back through at most k recurrent transitions, to steps t-k .. t; ``None`` or ``k >= T`` is full
BPTT (see ``fastrnn.reference._bptt``). Chunked stateful truncation is done by the caller:
carry ``(h_n, c_n)`` into the next chunk's ``(h0, c0)`` and drop ``dh0, dc0``.
"""

from typing import NamedTuple

import numpy as np

from .. import _checks as ck
from ..cells import LSTM, CellFunctions
from ._bptt import backward_through_time, input_grads, project_inputs, recurrent_grads



def sigmoid(a):
    """Logistic function, written with tanh so it never overflows."""
    return 0.5 * np.tanh(0.5 * a) + 0.5


# ---------------------------------------------------------------- one step, on projected input

def _cell_forward(xw, h_prev, c_prev, weight_hh, bias_hh):
    H = h_prev.shape[1]
    a = xw + h_prev @ weight_hh.T + bias_hh                   # (B, 4H)
    i = sigmoid(a[:, 0 * H:1 * H])                            # (B, H)
    f = sigmoid(a[:, 1 * H:2 * H])
    g = np.tanh(a[:, 2 * H:3 * H])
    o = sigmoid(a[:, 3 * H:4 * H])
    c = f * c_prev + i * g                                    # (B, H)
    h = o * np.tanh(c)                                        # (B, H)
    gates = np.concatenate([i, f, g, o], axis=1)              # (B, 4H)
    return h, c, gates


def _cell_backward(dh, dc, c_prev, c, gates, weight_hh):
    H = c.shape[1]
    i, f, g, o = (gates[:, k * H:(k + 1) * H] for k in range(4))
    tc = np.tanh(c)                                           # (B, H)
    do = dh * tc
    dc = dc + dh * o * (1 - tc * tc)
    di = dc * g
    dg = dc * i
    df = dc * c_prev
    dc_prev = dc * f                                          # (B, H)
    da = np.concatenate([di * i * (1 - i),                    # (B, 4H)
                         df * f * (1 - f),
                         dg * (1 - g * g),
                         do * o * (1 - o)], axis=1)
    dh_prev = da @ weight_hh                                  # (B, H)
    return da, dh_prev, dc_prev


# ---------------------------------------------------------------- step API

class LSTMStepCache(NamedTuple):
    x: np.ndarray            # (B, D)
    h_prev: np.ndarray       # (B, H)
    c_prev: np.ndarray       # (B, H)
    c_next: np.ndarray       # (B, H)
    gates: np.ndarray        # (B, 4H) activated i, f, g, o
    weight_ih: np.ndarray
    weight_hh: np.ndarray


def lstm_step_forward(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    """One step: x (B, D), h_prev, c_prev (B, H) -> h_next, c_next (B, H), cache."""
    ck.check_step(LSTM.gates, x, {"h_prev": h_prev, "c_prev": c_prev}, weight_ih, weight_hh,
                  bias_ih, bias_hh)
    xw = project_inputs(x, weight_ih, bias_ih)                # (B, 4H)
    h, c, gates = _cell_forward(xw, h_prev, c_prev, weight_hh, bias_hh)
    return h, c, LSTMStepCache(x, h_prev, c_prev, c, gates, weight_ih, weight_hh)


def lstm_step_backward(dh_next, dc_next, cache):
    """-> dx (B, D), dh_prev, dc_prev (B, H), dweight_ih, dweight_hh, dbias_ih, dbias_hh."""
    c = ck.check_cache(cache, LSTMStepCache, "lstm_step_backward")
    ck.check_state("dh_next", dh_next, *c.c_next.shape, c.c_next.dtype, finite=False)
    ck.check_state("dc_next", dc_next, *c.c_next.shape, c.c_next.dtype, finite=False)
    da, dh_prev, dc_prev = _cell_backward(dh_next, dc_next, c.c_prev, c.c_next, c.gates,
                                          c.weight_hh)
    dx, dweight_ih, dbias_ih = input_grads(da, c.x, c.weight_ih)
    dweight_hh, dbias_hh = recurrent_grads(da, c.h_prev)
    return dx, dh_prev, dc_prev, dweight_ih, dweight_hh, dbias_ih, dbias_hh


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
    hs = np.empty((T + 1, B, H), dtype)                       # (T+1, B, H)
    cs = np.empty((T + 1, B, H), dtype)                       # (T+1, B, H)
    gates = np.empty((T, B, LSTM.gates * H), dtype)                # (T, B, 4H)
    hs[0], cs[0] = h0, c0
    for t in range(T):
        hs[t + 1], cs[t + 1], gates[t] = _cell_forward(xw[t], hs[t], cs[t], weight_hh, bias_hh)
    return hs[1:], cs[T], LSTMCache(hs, cs, gates, weight_hh)


def lstm_backward_proj(dhs, cache, dh_n=None, dc_n=None, truncate=None):
    """dhs (T, B, H), dh_n, dc_n (B, H) -> dxw (T, B, 4H), dh0, dc0, dweight_hh, dbias_hh."""
    c = ck.check_cache(cache, LSTMCache, "lstm_backward_proj")
    Tp1, B, H = c.hs.shape
    dtype = c.hs.dtype
    ck.check_sequence("dhs", dhs, H, dtype, "(T, B, H)")
    ck.check_shape("dhs", dhs, (Tp1 - 1, B, H), "(T, B, H)")
    dh_n = np.zeros((B, H), dtype) if dh_n is None else ck.check_state(
        "dh_n", dh_n, B, H, dtype, finite=False)
    dc_n = np.zeros((B, H), dtype) if dc_n is None else ck.check_state(
        "dc_n", dc_n, B, H, dtype, finite=False)
    truncate = ck.check_truncate(truncate)

    def step_back(t, dstate):
        da, dh_prev, dc_prev = _cell_backward(dstate[0], dstate[1], c.cs[t], c.cs[t + 1],
                                              c.gates[t], c.weight_hh)
        return da, da, (dh_prev, dc_prev)

    dxw, dhw, (dh0, dc0) = backward_through_time(step_back, dhs, (dh_n, dc_n), truncate)
    dweight_hh, dbias_hh = recurrent_grads(dhw, c.hs[:-1])
    return dxw, dh0, dc0, dweight_hh, dbias_hh


def lstm_forward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh):
    """x (T, B, D), h0, c0 (B, H) -> hs (T, B, H), c_n (B, H), cache. ``h_n`` is ``hs[-1]``."""
    D, H, dtype = ck.check_cell_params(LSTM.gates, weight_ih, weight_hh, bias_ih, bias_hh)
    ck.check_sequence("x", x, D, dtype, "(T, B, D)")
    xw = project_inputs(x, weight_ih, bias_ih)                # (T, B, 4H)
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
