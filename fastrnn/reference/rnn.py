"""Vanilla (Elman) RNN in plain NumPy: the readable reference the kernels are checked against.

    h[t] = act(x[t] @ weight_ih.T + bias_ih + h[t-1] @ weight_hh.T + bias_hh)

with ``act`` = tanh or relu, PyTorch's ``nn.RNN`` names and shapes:
``weight_ih (H, D)``, ``weight_hh (H, H)``, ``bias_ih (H,)``, ``bias_hh (H,)``.
Layout is time-major: ``x (T, B, D)``, states ``(B, H)``, outputs ``hs (T, B, H)``.

Entry points (the kernels in ``fastrnn.kernels.rnn`` have the same names and signatures):

- ``rnn_step_forward`` / ``rnn_step_backward``: one time step.
- ``rnn_forward`` / ``rnn_backward``: a whole sequence, full or truncated BPTT.
- ``rnn_forward_proj`` / ``rnn_backward_proj``: the same, taking the projected inputs
  ``xw = x @ weight_ih.T + bias_ih`` (T, B, H) and returning their gradient, for callers that
  compute ``xw`` another way (e.g. gathered from a table for token inputs).

Truncated BPTT (``truncate=k`` on every backward): the loss at step t sends its gradient through
at most k recurrent transitions (steps t-k .. t), the ``bptt_truncate`` of the classic NumPy RNN
tutorial; ``truncate=None`` or ``k >= T`` is full BPTT. See ``fastrnn.reference._bptt``.
Chunked, stateful truncation (what the trainer does) needs no option: run the forward on
consecutive chunks with ``h0`` = the previous chunk's last state and full BPTT inside each chunk;
the gradient stops at chunk borders because ``dh0`` is simply not passed on.
"""

from typing import NamedTuple

import numpy as np

from .. import _checks as ck
from ..cells import RNN, CellFunctions
from ._bptt import backward_through_time, input_grads, project_inputs, recurrent_grads



def _act(a, nonlinearity):
    return np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)


def _act_grad(h, nonlinearity):
    """Derivative of the activation, written in terms of its output h."""
    return 1 - h * h if nonlinearity == "tanh" else (h > 0).astype(h.dtype)


# ---------------------------------------------------------------- one step, on projected input

def _cell_forward(xw, h_prev, weight_hh, bias_hh, nonlinearity):
    a = xw + h_prev @ weight_hh.T + bias_hh                  # (B, H)
    return _act(a, nonlinearity)                              # (B, H)


def _cell_backward(dh, h_prev, h, weight_hh, nonlinearity):
    da = dh * _act_grad(h, nonlinearity)                      # (B, H)
    dh_prev = da @ weight_hh                                  # (B, H)
    return da, dh_prev


# ---------------------------------------------------------------- step API

class RNNStepCache(NamedTuple):
    x: np.ndarray            # (B, D)
    h_prev: np.ndarray       # (B, H)
    h_next: np.ndarray       # (B, H)
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    nonlinearity: str


def rnn_step_forward(x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity="tanh"):
    """One step: x (B, D), h_prev (B, H) -> h_next (B, H), cache."""
    ck.check_step(RNN.gates, x, {"h_prev": h_prev}, weight_ih, weight_hh, bias_ih, bias_hh)
    ck.check_nonlinearity(nonlinearity)
    xw = project_inputs(x, weight_ih, bias_ih)                # (B, H)
    h_next = _cell_forward(xw, h_prev, weight_hh, bias_hh, nonlinearity)
    return h_next, RNNStepCache(x, h_prev, h_next, weight_ih, weight_hh, nonlinearity)


def rnn_step_backward(dh_next, cache):
    """-> dx (B, D), dh_prev (B, H), dweight_ih, dweight_hh, dbias_ih, dbias_hh."""
    c = ck.check_cache(cache, RNNStepCache, "rnn_step_backward")
    ck.check_state("dh_next", dh_next, *c.h_next.shape, c.h_next.dtype, finite=False)
    da, dh_prev = _cell_backward(dh_next, c.h_prev, c.h_next, c.weight_hh, c.nonlinearity)
    dx, dweight_ih, dbias_ih = input_grads(da, c.x, c.weight_ih)
    dweight_hh, dbias_hh = recurrent_grads(da, c.h_prev)
    return dx, dh_prev, dweight_ih, dweight_hh, dbias_ih, dbias_hh


# ---------------------------------------------------------------- sequence API

class RNNCache(NamedTuple):
    hs: np.ndarray           # (T+1, B, H): hs[0] = h0, hs[t+1] = output of step t
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
    hs = np.empty((T + 1, B, H), dtype)                       # (T+1, B, H)
    hs[0] = h0
    for t in range(T):
        hs[t + 1] = _cell_forward(xw[t], hs[t], weight_hh, bias_hh, nonlinearity)
    return hs[1:], RNNCache(hs, weight_hh, nonlinearity)


def rnn_backward_proj(dhs, cache, dh_n=None, truncate=None):
    """dhs (T, B, H) (and dh_n (B, H)) -> dxw (T, B, H), dh0, dweight_hh, dbias_hh."""
    c = ck.check_cache(cache, RNNCache, "rnn_backward_proj")
    Tp1, B, H = c.hs.shape
    dtype = c.hs.dtype
    ck.check_sequence("dhs", dhs, H, dtype, "(T, B, H)")
    ck.check_shape("dhs", dhs, (Tp1 - 1, B, H), "(T, B, H)")
    dh_n = np.zeros((B, H), dtype) if dh_n is None else ck.check_state(
        "dh_n", dh_n, B, H, dtype, finite=False)
    truncate = ck.check_truncate(truncate)

    def step_back(t, dstate):
        da, dh_prev = _cell_backward(dstate[0], c.hs[t], c.hs[t + 1], c.weight_hh,
                                     c.nonlinearity)
        return da, da, (dh_prev,)

    dxw, dhw, (dh0,) = backward_through_time(step_back, dhs, (dh_n,), truncate)
    dweight_hh, dbias_hh = recurrent_grads(dhw, c.hs[:-1])
    return dxw, dh0, dweight_hh, dbias_hh


def rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity="tanh"):
    """x (T, B, D), h0 (B, H) -> hs (T, B, H), cache. The final state is ``hs[-1]``."""
    D, H, dtype = ck.check_cell_params(RNN.gates, weight_ih, weight_hh, bias_ih, bias_hh)
    ck.check_sequence("x", x, D, dtype, "(T, B, D)")
    xw = project_inputs(x, weight_ih, bias_ih)                # (T, B, H)
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
