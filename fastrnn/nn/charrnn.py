"""``CharRNN``: the character model ``fastrnn train`` trains (token ids -> ``Recurrent`` ->
``Linear`` decoder -> ``CrossEntropy``)."""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ..sampler import Sampler
from .layers import CrossEntropy, Linear
from .module import Module, State
from .recurrent import Recurrent


class CharRNN(Module):
    """Character model: one-hot token input -> stacked cell -> linear decoder over V.

    The first layer reads tokens through its (V, G*H) table (no input product; see
    ``Recurrent``), as char-rnn's one-hot input. ``loss_and_grad(ids, targets, state)`` runs
    forward, loss and backward and accumulates the gradients; ``step(tokens, state)`` advances
    all layers by one token (sampling).

    ``vocab_size`` (V) is the number of token ids; ``cell``, ``hidden_size``,
    ``num_layers``, ``dropout``, ``truncate``, ``init``, ``forget_bias``, ``dtype``, ``seed``
    and ``backend`` are ``Recurrent``'s (see there); the decoder ``Linear(H, V)`` uses the same
    ``init`` and ``dtype`` (seeded with ``seed + 7``), the loss the same ``backend``.
    ``backward``(dlogits, cache) takes the gradient of the logits of ``forward`` and
    accumulates every parameter gradient.
    """

    def __init__(self, vocab_size: int, hidden_size: int = 128, num_layers: int = 2,
                 cell: str = "lstm", dropout: float = 0.0, truncate: Optional[int] = None,
                 init: str = "pytorch", forget_bias: Optional[float] = 1.0,
                 dtype: DTypeLike = np.float32, seed: int = 0, backend: str = "kernels") -> None:
        self.vocab_size = vocab_size
        self.rnn = Recurrent(cell, vocab_size, hidden_size, num_layers, dropout=dropout,
                             truncate=truncate, token_input=True, init=init,
                             forget_bias=forget_bias, dtype=dtype, seed=seed, backend=backend)
        self.decoder = Linear(hidden_size, vocab_size, dtype=dtype, seed=seed + 7, init=init,
                              backend=backend)
        self.criterion = CrossEntropy(backend)

    @property
    def dtype(self) -> np.dtype:
        return self.rnn.dtype

    def initial_state(self, batch: int) -> State:
        return self.rnn.initial_state(batch)

    def forward(self, ids: np.ndarray, state: Optional[State] = None
                ) -> Tuple[np.ndarray, State, Any]:
        """ids (T, B) -> logits (T, B, V), final state, cache."""
        hs, state, rnn_cache = self.rnn.forward(ids, state)
        logits, dec_cache = self.decoder.forward(hs)
        return logits, state, (rnn_cache, dec_cache)

    def backward(self, dlogits: np.ndarray, cache: Any) -> None:
        rnn_cache, dec_cache = cache
        dhs = self.decoder.backward(dlogits, dec_cache)
        self.rnn.backward(dhs, rnn_cache)

    def loss_and_grad(self, ids: np.ndarray, targets: np.ndarray,
                      state: Optional[State] = None) -> Tuple[float, State]:
        """Forward + loss + backward (gradients accumulate) -> mean loss, final state."""
        logits, state, cache = self.forward(ids, state)
        loss, dlogits = self.criterion(logits, targets)
        self.backward(dlogits, cache)
        return loss, state

    def loss(self, ids: np.ndarray, targets: np.ndarray,
             state: Optional[State] = None) -> Tuple[float, State]:
        """Mean loss (nats/token) without gradients, and the final state."""
        training = self.rnn.training
        self.rnn.training = False
        try:
            logits, state, _ = self.forward(ids, state)
        finally:
            self.rnn.training = training
        return self.criterion(logits, targets)[0], state

    def step(self, tokens: ArrayLike, state: Optional[State] = None
             ) -> Tuple[np.ndarray, State]:
        """tokens (B,) -> logits (B, V) of the next token, new state (no dropout).
        Convenient but packs the weights on every call: to generate many tokens use
        ``sampler()``, which packs them once."""
        tokens = np.asarray(tokens).reshape(-1)
        sampler = self.sampler(len(tokens))
        if state is not None:
            sampler.set_state(state)
        logits = sampler.step(tokens)
        return logits, sampler.state()

    def sampler(self, batch: int = 1) -> Sampler:
        """A ``Sampler`` holding this model's current weights, packed for one-call steps."""
        return Sampler(self, batch)
