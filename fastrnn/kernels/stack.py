"""One step of a whole stack plus decoder in ONE compiled call: the compiled twin of
``fastrnn.reference.stack`` (read it for the arguments). Used for sampling, where a call per
layer per token would cost more than the arithmetic. Single-threaded (B is tiny when
sampling); weights come pre-transposed (``w_ihT``, ``w_hhT`` (L, H, G*H), ``dec_wT`` (H, V))
so every product is a plain row-times-matrix.

Public: ``stack_step`` (checked, transposes per call), and for callers that pack the weights
once and own the workspaces (``fastrnn.nn.Sampler``, ``fastrnn.compat.minchar``) the compiled
``step_packed`` and ``generate_packed``, which check nothing: the caller checks tokens, shapes
and dtypes first (a token outside the table reads out of bounds).
"""

import math

import numpy as np

from .._checks import check_stack_step
from .._jit import njit
from ..cells import SAMPLER_CODES as CELL_CODES  # noqa: F401  (rnn_tanh 0, rnn_relu 1, lstm 2, gru 3)
from ._math import sigmoid, tanh


@njit
def _cell(cell, gx, gh, hrow, crow, H):
    """Gate math for one batch row: gx, gh (G*H,) input and recurrent pre-activations
    (biases included); updates hrow, crow (H,) in place."""
    if cell == 2:                                           # LSTM i, f, g, o
        i, f, g, o = gx[:H], gx[H:2 * H], gx[2 * H:3 * H], gx[3 * H:]
        ri, rf, rg, ro = gh[:H], gh[H:2 * H], gh[2 * H:3 * H], gh[3 * H:]
        for u in range(H):
            cv = sigmoid(f[u] + rf[u]) * crow[u] + sigmoid(i[u] + ri[u]) * tanh(g[u] + rg[u])
            crow[u] = cv
            hrow[u] = sigmoid(o[u] + ro[u]) * tanh(cv)
    elif cell == 3:                                         # GRU r, z, n
        for u in range(H):
            r = sigmoid(gx[u] + gh[u])
            z = sigmoid(gx[H + u] + gh[H + u])
            n = tanh(gx[2 * H + u] + r * gh[2 * H + u])
            hrow[u] = (1 - z) * n + z * hrow[u]
    elif cell == 1:
        for u in range(H):
            a = gx[u] + gh[u]
            hrow[u] = a if (a > 0 or a != a) else 0.0
    else:
        for u in range(H):
            hrow[u] = tanh(gx[u] + gh[u])


@njit
def step_packed(tokens, cell, table, w_ihT, w_hhT, b_ih, b_hh, dec_wT, dec_b, h, c, gx, gh,
                logits):
    """One step on pre-transposed weights: tokens (B,) int64, table (V, G*H), w_ihT, w_hhT
    (L, H, G*H), b_ih, b_hh (L, G*H), dec_wT (H, V), dec_b (V,); h, c (L, B, H) updated in
    place; gx, gh (B, G*H) workspaces; logits (B, V) written."""
    L, B, H = h.shape
    for layer in range(L):
        if layer == 0:
            for b in range(B):
                gx[b] = table[tokens[b]]
        else:
            np.dot(h[layer - 1], w_ihT[layer], gx)
            for b in range(B):
                gx[b] += b_ih[layer]
        np.dot(h[layer], w_hhT[layer], gh)
        for b in range(B):
            gh[b] += b_hh[layer]
            _cell(cell, gx[b], gh[b], h[layer, b], c[layer, b], H)
    np.dot(h[L - 1], dec_wT, logits)
    for b in range(B):
        logits[b] += dec_b


def stack_step(tokens, cell, table, w_ih, w_hh, b_ih, b_hh, dec_w, dec_b, h, c):
    """Same contract (and checks) as the reference; transposes the weights per call (use
    ``fastrnn.nn.Sampler`` to transpose once and step many times)."""
    tokens = check_stack_step(tokens, cell, table, w_ih, w_hh, b_ih, b_hh, dec_w, dec_b, h, c)
    L, B, H = h.shape
    gx = np.empty((B, table.shape[1]), h.dtype)
    gh = np.empty_like(gx)
    logits = np.empty((B, dec_w.shape[0]), h.dtype)
    step_packed(tokens, int(cell), table,
                np.ascontiguousarray(w_ih.transpose(0, 2, 1)),
                np.ascontiguousarray(w_hh.transpose(0, 2, 1)), b_ih, b_hh,
                np.ascontiguousarray(dec_w.T), dec_b, h, c, gx, gh, logits)
    return logits


@njit
def _pick(logits, temperature, top_k, argmax, u, probs):
    """Next token from logits (V,): argmax, or a draw with the uniform number u from
    softmax(logits / temperature) restricted to the top_k largest (top_k <= 0: all)."""
    V = logits.shape[0]
    best = 0
    for j in range(1, V):
        if logits[j] > logits[best]:
            best = j
    if argmax:
        return best
    cut = -np.inf
    if 0 < top_k < V:
        cut = np.sort(logits)[V - top_k]
    m = logits[best]
    total = 0.0
    for j in range(V):
        p = math.exp((logits[j] - m) / temperature) if logits[j] >= cut else 0.0
        probs[j] = p
        total += p
    target = u * total
    acc = 0.0
    for j in range(V):
        acc += probs[j]
        if acc > target and probs[j] > 0:
            return j
    return best


@njit
def generate_packed(token, n, temperature, top_k, argmax, uniforms, cell, table, w_ihT, w_hhT,
                    b_ih, b_hh, dec_wT, dec_b, h, c, gx, gh, logits, probs, out):
    """Feed ``token``, then draw ``n`` tokens (each fed back) into out (n,); B = 1."""
    tok = np.empty(1, np.int64)
    tok[0] = token
    for i in range(n):
        step_packed(tok, cell, table, w_ihT, w_hhT, b_ih, b_hh, dec_wT, dec_b, h, c, gx, gh,
                    logits)
        tok[0] = _pick(logits[0], temperature, top_k, argmax, uniforms[i], probs)
        out[i] = tok[0]
