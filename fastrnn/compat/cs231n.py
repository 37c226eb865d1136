"""cs231n's ``rnn_layers.py`` (assignment 3, captioning with RNNs and LSTMs) on fastrnn
kernels. Replace ``from cs231n.rnn_layers import *`` with
``from fastrnn.compat.cs231n import *``: every function keeps its name, argument order, shapes
and return values.

cs231n's conventions, kept here: batch-major ``x (N, T, D)`` and hidden states ``(N, T, H)``;
right-multiplied weights ``Wx (D, G*H)``, ``Wh (H, G*H)`` and one bias ``b (G*H,)``; the LSTM
gate blocks in the order i, f, o, g and its initial cell state zero.

    RNN:   next_h = tanh(x @ Wx + prev_h @ Wh + b)
    LSTM:  a = x @ Wx + prev_h @ Wh + b                         (N, 4H) = [a_i|a_f|a_o|a_g]
           i, f, o, g = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o), tanh(a_g)
           next_c = f * prev_c + i * g;  next_h = o * tanh(next_c)
    GRU (``gru_*``, not in cs231n; PyTorch's cell with the single bias on the input side):
           a = x @ Wx + b, ah = prev_h @ Wh                     (N, 3H) = [r|z|n]
           r = sigmoid(a_r + ah_r); z = sigmoid(a_z + ah_z); n = tanh(a_n + r * ah_n)
           next_h = (1 - z) * n + z * prev_h

Inside, a call works in fastrnn's time-major PyTorch layout (``x`` as (T, N, D); ``Wx``,
``Wh`` as ``weight_ih``, ``weight_hh`` (G*H, .); the LSTM's gate blocks i, f, g, o; ``b`` as
``bias_ih`` with ``bias_hh = 0``) and runs the whole time loop in ``fastrnn.kernels``. The
sequence functions (``rnn_forward`` .. ``gru_backward``) keep the converted and packed weights
between calls while the arrays hold the same bits (checked at every call, so an in-place
update is always seen), run a small problem as one serial compiled loop with register-blocked
products (no parallel region, no BLAS call per step) and write the weight gradients straight
into cs231n's layout. That machinery (layout conversion, the kept weights, the runs of the
time loops) is in ``fastrnn/compat/_cs231n_kernels.py``; this module checks and calls it.

Differences from the original, all on purpose:
- caches are opaque objects, and a ``*_backward`` accepts only the cache of its own
  ``*_forward`` (otherwise a ``TypeError`` names the forward it needs);
- shapes are checked against each other: a time-major ``(T, N, D)`` input where ``(N, T, D)``
  is expected (detected from ``h0 (N, H)`` when T != N), PyTorch-layout weights ``(G*H, D)``
  where ``(D, G*H)`` is expected and out-of-range token ids raise a ``ValueError`` naming the
  expected layout or range;
- NaN or Inf in weights or states raise (fastrnn's kernels refuse them) instead of spreading;
- a ``*_backward`` uses the weights its forward used (the original's cache holds references
  to ``Wx`` and ``Wh``, so it would see a change made in between);
- ``temporal_softmax_loss`` uses log-sum-exp, so it stays finite where ``log(probs)`` would
  underflow to ``-inf``.
Arrays of mixed dtypes are promoted as NumPy would (integer arrays become float64).
"""

import functools
from typing import Any, Tuple

import numpy as np

from .. import kernels as K
from .._checks import check_finite
from .._jit import blas_single_threaded
from ..kernels.linalg import scatter_add
from . import _cs231n_kernels as _kernels
from ._cs231n_kernels import (LSTM_BLOCKS as _LSTM_BLOCKS, cols as _cols, ih as _ih,
                              lstm_perm as _lstm_perm, rows as _rows)
from . import _token_ids

__all__ = [
    "rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward",
    "word_embedding_forward", "word_embedding_backward", "sigmoid",
    "lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward",
    "temporal_affine_forward", "temporal_affine_backward", "temporal_softmax_loss",
    "gru_step_forward", "gru_step_backward", "gru_forward", "gru_backward",
]

_GH = {1: "H", 3: "3H", 4: "4H"}


def _one_blas_switch(func):
    """Runs ``func`` inside one ``blas_single_threaded`` block: the kernel calls it makes then
    switch the kernels' BLAS to one thread (and back) once per call, not once each."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with blas_single_threaded():
            return func(*args, **kwargs)
    return wrapper


# ---------------------------------------------------------------- caches

class _Cache:
    """Opaque: the state a ``*_forward`` leaves for its ``*_backward``, and nothing else."""

    __slots__ = ("_of", "_data")

    def __init__(self, of, *data):
        self._of = of
        self._data = data

    def __repr__(self):
        return f"<fastrnn.compat.cs231n cache of {self._of}>"


def _open(cache, forward, func):
    if not isinstance(cache, _Cache) or cache._of != forward:
        got = (f"the cache of {cache._of}" if isinstance(cache, _Cache)
               else f"a {type(cache).__name__}")
        raise TypeError(f"{func} needs the cache returned by {forward}, got {got}")
    return cache._data


# ---------------------------------------------------------------- validation

def _float_dtype(*arrays):
    dtype = np.result_type(*arrays)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _array(func, name, a, dtype, ndim, layout):
    a = np.asarray(a)
    if a.ndim != ndim:
        raise ValueError(f"{func}: {name} must have shape {layout}, got shape {a.shape}")
    return a.astype(dtype, copy=False)


def _params(func, gates, Wx, Wh, b, dtype):
    """cs231n weights of a cell with ``gates`` blocks -> Wx, Wh, b (as dtype), D, H."""
    gh = _GH[gates]
    Wx = _array(func, "Wx", Wx, dtype, 2, f"(D, {gh})")
    Wh = _array(func, "Wh", Wh, dtype, 2, f"(H, {gh})")
    b = _array(func, "b", b, dtype, 1, f"({gh},)")
    H = Wh.shape[0]
    if H == 0 or Wh.shape[1] != gates * H:
        hint = (": that is the transposed (PyTorch weight_hh) layout, pass Wh.T"
                if gates > 1 and Wh.shape[1] > 0 and Wh.shape[0] == gates * Wh.shape[1] else "")
        raise ValueError(f"{func}: Wh must have shape (H, {gh}) (right-multiplied, "
                         f"prev_h @ Wh), got {Wh.shape}{hint}")
    if Wx.shape[1] != gates * H or Wx.shape[0] == 0:
        hint = (": that is the transposed (PyTorch weight_ih) layout, pass Wx.T"
                if Wx.shape[0] == gates * H else "")
        raise ValueError(f"{func}: Wx must have shape (D, {gh}) = (D, {gates * H}) with "
                         f"H = {H} from Wh (right-multiplied, x @ Wx), got {Wx.shape}{hint}")
    if b.shape != (gates * H,):
        raise ValueError(f"{func}: b must have shape ({gh},) = ({gates * H},), got {b.shape}")
    return Wx, Wh, b, Wx.shape[0], H


def _step_inputs(func, x, states, D, H, dtype):
    """x (N, D) and the named states (N, H) of a ``*_step_forward``, as dtype."""
    x = _array(func, "x", x, dtype, 2, "(N, D)")
    if x.shape[1] != D or x.shape[0] == 0:
        raise ValueError(f"{func}: x must have shape (N, D) with N >= 1 and D = {D} from Wx, "
                         f"got {x.shape}")
    out = [x]
    for name, s in states.items():
        s = _array(func, name, s, dtype, 2, "(N, H)")
        if s.shape != (x.shape[0], H):
            raise ValueError(f"{func}: {name} must have shape (N, H) = {(x.shape[0], H)} "
                             f"(N from x, H from Wh), got {s.shape}")
        out.append(s)
    return out


def _sequence_inputs(func, x, h0, D, H, dtype):
    """x (N, T, D) and h0 (N, H) of a ``*_forward``, as dtype; names the batch-major layout
    when x arrives time-major."""
    x = _array(func, "x", x, dtype, 3, "(N, T, D)")
    h0 = _array(func, "h0", h0, dtype, 2, "(N, H)")
    N = h0.shape[0]
    if h0.shape[1] != H or N == 0:
        raise ValueError(f"{func}: h0 must have shape (N, H) with N >= 1 and H = {H} from Wh, "
                         f"got {h0.shape}")
    if x.shape[2] != D:
        raise ValueError(f"{func}: x must have shape (N, T, D) with D = {D} from Wx, "
                         f"got {x.shape}")
    if x.shape[0] != N:
        if x.shape[1] == N:
            raise ValueError(
                f"{func}: x must be batch-major (N, T, D) = ({N}, T, {D}) with N = {N} from "
                f"h0 (N, H), got {x.shape}, which is time-major (T, N, D): pass "
                "x.transpose(1, 0, 2)")
        raise ValueError(f"{func}: x must have shape (N, T, D) with N = {N} from h0 (N, H), "
                         f"got {x.shape}")
    if x.shape[1] == 0:
        raise ValueError(f"{func}: x must have T >= 1, got shape {x.shape}")
    return x, h0


def _upstream(func, name, d, shape, dtype, layout):
    """An upstream gradient of a known shape, as dtype; names the layout if it arrives with
    its first two axes swapped."""
    d = _array(func, name, d, dtype, len(shape), layout)
    if d.shape != shape:
        swapped = (d.ndim == 3 and shape[0] != shape[1]
                   and d.shape == (shape[1], shape[0], shape[2]))
        hint = (", which is time-major (T, N, .): pass it transposed with .transpose(1, 0, 2)"
                if swapped else "")
        raise ValueError(f"{func}: {name} must have shape {layout} = {shape}, "
                         f"got {d.shape}{hint}")
    return d


# ---------------------------------------------------------------- the sequence functions

def _seq_forward(f, cell, x, h0, Wx, Wh, b):
    """cs231n's ``{cell}_forward`` -> h (N, T, H), cache (the run: ``_cs231n_kernels``)."""
    dtype = _float_dtype(x, h0, Wx, Wh, b)
    Wx, Wh, b, D, H = _params(f, _kernels.SEQUENCES[cell][1], Wx, Wh, b, dtype)
    x, h0 = _sequence_inputs(f, x, h0, D, H, dtype)
    for name, a in (("x", x), ("h0", h0), ("b", b)):
        check_finite(f"{f}: {name}", a)
    h, state = _kernels.forward(f, cell, x, h0, Wx, Wh, b)
    return h, _Cache(f, *state, h.shape, dtype)


def _seq_backward(f, cell, dh, cache):
    """cs231n's ``{cell}_backward`` -> dx (N, T, D), dh0 (N, H), dWx, dWh, db."""
    *state, shape, dtype = _open(cache, f"{cell}_forward", f)
    dh = _upstream(f, "dh", dh, shape, dtype, "(N, T, H)")
    return _kernels.backward(cell, dh, *state)


# ---------------------------------------------------------------- vanilla RNN

@_one_blas_switch
def rnn_step_forward(x: np.ndarray, prev_h: np.ndarray, Wx: np.ndarray, Wh: np.ndarray,
                     b: np.ndarray) -> Tuple[np.ndarray, Any]:
    """x (N, D), prev_h (N, H), Wx (D, H), Wh (H, H), b (H,) -> next_h (N, H), cache."""
    f = "rnn_step_forward"
    dtype = _float_dtype(x, prev_h, Wx, Wh, b)
    Wx, Wh, b, D, H = _params(f, 1, Wx, Wh, b, dtype)
    x, prev_h = _step_inputs(f, x, {"prev_h": prev_h}, D, H, dtype)
    next_h, k = K.rnn_step_forward(x, prev_h, _ih(Wx), _rows(Wh), b, np.zeros(H, dtype))
    return next_h, _Cache(f, k, next_h.shape, dtype)


@_one_blas_switch
def rnn_step_backward(dnext_h: np.ndarray, cache: Any) -> Tuple[np.ndarray, ...]:
    """-> dx (N, D), dprev_h (N, H), dWx (D, H), dWh (H, H), db (H,)."""
    f = "rnn_step_backward"
    k, shape, dtype = _open(cache, "rnn_step_forward", f)
    dnext_h = _upstream(f, "dnext_h", dnext_h, shape, dtype, "(N, H)")
    dx, dprev_h, dwih, dwhh, dbih, _ = K.rnn_step_backward(dnext_h, k)
    return dx, dprev_h, _cols(dwih), _cols(dwhh), dbih


@_one_blas_switch
def rnn_forward(x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
               ) -> Tuple[np.ndarray, Any]:
    """x (N, T, D), h0 (N, H), Wx (D, H), Wh (H, H), b (H,) -> h (N, T, H), cache."""
    return _seq_forward("rnn_forward", "rnn", x, h0, Wx, Wh, b)


@_one_blas_switch
def rnn_backward(dh: np.ndarray, cache: Any) -> Tuple[np.ndarray, ...]:
    """dh (N, T, H): upstream gradients of all hidden states -> dx (N, T, D), dh0 (N, H),
    dWx (D, H), dWh (H, H), db (H,)."""
    return _seq_backward("rnn_backward", "rnn", dh, cache)


# ---------------------------------------------------------------- word embedding

def word_embedding_forward(x: np.ndarray, W: np.ndarray) -> Tuple[np.ndarray, Any]:
    """x (N, T) integer ids in [0, V), W (V, D) -> out (N, T, D) = W[x], cache."""
    f = "word_embedding_forward"
    W = np.asarray(W)
    if W.ndim != 2:
        raise ValueError(f"{f}: W must have shape (V, D), got shape {W.shape}")
    x = _token_ids("x", x, W.shape[0], ndim=2, layout="(N, T)", func=f)
    dtype = W.dtype if W.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    return W[x], _Cache(f, x, W.shape, dtype)


def word_embedding_backward(dout: np.ndarray, cache: Any) -> np.ndarray:
    """dout (N, T, D) -> dW (V, D): the gradient rows of the looked-up ids, added up."""
    f = "word_embedding_backward"
    x, (V, D), dtype = _open(cache, "word_embedding_forward", f)
    dout = _upstream(f, "dout", dout, x.shape + (D,), dtype, "(N, T, D)")
    dW = np.zeros((V, D), dtype)
    scatter_add(x, dout, dW)
    return dW


# ---------------------------------------------------------------- LSTM

def sigmoid(x: np.ndarray) -> np.ndarray:
    """A numerically stable version of the logistic sigmoid function (cs231n's: the same
    values, bit for bit, for every non-NaN input)."""
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, z) / (1 + z)


@_one_blas_switch
def lstm_step_forward(x: np.ndarray, prev_h: np.ndarray, prev_c: np.ndarray, Wx: np.ndarray,
                      Wh: np.ndarray, b: np.ndarray) -> Tuple[np.ndarray, np.ndarray, Any]:
    """x (N, D), prev_h, prev_c (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,) ->
    next_h, next_c (N, H), cache."""
    f = "lstm_step_forward"
    dtype = _float_dtype(x, prev_h, prev_c, Wx, Wh, b)
    Wx, Wh, b, D, H = _params(f, 4, Wx, Wh, b, dtype)
    x, prev_h, prev_c = _step_inputs(f, x, {"prev_h": prev_h, "prev_c": prev_c}, D, H, dtype)
    next_h, next_c, k = K.lstm_step_forward(x, prev_h, prev_c, _ih(Wx, _LSTM_BLOCKS),
                                            _rows(Wh, _LSTM_BLOCKS), b[_lstm_perm(H)],
                                            np.zeros(4 * H, dtype))
    return next_h, next_c, _Cache(f, k, next_h.shape, dtype)


@_one_blas_switch
def lstm_step_backward(dnext_h: np.ndarray, dnext_c: np.ndarray, cache: Any
                      ) -> Tuple[np.ndarray, ...]:
    """-> dx (N, D), dprev_h, dprev_c (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,)."""
    f = "lstm_step_backward"
    k, shape, dtype = _open(cache, "lstm_step_forward", f)
    dnext_h = _upstream(f, "dnext_h", dnext_h, shape, dtype, "(N, H)")
    dnext_c = _upstream(f, "dnext_c", dnext_c, shape, dtype, "(N, H)")
    dx, dprev_h, dprev_c, dwih, dwhh, dbih, _ = K.lstm_step_backward(dnext_h, dnext_c, k)
    return (dx, dprev_h, dprev_c, _cols(dwih, _LSTM_BLOCKS), _cols(dwhh, _LSTM_BLOCKS),
            dbih[_lstm_perm(shape[1])])


@_one_blas_switch
def lstm_forward(x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
                ) -> Tuple[np.ndarray, Any]:
    """x (N, T, D), h0 (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,) -> h (N, T, H), cache.
    The initial cell state is zero."""
    return _seq_forward("lstm_forward", "lstm", x, h0, Wx, Wh, b)


@_one_blas_switch
def lstm_backward(dh: np.ndarray, cache: Any) -> Tuple[np.ndarray, ...]:
    """dh (N, T, H) -> dx (N, T, D), dh0 (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,)."""
    return _seq_backward("lstm_backward", "lstm", dh, cache)


# ---------------------------------------------------------------- GRU twins

@_one_blas_switch
def gru_step_forward(x: np.ndarray, prev_h: np.ndarray, Wx: np.ndarray, Wh: np.ndarray,
                     b: np.ndarray) -> Tuple[np.ndarray, Any]:
    """x (N, D), prev_h (N, H), Wx (D, 3H), Wh (H, 3H), b (3H,), gate blocks r, z, n ->
    next_h (N, H), cache. The equations are in the module docstring."""
    f = "gru_step_forward"
    dtype = _float_dtype(x, prev_h, Wx, Wh, b)
    Wx, Wh, b, D, H = _params(f, 3, Wx, Wh, b, dtype)
    x, prev_h = _step_inputs(f, x, {"prev_h": prev_h}, D, H, dtype)
    next_h, k = K.gru_step_forward(x, prev_h, _ih(Wx), _rows(Wh), b, np.zeros(3 * H, dtype))
    return next_h, _Cache(f, k, next_h.shape, dtype)


@_one_blas_switch
def gru_step_backward(dnext_h: np.ndarray, cache: Any) -> Tuple[np.ndarray, ...]:
    """-> dx (N, D), dprev_h (N, H), dWx (D, 3H), dWh (H, 3H), db (3H,)."""
    f = "gru_step_backward"
    k, shape, dtype = _open(cache, "gru_step_forward", f)
    dnext_h = _upstream(f, "dnext_h", dnext_h, shape, dtype, "(N, H)")
    dx, dprev_h, dwih, dwhh, dbih, _ = K.gru_step_backward(dnext_h, k)
    return dx, dprev_h, _cols(dwih), _cols(dwhh), dbih


@_one_blas_switch
def gru_forward(x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
               ) -> Tuple[np.ndarray, Any]:
    """x (N, T, D), h0 (N, H), Wx (D, 3H), Wh (H, 3H), b (3H,) -> h (N, T, H), cache."""
    return _seq_forward("gru_forward", "gru", x, h0, Wx, Wh, b)


@_one_blas_switch
def gru_backward(dh: np.ndarray, cache: Any) -> Tuple[np.ndarray, ...]:
    """dh (N, T, H) -> dx (N, T, D), dh0 (N, H), dWx (D, 3H), dWh (H, 3H), db (3H,)."""
    return _seq_backward("gru_backward", "gru", dh, cache)


# The sequence functions by cell: its ``*_forward``, its ``*_backward`` and the gate blocks G
# of its weights (D, G*H), for the callers that run every cell (``fastrnn.compat.warmup``,
# ``fastrnn.compat.speed``).
_SEQUENCE_FUNCTIONS = {"rnn": (rnn_forward, rnn_backward, 1),
                       "lstm": (lstm_forward, lstm_backward, 4),
                       "gru": (gru_forward, gru_backward, 3)}


# ---------------------------------------------------------------- temporal affine and loss

def temporal_affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> Tuple[np.ndarray, Any]:
    """x (N, T, D), w (D, M), b (M,) -> out (N, T, M) = x @ w + b, cache. One product, as the
    original (there is no time loop to compile)."""
    f = "temporal_affine_forward"
    dtype = _float_dtype(x, w, b)
    x = _array(f, "x", x, dtype, 3, "(N, T, D)")
    w = _array(f, "w", w, dtype, 2, "(D, M)")
    b = _array(f, "b", b, dtype, 1, "(M,)")
    N, T, D = x.shape
    M = b.shape[0]
    if w.shape != (D, M):
        raise ValueError(f"{f}: w must have shape (D, M) = {(D, M)} (D from x, M from b), "
                         f"got {w.shape}")
    out = x.reshape(N * T, D).dot(w).reshape(N, T, M) + b           # (N, T, M)
    return out, _Cache(f, x, w, dtype)


def temporal_affine_backward(dout: np.ndarray, cache: Any) -> Tuple[np.ndarray, ...]:
    """dout (N, T, M) -> dx (N, T, D), dw (D, M), db (M,)."""
    f = "temporal_affine_backward"
    x, w, dtype = _open(cache, "temporal_affine_forward", f)
    N, T, D = x.shape
    M = w.shape[1]
    dout = _upstream(f, "dout", dout, (N, T, M), dtype, "(N, T, M)")
    d2 = dout.reshape(N * T, M)                                      # (N*T, M)
    dx = d2.dot(w.T).reshape(N, T, D)                                # (N, T, D)
    dw = x.reshape(N * T, D).T.dot(d2)                               # (D, M)
    db = d2.sum(axis=0)                                              # (M,)
    return dx, dw, db


def temporal_softmax_loss(x: np.ndarray, y: np.ndarray, mask: np.ndarray, verbose: bool = False
                         ) -> Tuple[float, np.ndarray]:
    """x (N, T, V) scores, y (N, T) ids in [0, V), mask (N, T) (bool, or weights) ->
    loss (summed over time steps, averaged over the minibatch N), dx (N, T, V)."""
    f = "temporal_softmax_loss"
    x = _array(f, "x", x, _float_dtype(x), 3, "(N, T, V)")
    N, T, V = x.shape
    y = _token_ids("y", y, V, ndim=2, layout="(N, T)", func=f)
    mask = np.asarray(mask)
    for name, a in (("y", y), ("mask", mask)):
        if a.shape != (N, T):
            swapped = a.shape == (T, N) and T != N
            raise ValueError(f"{f}: {name} must have shape (N, T) = {(N, T)} like x (N, T, V), "
                             f"got {a.shape}" + (", which is time-major (T, N)" if swapped
                                                 else ""))
    count = float(mask.sum())
    if verbose:
        print('dx_flat: ', (N * T, V))
    if count == 0:                       # no counted step: the original's sum of nothing
        return 0.0, np.zeros_like(x)
    # The kernel averages over the counted steps (and treats (N, T) like any (T, B) grid);
    # rescaling by count / N gives cs231n's sum over T averaged over N.
    loss, dx = K.softmax_cross_entropy(x, y, mask)
    scale = count / N
    dx *= scale
    return loss * scale, dx
