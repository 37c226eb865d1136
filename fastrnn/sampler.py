"""``Sampler``: steps a ``CharRNN`` one token at a time with its weights packed once, every
layer and the decoder in ONE compiled call per token (``fastrnn.kernels.stack``), or draws
many tokens in one call (``generate``). Made by ``CharRNN.sampler()``; also ``fastrnn.nn.Sampler``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np
from numpy.typing import ArrayLike

from . import _checks as ck
from . import cells
from .kernels import stack

if TYPE_CHECKING:
    from .nn import CharRNN, State


class Sampler:
    """Steps a ``CharRNN`` one token at a time: every layer and the decoder in ONE compiled
    call (``fastrnn.kernels.stack``), weights packed once, no allocation but the output.
    The weights are copied when the sampler is made: make a new one after training more."""

    def __init__(self, model: CharRNN, batch: int = 1) -> None:
        rnn, dt = model.rnn, model.dtype
        L, H, G = rnn.num_layers, rnn.hidden_size, rnn.spec.gates
        self.cell = stack.CELL_CODES[cells.label(rnn.spec, rnn._kw())]
        self._step, self._flag = stack.stepper(self.cell)
        self.vocab_size = model.vocab_size
        self.table = np.ascontiguousarray(rnn._table())                      # (V, G*H)
        w_ihT = np.zeros((L, H, G * H), dt)
        self.b_ih = np.zeros((L, G * H), dt)
        for layer in range(1, L):
            w_ihT[layer] = rnn.layer_params(layer)[0].data.T
            self.b_ih[layer] = rnn.layer_params(layer)[2].data
        self.w_ihT = w_ihT
        self.w_hhT = np.ascontiguousarray(np.stack([rnn.layer_params(layer)[1].data.T
                                                    for layer in range(L)]))
        self.b_hh = np.stack([rnn.layer_params(layer)[3].data for layer in range(L)])
        self.dec_wT = np.ascontiguousarray(model.decoder.weight.data.T)        # (H, V)
        self.dec_b = model.decoder.bias.data.copy()
        self.lstm = rnn.spec.n_states == 2
        self.h = np.zeros((L, batch, H), dt)
        self.c = np.zeros((L, batch, H), dt)
        init = rnn.initial_state(batch)
        self.set_state(init)
        self.gx = np.empty((batch, G * H), dt)
        self.gh = np.empty((batch, G * H), dt)
        self.work = stack.workspace(G * H, dt)
        self.logits = np.empty((batch, model.vocab_size), dt)

    def set_state(self, state: State) -> None:
        states = state if self.lstm else (state,)
        for dst, src in zip((self.h, self.c), states):
            if np.shape(src) != dst.shape:
                raise ValueError(f"state must have shape {dst.shape}, got {np.shape(src)}")
            dst[...] = src

    def state(self) -> State:
        return (self.h.copy(), self.c.copy()) if self.lstm else self.h.copy()

    def generate(self, token: int, n: int, temperature: float = 1.0, top_k: int = 0,
                 argmax: bool = False, rng: Optional[np.random.Generator] = None
                 ) -> np.ndarray:
        """Feed ``token``, then draw ``n`` tokens, each fed back, in ONE compiled call
        (B must be 1). -> int64 array (n,). ``rng``: a numpy Generator (default: fresh)."""
        ck.check_generate(token, n, temperature, self.vocab_size, self.h.shape[1])
        rng = np.random.default_rng() if rng is None else rng
        out = np.empty(n, np.int64)
        probs = np.empty(self.vocab_size, np.float64)
        stack.generate_packed(int(token), n, float(temperature), int(top_k or 0), bool(argmax),
                              rng.random(n), self.cell, self.table, self.w_ihT, self.w_hhT,
                              self.b_ih, self.b_hh, self.dec_wT, self.dec_b, self.h, self.c,
                              self.gx, self.gh, self.logits, probs, out)
        return out

    def step(self, tokens: ArrayLike) -> np.ndarray:
        """tokens (B,) ints -> logits (B, V) of the next token (a new array)."""
        tokens = ck.check_step_tokens(tokens, self.h.shape[1], self.vocab_size)
        self._step(tokens, self.table, self.w_ihT, self.w_hhT, self.b_ih, self.b_hh,
                   self.dec_wT, self.dec_b, self.h, self.c, self.gx, self.gh, self.logits,
                   self.work, self._flag)
        return self.logits.copy()
