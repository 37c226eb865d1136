"""``Recurrent``: a stack of RNN/LSTM/GRU layers (PyTorch's nn.RNN/LSTM/GRU in NumPy), each
layer's time loop one call of its cell's function (``fastrnn.cells``)."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple

import numpy as np
from numpy.typing import DTypeLike

from .. import _checks as ck
from .. import cells
from .._checks import check_ids
from .module import (INITS, LINALG, Module, Parameter, State, _backend, init_orthogonal,
                     init_uniform)


class _LayerCache(NamedTuple):
    kernel_cache: object       # the cache of the kernel forward
    mask: object               # dropout mask applied to this layer's output, or None
    ids: object                # token ids when the layer read a token table, else None


class Recurrent(Module):
    """A stack of ``num_layers`` RNN/LSTM/GRU layers, PyTorch's nn.RNN/LSTM/GRU in numpy.

    ``forward(x, state=None)`` with ``x`` (T, B, input_size) (or (B, T, .) with
    ``batch_first``) returns ``output (T, B, H), state, cache`` where state is ``h_n``
    (num_layers, B, H) or ``(h_n, c_n)`` for the LSTM. ``backward(dout, cache, dstate=None)``
    returns ``dx`` and the gradient of the initial state, and accumulates parameter gradients.

    ``token_input=True`` makes the first layer read token ids (T, B) instead of vectors: its
    input is one-hot (``weight_ih_l0`` is (G*H, V)), so ``x @ W_ih^T + b_ih`` is a row of the
    (V, G*H) table ``W_ih^T + b_ih`` that the forward gathers, and the backward scatter-adds
    the gate gradients into it: no input product, no ``dx``, no big ``dW_ih`` product.

    Parameters:

    - ``cell``: ``"lstm"``, ``"gru"`` or ``"rnn"``; ``nonlinearity``: ``"tanh"`` or ``"relu"``
      for ``"rnn"``.
    - ``input_size`` (D), ``hidden_size`` (H), ``num_layers``: as in PyTorch.
    - ``dropout``: inverted dropout on the outputs of every layer but the last, while
      ``training`` is True (PyTorch's semantics), in [0, 1).
    - ``batch_first``: ``x`` and ``output`` are (B, T, .) instead of (T, B, .).
    - ``truncate``: truncated BPTT in ``backward``: the gradient of step t flows back through
      at most ``truncate`` recurrent steps; None (default) is full BPTT.
    - ``learn_initial_state``: learnable ``h0`` (and ``c0``) parameters (num_layers, H) used
      when ``forward`` gets no state.
    - ``token_input``: the first layer reads token ids (see above).
    - ``init``: ``"pytorch"`` (default: U(-1/sqrt(H), 1/sqrt(H)) for all weights and biases),
      ``"uniform"`` (char-rnn: U(-0.08, 0.08), zero biases), ``"xavier"`` (input weights
      U(+-sqrt(6 / (D + H))), recurrent weights U(+-sqrt(3 / H)), zero biases) or
      ``"orthogonal"`` (the same input weights, an orthogonal matrix per recurrent gate block,
      zero biases).
    - ``forget_bias``: for the LSTM, ``bias_ih``'s forget-gate block is set to this value and
      ``bias_hh``'s to 0 (torch-rnn's trick, 1.0 by default: the cell remembers from the start);
      None keeps the ``init`` draw.
    - ``dtype``: float32 or float64, for parameters and computation (inputs must match).
    - ``seed``: seeds the initial weights (and, as ``seed + 1``, the dropout masks).
    - ``backend``: ``"kernels"`` (default: the compiled Numba kernels) or ``"reference"`` (the
      pure-NumPy reference implementation, same results, slower).

    ``backward``(dout, cache, dstate=None): ``dout`` the gradient of ``output`` (shaped like
    it), ``cache`` from the ``forward`` call, ``dstate`` an optional gradient of the final
    state (like the state) -> ``dx`` (None for token input) and the gradient of the initial
    state; parameter gradients are added to ``.grad`` (call ``zero_grad()`` between steps).
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", dropout: float = 0.0, batch_first: bool = False,
                 truncate: Optional[int] = None, learn_initial_state: bool = False,
                 token_input: bool = False, init: str = "pytorch",
                 forget_bias: Optional[float] = 1.0, dtype: DTypeLike = np.float32,
                 seed: int = 0, backend: str = "kernels") -> None:
        spec = cells.get(cell)
        ck.check_recurrent(spec, input_size, hidden_size, num_layers, nonlinearity, dropout,
                           truncate, init, INITS)
        self.cell, self.hidden_size, self.num_layers = cell, hidden_size, num_layers
        self.input_size, self.nonlinearity, self.dropout = input_size, nonlinearity, dropout
        self.batch_first, self.truncate, self.token_input = batch_first, truncate, token_input
        self.dtype = ck.check_float_dtype(dtype)
        _backend(backend)
        self.spec, self.fns = spec, spec.functions(backend)
        self.linalg = LINALG[backend]
        self.rng = np.random.default_rng(seed + 1)             # dropout masks
        self.dropout_streams = None     # (B_total, lo): this batch is streams lo.. of B_total
        self.training = True
        rng = np.random.default_rng(seed)
        G, H = spec.gates, hidden_size
        for layer in range(num_layers):
            D = input_size if layer == 0 else H
            if init == "pytorch":
                w_ih = init_uniform(rng, (G * H, D), 1 / np.sqrt(H), self.dtype)
                w_hh = init_uniform(rng, (G * H, H), 1 / np.sqrt(H), self.dtype)
            elif init == "uniform":                             # char-rnn
                w_ih = init_uniform(rng, (G * H, D), 0.08, self.dtype)
                w_hh = init_uniform(rng, (G * H, H), 0.08, self.dtype)
            else:
                bound = np.sqrt(6 / (D + H))                    # Glorot, per gate block
                w_ih = init_uniform(rng, (G * H, D), bound, self.dtype)
                w_hh = (np.concatenate([init_orthogonal(rng, H, H, self.dtype)
                                        for _ in range(G)]) if init == "orthogonal"
                        else init_uniform(rng, (G * H, H), np.sqrt(3 / H), self.dtype))
            b = 1 / np.sqrt(H) if init == "pytorch" else 0.0
            b_ih = init_uniform(rng, (G * H,), b, self.dtype) if b else np.zeros(G * H,
                                                                                   self.dtype)
            b_hh = init_uniform(rng, (G * H,), b, self.dtype) if b else np.zeros(G * H,
                                                                                   self.dtype)
            if "f" in spec.gate_names and forget_bias is not None:
                f = spec.gate_names.index("f")                  # torch-rnn's forget-gate bias
                b_ih[f * H:(f + 1) * H] = forget_bias
                b_hh[f * H:(f + 1) * H] = 0
            setattr(self, f"weight_ih_l{layer}", Parameter(w_ih))
            setattr(self, f"weight_hh_l{layer}", Parameter(w_hh))
            setattr(self, f"bias_ih_l{layer}", Parameter(b_ih))
            setattr(self, f"bias_hh_l{layer}", Parameter(b_hh))
        if learn_initial_state:
            self.h0 = Parameter(np.zeros((num_layers, H), self.dtype))
            if spec.n_states == 2:
                self.c0 = Parameter(np.zeros((num_layers, H), self.dtype))

    # -------------------------------------------------------------- helpers
    def layer_params(self, layer: int) -> Tuple[Parameter, Parameter, Parameter, Parameter]:
        return tuple(getattr(self, f"{k}_l{layer}") for k in
                     ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def _kw(self):
        return {"nonlinearity": self.nonlinearity} if "nonlinearity" in self.spec.options else {}

    def initial_state(self, batch: int) -> State:
        """Zeros, or the learnable initial state broadcast over the batch."""
        L, H = self.num_layers, self.hidden_size
        n = self.spec.n_states
        learned = [getattr(self, "h0", None), getattr(self, "c0", None)][:n]
        states = tuple(np.broadcast_to(p.data[:, None, :], (L, batch, H)).copy()
                       if p is not None else np.zeros((L, batch, H), self.dtype)
                       for p in learned)
        return states if self.spec.n_states == 2 else states[0]

    def _split_state(self, state, batch):
        if state is None:
            state = self.initial_state(batch)
        states = state if self.spec.n_states == 2 else (state,)
        if self.spec.n_states == 2 and (not isinstance(state, tuple) or len(state) != 2):
            raise TypeError("the LSTM state must be a tuple (h, c)")
        L, H = self.num_layers, self.hidden_size
        for name, s in zip(("h", "c"), states):
            ck.check_float_array(name, s, 3)
            ck.check_shape(name, s, (L, batch, H), "(num_layers, B, H)")
            if s.dtype != self.dtype:
                raise TypeError(f"{name} has dtype {s.dtype}, the model has {self.dtype}")
        return states

    def _table(self):
        """(V, G*H) table of the first layer for token inputs: W_ih^T + b_ih."""
        w_ih, _, b_ih, _ = self.layer_params(0)
        return w_ih.data.T + b_ih.data

    # -------------------------------------------------------------- forward / backward
    def forward(self, x: np.ndarray, state: Optional[State] = None
                ) -> Tuple[np.ndarray, State, Any]:
        """x (T, B, D) (token ids (T, B) with ``token_input``), state or None (zeros or the
        learned initial state) -> output (T, B, H), final state, cache for ``backward``."""
        if self.token_input:
            ids = check_ids(x, self.input_size)
            T, B = ids.shape
        else:
            ck.check_float_array("x", x, 3)
            if self.batch_first:
                x = x.transpose(1, 0, 2)
            T, B, D = x.shape
            if D != self.input_size or x.dtype != self.dtype:
                raise ValueError(f"x must have shape (T, B, {self.input_size}) and dtype "
                                 f"{self.dtype}, got {x.shape} {x.dtype}")
            ids = None
        states = self._split_state(state, B)
        caches, finals = [], [[] for _ in states]
        inp = x
        for layer in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = (p.data for p in self.layer_params(layer))
            s0 = tuple(s[layer] for s in states)
            if layer == 0 and ids is not None:
                xw = self._table()[ids]                                   # (T, B, G*H)
                out = self.fns.forward_proj(xw, *s0, w_hh, b_hh, **self._kw())
            else:
                out = self.fns.forward(inp, *s0, w_ih, w_hh, b_ih, b_hh, **self._kw())
            hs, cache = out[0], out[-1]
            finals[0].append(hs[-1])
            if self.spec.n_states == 2:
                finals[1].append(out[1])
            mask = None
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                mask = self._dropout_mask(*hs.shape)
                hs = hs * mask
            caches.append(_LayerCache(cache, mask, ids if layer == 0 else None))
            inp = hs
        output = inp.transpose(1, 0, 2) if self.batch_first else inp
        final = tuple(np.stack(f) for f in finals)
        return output, (final if self.spec.n_states == 2 else final[0]), (caches, B)

    def _dropout_mask(self, T, B, H):
        """(T, B, H) inverted-dropout mask. The uniforms are drawn stream-major, (B, T, H), so
        each stream's numbers are one contiguous run of the generator: with
        ``dropout_streams = (B_total, lo)`` (a data-parallel rank holding streams lo..lo+B of
        B_total) the other streams' runs are skipped with ``advance``, and the mask is the
        slice of the one a single process with all B_total streams draws."""
        keep = 1 - self.dropout
        total, lo = self.dropout_streams or (B, 0)
        bitgen = self.rng.bit_generator            # PCG64: one draw per float64 uniform
        if lo:
            bitgen.advance(lo * T * H)
        u = self.rng.random((B, T, H))
        if total - lo - B:
            bitgen.advance((total - lo - B) * T * H)
        mask = (u < keep).astype(self.dtype) / keep
        return np.ascontiguousarray(mask.transpose(1, 0, 2))          # (T, B, H)

    def backward(self, dout: np.ndarray, cache: Any, dstate: Optional[State] = None
                 ) -> Tuple[Optional[np.ndarray], State]:
        """-> dx (None for token input), dstate0 (like the state); accumulates .grad."""
        caches, B = cache
        ck.check_float_array("dout", dout, 3)
        if dout.dtype != self.dtype:
            raise TypeError(f"dout has dtype {dout.dtype}, the model has {self.dtype}")
        if self.batch_first:
            dout = dout.transpose(1, 0, 2)
        dout = np.ascontiguousarray(dout)
        n = self.spec.n_states
        if dstate is None:
            dfinal = [None] * n
        else:
            dfinal = list(dstate) if self.spec.n_states == 2 else [dstate]
        dstates0 = [np.zeros((self.num_layers, B, self.hidden_size), self.dtype)
                    for _ in range(n)]
        dh = dout
        dx = None
        for layer in range(self.num_layers - 1, -1, -1):
            c = caches[layer]
            if c.mask is not None:
                dh = dh * c.mask
            w_ih, w_hh, b_ih, b_hh = self.layer_params(layer)
            dfin = tuple(None if d is None else np.ascontiguousarray(d[layer]) for d in dfinal)
            if c.ids is not None:
                out = self.fns.backward_proj(dh, c.kernel_cache, *dfin, truncate=self.truncate)
                dxw, ds0, (dwhh, dbhh) = out[0], out[1:1 + n], out[1 + n:]
                dtable = np.zeros((self.input_size, dxw.shape[-1]), self.dtype)
                self.linalg.scatter_add(c.ids, dxw, dtable)               # (V, G*H)
                w_ih.grad += dtable.T
                b_ih.grad += dtable.sum(axis=0)
                dx = None
            else:
                out = self.fns.backward(dh, c.kernel_cache, *dfin, truncate=self.truncate)
                dx, ds0 = out[0], out[1:1 + n]
                dwih, dwhh, dbih, dbhh = out[1 + n:]
                w_ih.grad += dwih
                b_ih.grad += dbih
            w_hh.grad += dwhh
            b_hh.grad += dbhh
            for acc, d in zip(dstates0, ds0):
                acc[layer] = d
            dh = dx
        for name, acc in zip(("h0", "c0"), dstates0):
            p = getattr(self, name, None)
            if p is not None:
                p.grad += acc.sum(axis=1)
        if dx is not None and self.batch_first:
            dx = dx.transpose(1, 0, 2)
        return dx, (tuple(dstates0) if self.spec.n_states == 2 else dstates0[0])
