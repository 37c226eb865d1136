"""GRU in plain NumPy: the readable reference the kernels are checked against.

PyTorch's ``nn.GRU`` names, shapes and gate order (r, z, n):
``weight_ih (3H, D)``, ``weight_hh (3H, H)``, ``bias_ih (3H,)``, ``bias_hh (3H,)``.

    ax = x[t] @ weight_ih.T + bias_ih                      (B, 3H)
    ah = h[t-1] @ weight_hh.T + bias_hh                    (B, 3H)
    r = sigmoid(ax_r + ah_r)
    z = sigmoid(ax_z + ah_z)
    n = tanh(ax_n + r * ah_n)                              (r applied after the product, as PyTorch)
    h[t] = (1 - z) * n + z * h[t-1]

Layout is time-major: ``x (T, B, D)``, states ``(B, H)``, outputs ``hs (T, B, H)``.

Entry points (the kernels in ``fastrnn.kernels.gru`` have the same names and signatures):
``gru_step_forward`` / ``gru_step_backward`` (one step), ``gru_forward`` / ``gru_backward``
(a sequence), ``gru_forward_proj`` / ``gru_backward_proj`` (a sequence given the projected
inputs ``xw = x @ weight_ih.T + bias_ih`` (T, B, 3H), returning their gradient).

Truncated BPTT (``truncate=k``): the loss at step t sends its gradient back through at most k
recurrent transitions, to steps t-k .. t; ``None`` or ``k >= T`` is full BPTT (see
``fastrnn.reference._bptt``). Chunked stateful truncation: carry ``hs[-1]`` into the next
chunk's ``h0`` and drop ``dh0``.
"""

from typing import NamedTuple

import numpy as np

from .. import _checks as ck
from ..cells import GRU, CellFunctions
from ._bptt import backward_through_time, input_grads, project_inputs, recurrent_grads
from .lstm import sigmoid



# ---------------------------------------------------------------- one step, on projected input

def _cell_forward(xw, h_prev, weight_hh, bias_hh):
    H = h_prev.shape[1]
    ah = h_prev @ weight_hh.T + bias_hh                       # (B, 3H)
    r = sigmoid(xw[:, 0 * H:1 * H] + ah[:, 0 * H:1 * H])      # (B, H)
    z = sigmoid(xw[:, 1 * H:2 * H] + ah[:, 1 * H:2 * H])
    ah_n = ah[:, 2 * H:3 * H]
    n = np.tanh(xw[:, 2 * H:3 * H] + r * ah_n)
    h = (1 - z) * n + z * h_prev                              # (B, H)
    gates = np.concatenate([r, z, n], axis=1)                 # (B, 3H)
    return h, gates, ah_n


def _cell_backward(dh, h_prev, gates, ah_n, weight_hh):
    H = h_prev.shape[1]
    r, z, n = (gates[:, k * H:(k + 1) * H] for k in range(3))
    dn = dh * (1 - z)                                         # (B, H)
    dz = dh * (h_prev - n)
    dan = dn * (1 - n * n)
    dr = dan * ah_n
    dar = dr * r * (1 - r)
    daz = dz * z * (1 - z)
    dxw = np.concatenate([dar, daz, dan], axis=1)             # (B, 3H)
    dhw = np.concatenate([dar, daz, dan * r], axis=1)         # (B, 3H)
    dh_prev = dh * z + dhw @ weight_hh                        # (B, H)
    return dxw, dhw, dh_prev


# ---------------------------------------------------------------- step API

class GRUStepCache(NamedTuple):
    x: np.ndarray            # (B, D)
    h_prev: np.ndarray       # (B, H)
    gates: np.ndarray        # (B, 3H) activated r, z, n
    ah_n: np.ndarray         # (B, H) h_prev @ W_hn.T + b_hn
    weight_ih: np.ndarray
    weight_hh: np.ndarray


def gru_step_forward(x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    """One step: x (B, D), h_prev (B, H) -> h_next (B, H), cache."""
    ck.check_step(GRU.gates, x, {"h_prev": h_prev}, weight_ih, weight_hh, bias_ih, bias_hh)
    xw = project_inputs(x, weight_ih, bias_ih)                # (B, 3H)
    h, gates, ah_n = _cell_forward(xw, h_prev, weight_hh, bias_hh)
    return h, GRUStepCache(x, h_prev, gates, ah_n, weight_ih, weight_hh)


def gru_step_backward(dh_next, cache):
    """-> dx (B, D), dh_prev (B, H), dweight_ih, dweight_hh, dbias_ih, dbias_hh."""
    c = ck.check_cache(cache, GRUStepCache, "gru_step_backward")
    ck.check_state("dh_next", dh_next, *c.h_prev.shape, c.h_prev.dtype, finite=False)
    dxw, dhw, dh_prev = _cell_backward(dh_next, c.h_prev, c.gates, c.ah_n, c.weight_hh)
    dx, dweight_ih, dbias_ih = input_grads(dxw, c.x, c.weight_ih)
    dweight_hh, dbias_hh = recurrent_grads(dhw, c.h_prev)
    return dx, dh_prev, dweight_ih, dweight_hh, dbias_ih, dbias_hh


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
    hs = np.empty((T + 1, B, H), dtype)                       # (T+1, B, H)
    gates = np.empty((T, B, GRU.gates * H), dtype)                # (T, B, 3H)
    ah_n = np.empty((T, B, H), dtype)                         # (T, B, H)
    hs[0] = h0
    for t in range(T):
        hs[t + 1], gates[t], ah_n[t] = _cell_forward(xw[t], hs[t], weight_hh, bias_hh)
    return hs[1:], GRUCache(hs, gates, ah_n, weight_hh)


def gru_backward_proj(dhs, cache, dh_n=None, truncate=None):
    """dhs (T, B, H) (and dh_n (B, H)) -> dxw (T, B, 3H), dh0, dweight_hh, dbias_hh."""
    c = ck.check_cache(cache, GRUCache, "gru_backward_proj")
    Tp1, B, H = c.hs.shape
    dtype = c.hs.dtype
    ck.check_sequence("dhs", dhs, H, dtype, "(T, B, H)")
    ck.check_shape("dhs", dhs, (Tp1 - 1, B, H), "(T, B, H)")
    dh_n = np.zeros((B, H), dtype) if dh_n is None else ck.check_state(
        "dh_n", dh_n, B, H, dtype, finite=False)
    truncate = ck.check_truncate(truncate)

    def step_back(t, dstate):
        dxw, dhw, dh_prev = _cell_backward(dstate[0], c.hs[t], c.gates[t], c.ah_n[t],
                                           c.weight_hh)
        return dxw, dhw, (dh_prev,)

    dxw, dhw, (dh0,) = backward_through_time(step_back, dhs, (dh_n,), truncate)
    dweight_hh, dbias_hh = recurrent_grads(dhw, c.hs[:-1])
    return dxw, dh0, dweight_hh, dbias_hh


def gru_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    """x (T, B, D), h0 (B, H) -> hs (T, B, H), cache. The final state is ``hs[-1]``."""
    D, H, dtype = ck.check_cell_params(GRU.gates, weight_ih, weight_hh, bias_ih, bias_hh)
    ck.check_sequence("x", x, D, dtype, "(T, B, D)")
    xw = project_inputs(x, weight_ih, bias_ih)                # (T, B, 3H)
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
