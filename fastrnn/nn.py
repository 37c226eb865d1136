"""Modules users program against: explicit forward/backward, no autograd.

Every module has ``forward(...)`` returning its outputs and a cache, ``backward(dout, cache)``
returning input gradients and **accumulating** parameter gradients into ``.grad``,
``parameters()`` / ``named_parameters()``, ``zero_grad()``, ``state_dict()`` /
``load_state_dict()``. The modules own no math: each array operation of a forward or backward
is a kernel call (``fastrnn.kernels``, or ``fastrnn.reference`` with ``backend='reference'``)
or a single NumPy call, and nothing loops over time steps in Python.

Names, shapes and gate orders are PyTorch's (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
``bias_hh_l0``; LSTM i, f, g, o; GRU r, z, n), so ``state_dict()`` moves to and from
``torch.nn.LSTM`` etc. without reordering (see ``from_torch`` / ``to_torch``).
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _checks as ck
from . import cells
from . import kernels as _kernels
from . import reference as _reference
from .kernels import linalg as _kernels_linalg
from ._checks import check_ids
from .reference import linalg as _reference_linalg
from .sampler import Sampler

# A recurrent state: h (num_layers, B, H), or (h, c) for the LSTM.
State = Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]
BACKENDS = {"kernels": _kernels, "reference": _reference}
LINALG = {"kernels": _kernels_linalg, "reference": _reference_linalg}


def _backend(name):
    if name not in BACKENDS:
        raise ValueError(f"backend must be 'kernels' or 'reference', got {name!r}")
    return BACKENDS[name]


class Parameter:
    """A parameter array ``data`` and its gradient ``grad`` (same shape and dtype)."""

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.grad = np.zeros_like(data)

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Parameter bookkeeping shared by every module."""

    def named_parameters(self, prefix: str = "") -> Iterator[Tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value.named_parameters(prefix + name + ".")

    def parameters(self) -> List[Parameter]:
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad[...] = 0

    def state_dict(self) -> Dict[str, np.ndarray]:
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: Dict[str, ArrayLike]) -> None:
        own = dict(self.named_parameters())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f"state dict does not match the model: missing {missing}, "
                             f"unexpected {unexpected}")
        for name, p in own.items():
            value = np.asarray(state[name])
            if value.shape != p.data.shape:
                raise ValueError(f"{name}: expected shape {p.data.shape}, got {value.shape}")
            if not np.issubdtype(value.dtype, np.floating):
                raise TypeError(f"{name}: expected a float array, got {value.dtype}")
            p.data[...] = value


# ---------------------------------------------------------------- initialisation

def init_uniform(rng, shape, bound, dtype):
    return rng.uniform(-bound, bound, shape).astype(dtype)


def init_orthogonal(rng, rows, cols, dtype):
    """A (rows, cols) matrix with orthonormal rows or columns (QR of a Gaussian)."""
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    return (q if rows >= cols else q.T).astype(dtype)


INITS = ("pytorch", "uniform", "xavier", "orthogonal")


# ---------------------------------------------------------------- layers

class Embedding(Module):
    """Token ids (T, B) -> vectors (T, B, D): rows of ``weight`` (num_embeddings, D), drawn
    from N(0, 1) with ``seed``; ``dtype`` float32 or float64; ``backend`` ``"kernels"`` or
    ``"reference"`` for the backward's scatter-add."""

    def __init__(self, num_embeddings: int, embedding_dim: int,
                 dtype: DTypeLike = np.float32, seed: int = 0, backend: str = "kernels"
                 ) -> None:
        _backend(backend)
        self.linalg = LINALG[backend]
        rng = np.random.default_rng(seed)
        self.weight = Parameter(rng.standard_normal((num_embeddings, embedding_dim))
                                .astype(ck.check_float_dtype(dtype)))

    def forward(self, ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        ids = check_ids(ids, self.weight.data.shape[0])
        return self.weight.data[ids], ids                       # (T, B, D), cache

    def backward(self, dout: np.ndarray, ids: np.ndarray) -> None:
        D = self.weight.data.shape[1]
        ck.check_grad("dout", dout, ids.shape + (D,), self.weight.data.dtype)
        self.linalg.scatter_add(ids, dout, self.weight.grad)  # rows checked: no stray index
        return None


class Linear(Module):
    """y = x @ weight.T + bias over all leading dimensions: ONE product for all (T*B) rows.

    ``init``: ``"pytorch"`` draws weight and bias from U(-1/sqrt(in_features), +...), any
    other value (``"uniform"``, char-rnn's) from U(-0.08, 0.08); ``seed`` seeds the draw;
    ``backend``: ``"kernels"`` or ``"reference"`` (NumPy) for the products.
    ``forward(x)`` returns ``y, cache``; ``backward(dy, cache)`` returns ``dx`` and accumulates
    the gradients of weight and bias."""

    def __init__(self, in_features: int, out_features: int, dtype: DTypeLike = np.float32,
                 seed: int = 0, init: str = "pytorch", backend: str = "kernels") -> None:
        _backend(backend)
        self.linalg = LINALG[backend]
        rng = np.random.default_rng(seed)
        dt = ck.check_float_dtype(dtype)
        bound = 1 / np.sqrt(in_features) if init == "pytorch" else 0.08
        self.weight = Parameter(init_uniform(rng, (out_features, in_features), bound, dt))
        self.bias = Parameter(init_uniform(rng, (out_features,), bound, dt))

    def forward(self, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        n_out, n_in = self.weight.data.shape
        if not isinstance(x, np.ndarray):
            raise TypeError(f"Linear expects a numpy array, got {type(x).__name__}")
        if x.ndim < 1 or x.shape[-1] != n_in or x.dtype != self.weight.data.dtype:
            raise ValueError(f"Linear expects input (..., {n_in}) of dtype "
                             f"{self.weight.data.dtype}, got {x.shape} {x.dtype}")
        x2 = np.ascontiguousarray(x).reshape(-1, n_in)
        out = self.linalg.linear_forward(x2, self.weight.data, self.bias.data)
        return out.reshape(x.shape[:-1] + (n_out,)), x2

    def backward(self, dout: np.ndarray, x2: np.ndarray) -> np.ndarray:
        n_out, n_in = self.weight.data.shape
        if not isinstance(dout, np.ndarray) or dout.size != x2.shape[0] * n_out:
            raise ValueError(f"dout must have shape (..., {n_out}) with the forward input's "
                             f"{x2.shape[0]} rows, got {getattr(dout, 'shape', dout)!r}")
        ck.check_grad("dout", dout, dout.shape[:-1] + (n_out,), self.weight.data.dtype)
        d2 = np.ascontiguousarray(dout).reshape(-1, n_out)
        dx, dW, db = self.linalg.linear_backward(d2, x2, self.weight.data)
        self.weight.grad += dW
        self.bias.grad += db
        return dx.reshape(dout.shape[:-1] + (n_in,))


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


# ---------------------------------------------------------------- losses and models

class CrossEntropy:
    """Fused softmax cross-entropy over (T, B, V) logits: ``loss, dlogits = ce(logits, y)``."""

    def __init__(self, backend: str = "kernels") -> None:
        self.ops = _backend(backend)

    def __call__(self, logits: np.ndarray, targets: np.ndarray,
                 mask: Optional[np.ndarray] = None) -> Tuple[float, np.ndarray]:
        return self.ops.softmax_cross_entropy(logits, targets, mask)


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


# ---------------------------------------------------------------- PyTorch interchange

def from_torch(module: Any, dtype: DTypeLike = None, backend: str = "kernels") -> Module:
    """A fastrnn module with the exact weights of a torch module (see
    ``fastrnn.torch_interop.from_torch``: nn.RNN/LSTM/GRU/Linear/Embedding, TorchCharRNN)."""
    from . import torch_interop
    return torch_interop.from_torch(module, dtype=dtype, backend=backend)


def to_torch(module: Module) -> Any:
    """The equivalent torch module with the same weights (see
    ``fastrnn.torch_interop.to_torch``: Recurrent, Linear, Embedding, CharRNN)."""
    from . import torch_interop
    return torch_interop.to_torch(module)
