"""One step of a whole stack plus decoder in ONE compiled call: the compiled twin of
``fastrnn.reference.stack`` (read it for the arguments). Used for sampling, where a call per
layer per token would cost more than the arithmetic. Single-threaded (B is tiny when
sampling); weights come pre-transposed (``w_ihT``, ``w_hhT`` (L, H, G*H), ``dec_wT`` (H, V))
so every product is a plain row-times-matrix.

Public: ``stack_step`` (checked, transposes per call), and for callers that pack the weights
once and own the workspaces (``fastrnn.nn.Sampler``, ``fastrnn.compat.minchar``)
``step_packed``, ``generate_packed`` and ``stepper`` (with ``workspace``), which check
nothing: the caller checks tokens, shapes and dtypes first (a token outside the table reads
out of bounds). ``cell`` is a variant's code in ``CELL_CODES``.

A cell's gate math is its kernel module's ``KERNELS.step_row`` (the fused pass of its time
loops), for every cell in ``fastrnn.cells.CELLS``: the compiled loops here are templates,
copied per cell with that cell's functions bound as globals, as ``_bptt``'s time loops are
and for the same reason (a closure or a function argument would be compiled again in every
process instead of loaded from numba's cache).
"""

import math
from typing import Callable, NamedTuple

import numpy as np

from .._checks import check_stack_step
from .._jit import njit
from ..cells import SAMPLER_CODES as CELL_CODES  # noqa: F401  (variants() in order)
from ..cells import variants
from ._bptt import _specialise

# Bound per cell by ``_specialise``: the cell's ``step_row`` in ``_step_into``, the cell's
# copy of ``_step_into`` as ``step`` in ``_step`` and ``_generate``.
step_row = step = None

WORK_ROWS = 3          # a cell's step_row gets work (3, G*H): row 0 zeros, rows 1-2 scratch


def workspace(width, dtype):
    """The ``work`` array of ``stepper``'s step: (3, G*H), row 0 zeros (see ``step_row`` in
    ``fastrnn.cells.CellKernels``)."""
    return np.zeros((WORK_ROWS, width), dtype)


def _step_into(tokens, table, w_ihT, w_hhT, b_ih, b_hh, dec_wT, dec_b, h, c, gx, gh, logits,
               work, flag):
    """One step on pre-transposed weights: tokens (B,) int64, table (V, G*H), w_ihT, w_hhT
    (L, H, G*H), b_ih, b_hh (L, G*H), dec_wT (H, V), dec_b (V,); h, c (L, B, H) updated in
    place; gx, gh (B, G*H) workspaces; logits (B, V) written; work: ``workspace(G*H)``."""
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
            step_row(gx[b], gh[b], work, h[layer, b], c[layer, b], flag)
    np.dot(h[L - 1], dec_wT, logits)
    for b in range(B):
        logits[b] += dec_b


def _step(tokens, table, w_ihT, w_hhT, b_ih, b_hh, dec_wT, dec_b, h, c, gx, gh, logits, flag):
    step(tokens, table, w_ihT, w_hhT, b_ih, b_hh, dec_wT, dec_b, h, c, gx, gh, logits,
         np.zeros((WORK_ROWS, gx.shape[1]), gx.dtype), flag)


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


def _generate(token, n, temperature, top_k, argmax, uniforms, table, w_ihT, w_hhT, b_ih, b_hh,
              dec_wT, dec_b, h, c, gx, gh, logits, probs, out, flag):
    work = np.zeros((WORK_ROWS, gx.shape[1]), gx.dtype)
    tok = np.empty(1, np.int64)
    tok[0] = token
    for i in range(n):
        step(tok, table, w_ihT, w_hhT, b_ih, b_hh, dec_wT, dec_b, h, c, gx, gh, logits, work,
             flag)
        tok[0] = _pick(logits[0], temperature, top_k, argmax, uniforms[i], probs)
        out[i] = tok[0]


class _Copies(NamedTuple):
    step_into: Callable       # _step_into (takes ``work``)
    step: Callable            # _step (allocates ``work``)
    generate: Callable        # _generate
    flag: object              # the variant's flag (``CellKernels.flag``)


def _copies():
    """code -> ``_Copies`` of the variant's cell with the variant's flag (``CELL_CODES``
    numbers ``variants()`` in order)."""
    copies, by_code = {}, []
    for _, cell, options in variants():
        kernels = cell.module_in("kernels").KERNELS
        if cell.name not in copies:
            into = njit(_specialise(_step_into, cell.name, step_row=kernels.step_row))
            copies[cell.name] = (into, njit(_specialise(_step, cell.name, step=into)),
                                 njit(_specialise(_generate, cell.name, step=into)))
        by_code.append(_Copies(*copies[cell.name], kernels.flag(**options)))
    return by_code


_BY_CODE = _copies()


def step_packed(tokens, cell, table, w_ihT, w_hhT, b_ih, b_hh, dec_wT, dec_b, h, c, gx, gh,
                logits):
    """One step (``_step_into``) on pre-transposed weights: h, c updated in place, logits
    (B, V) written."""
    fns = _BY_CODE[cell]
    fns.step(tokens, table, w_ihT, w_hhT, b_ih, b_hh, dec_wT, dec_b, h, c, gx, gh, logits,
             fns.flag)


def stepper(cell):
    """-> ``(step, flag)``: the compiled step for many calls, ``step(tokens, table, w_ihT,
    w_hhT, b_ih, b_hh, dec_wT, dec_b, h, c, gx, gh, logits, work, flag)`` with ``work =
    workspace(G*H, dtype)`` kept by the caller (``step_packed`` allocates it per call)."""
    fns = _BY_CODE[cell]
    return fns.step_into, fns.flag


def generate_packed(token, n, temperature, top_k, argmax, uniforms, cell, table, w_ihT, w_hhT,
                    b_ih, b_hh, dec_wT, dec_b, h, c, gx, gh, logits, probs, out):
    """Feed ``token``, then draw ``n`` tokens (each fed back, with ``uniforms`` (n,) in
    [0, 1)) into out (n,); B = 1; probs (V,) float64 scratch."""
    fns = _BY_CODE[cell]
    fns.generate(token, n, temperature, top_k, argmax, uniforms, table, w_ihT, w_hhT, b_ih,
                 b_hh, dec_wT, dec_b, h, c, gx, gh, logits, probs, out, fns.flag)


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
