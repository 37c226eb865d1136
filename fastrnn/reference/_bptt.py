"""Pieces every reference cell shares: the input projection and the walk back through time.

Notation (time-major, 0-indexed): step ``t`` reads the state ``S[t]`` (``S[0]`` is the initial
state) and the projected input ``xw[t] = x[t] @ weight_ih.T + bias_ih`` and writes ``S[t+1]``;
the output at step ``t`` is ``hs[t] = h part of S[t+1]``.

Truncated BPTT (``truncate=k``): the gradient of the loss at step ``t`` flows back through at
most ``k`` recurrent transitions, so it reaches the computations of steps ``t-k .. t`` and is
cut before the state ``S[t-k]``. This is the ``bptt_truncate`` of the classic NumPy RNN
tutorial. The initial state receives the gradient of loss ``t`` only when ``t - k < 0``, so
``truncate >= T`` is exactly full BPTT. The gradient given for the final state(s) counts as
part of the loss at step ``T-1``.
"""

import numpy as np


def project_inputs(x, weight_ih, bias_ih):
    """(T, B, D) or (B, D) @ (G*H, D)^T + (G*H,) -> (..., G*H): one product for all steps."""
    return x @ weight_ih.T + bias_ih


def input_grads(dxw, x, weight_ih):
    """Back through ``project_inputs``: returns dx, dweight_ih, dbias_ih (one product each)."""
    gh = weight_ih.shape[0]
    dxw2 = dxw.reshape(-1, gh)                                # (T*B, G*H)
    x2 = x.reshape(-1, x.shape[-1])                           # (T*B, D)
    dx = dxw @ weight_ih                                      # (..., D)
    dweight_ih = dxw2.T @ x2                                  # (G*H, D)
    dbias_ih = dxw2.sum(axis=0)                               # (G*H,)
    return dx, dweight_ih, dbias_ih


def backward_through_time(step_back, dhs, dstate_n, truncate):
    """Walk the steps backwards and collect the gradients of every step's pre-activations.

    ``step_back(t, dstate) -> (dxw_t, dhw_t, dstate_prev)`` is the cell's backward of step
    ``t``: ``dstate`` is a tuple of gradients w.r.t. the state written by step ``t``
    (``(dh,)`` or ``(dh, dc)``); ``dxw_t`` is the gradient of the projected input and ``dhw_t``
    that of the recurrent pre-activation ``h @ weight_hh.T + bias_hh`` (they differ only for
    the GRU's candidate gate).
    ``dhs`` (T, B, H) is the gradient w.r.t. every output; ``dstate_n`` the tuple of gradients
    w.r.t. the final state(s).
    Returns ``dxw (T, B, G*H)``, ``dhw (T, B, G*H)`` and the tuple of initial-state gradients.
    """
    T = dhs.shape[0]
    dxw = dhw = None
    if truncate is None or truncate >= T:
        # Full BPTT: one sweep, the gradients of all losses travel together.
        dstate = tuple(d.copy() for d in dstate_n)
        for t in range(T - 1, -1, -1):
            dstate = (dstate[0] + dhs[t],) + dstate[1:]
            gx, gh, dstate = step_back(t, dstate)
            if dxw is None:
                dxw = np.zeros((T,) + gx.shape, gx.dtype)     # (T, B, G*H)
                dhw = np.zeros((T,) + gh.shape, gh.dtype)     # (T, B, G*H)
            dxw[t] = gx
            dhw[t] = gh
        return dxw, dhw, dstate

    # Windowed truncation: the loss at each step t travels alone through steps t .. t-k.
    k = truncate
    dstate0 = tuple(np.zeros_like(d) for d in dstate_n)
    for t in range(T - 1, -1, -1):
        if t == T - 1:
            dstate = (dstate_n[0] + dhs[t],) + tuple(dstate_n[1:])
        else:
            dstate = (dhs[t],) + tuple(np.zeros_like(d) for d in dstate_n[1:])
        for j in range(t, max(t - k, 0) - 1, -1):
            gx, gh, dstate = step_back(j, dstate)
            if dxw is None:
                dxw = np.zeros((T,) + gx.shape, gx.dtype)
                dhw = np.zeros((T,) + gh.shape, gh.dtype)
            dxw[j] += gx
            dhw[j] += gh
        if t - k < 0:                       # the window ran past step 0: S[0] is inside it
            dstate0 = tuple(a + b for a, b in zip(dstate0, dstate))
    return dxw, dhw, dstate0


def recurrent_grads(dhw, hs_prev):
    """dweight_hh = sum_t dhw[t]^T @ h[t-1] and dbias_hh, each ONE product over all steps."""
    gh = dhw.shape[-1]
    dhw2 = dhw.reshape(-1, gh)                                # (T*B, G*H)
    h2 = hs_prev.reshape(-1, hs_prev.shape[-1])               # (T*B, H)
    return dhw2.T @ h2, dhw2.sum(axis=0)
