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
into cs231n's layout.

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

import collections
import functools
from typing import Any, Tuple

import numpy as np

from .. import kernels as K
from .._jit import blas_single_threaded, njit
from ..kernels import (TIME_LOOPS, gemm_packed_cols, matmul_tn_colsum, pack_backward,
                       pack_forward, pack_panels, split_rows)
from ..kernels.linalg import linear_rows, matmul_rows, scatter_add, threads_for
from . import _token_ids

__all__ = [
    "rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward",
    "word_embedding_forward", "word_embedding_backward", "sigmoid",
    "lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward",
    "temporal_affine_forward", "temporal_affine_backward", "temporal_softmax_loss",
    "gru_step_forward", "gru_step_backward", "gru_forward", "gru_backward",
]

_GH = {1: "H", 3: "3H", 4: "4H"}


# The LSTM's gate blocks: fastrnn's block q (i, f, g, o) is cs231n's block _LSTM_BLOCKS[q]
# (i, f, o, g). The map swaps two blocks, so it also takes cs231n's blocks to fastrnn's.
_LSTM_BLOCKS = (0, 1, 3, 2)


def _lstm_perm(H):
    """Index array taking a vector of cs231n's gate blocks to fastrnn's order, and back."""
    return np.concatenate([np.arange(q * H, (q + 1) * H) for q in _LSTM_BLOCKS])


def _ih(Wx, blocks=None):
    """cs231n's ``Wx (D, G*H)`` -> fastrnn's ``weight_ih (G*H, D)`` as the transposed view of a
    C-contiguous (D, G*H) array: the kernels' input projection multiplies by ``weight_ih.T``
    and takes that without a copy. Only the LSTM's gate blocks are moved, by a plain copy."""
    Wx = np.ascontiguousarray(Wx)
    if blocks is None:
        return Wx.T
    H = Wx.shape[1] // len(blocks)
    out = np.empty_like(Wx)
    for q, k in enumerate(blocks):
        out[:, q * H:(q + 1) * H] = Wx[:, k * H:(k + 1) * H]
    return out.T


def _rows(W, blocks=None):
    """cs231n's right-multiplied ``Wh (H, G*H)`` -> fastrnn's ``weight_hh (G*H, H)``,
    C-contiguous, in one copy (the layout the kernels re-block from); ``blocks`` reorders
    gate blocks."""
    if blocks is None:
        return np.ascontiguousarray(W.T)
    X, GH = W.shape
    H = GH // len(blocks)
    out = np.empty((GH, X), W.dtype)
    for q, k in enumerate(blocks):
        out[q * H:(q + 1) * H] = W[:, k * H:(k + 1) * H].T
    return out


def _cols(w, blocks=None):
    """The inverse of ``_rows``: a weight gradient (G*H, X) -> cs231n's (X, G*H), C-contiguous."""
    if blocks is None:
        return np.ascontiguousarray(w.T)
    GH, X = w.shape
    H = GH // len(blocks)
    out = np.empty((X, GH), w.dtype)
    for q, k in enumerate(blocks):
        out[:, k * H:(k + 1) * H] = w[q * H:(q + 1) * H].T
    return out


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


def _time_major(x):
    return np.ascontiguousarray(x.transpose(1, 0, 2))                # (T, N, .)


def _batch_major(xt):
    return np.ascontiguousarray(xt.transpose(1, 0, 2))               # (N, T, .)


# ---------------------------------------------------------------- the sequence functions

# rnn_forward / lstm_forward / gru_forward and their backwards run the kernels' time loops
# directly: per call one input projection, one time loop (serial while one thread's share of
# work is small: no parallel region, the per-step products in registers, no BLAS call per
# step), one backward loop and one product per weight gradient, written straight into
# cs231n's layout. The weights' conversion to the kernels' layout (and packing for the time
# loops) is kept between calls while a weight matrix holds the same bits.

# Per cell: its time loops (forward, full backward), gate count, gate-block map
# from fastrnn's order to cs231n's (None: the same order), and the width of what its forward
# saves per row for the backward (None: nothing beyond h).
_SEQ = {"rnn": (TIME_LOOPS["rnn"], 1, None, None),
        "lstm": (TIME_LOOPS["lstm"], 4, _LSTM_BLOCKS, 4),
        "gru": (TIME_LOOPS["gru"], 3, None, 4)}


class _Converted:
    """A weight matrix of cs231n's layout converted for the kernels: ``snap`` a copy of its
    bits when converted; Wx: ``ih`` (D, G*H) in fastrnn's gate order (the input projection
    multiplies by it) and ``rows`` = ``ih.T`` C-ordered (for dx), with ``fwd`` / ``bwd`` their
    packed panels (for a serial call's products); Wh: ``rows`` fastrnn's ``weight_hh`` (G*H, H)
    and its panels ``fwd`` / ``bwd`` for the two time loops. What a backward needs is built at
    the first backward; nothing changes once built."""

    __slots__ = ("snap", "ih", "rows", "fwd", "bwd")


# (id(W), "Wx" or "Wh", gate blocks) -> _Converted, most recently used last. A hit needs
# the array's bits to equal the copy taken at conversion (one compiled pass over W, a few
# microseconds), so an array changed in place, or a new array at a recycled id, is converted
# again: the cache is never stale, it only saves work while weights stay unchanged (between
# a forward and its backward, over repeated calls on the same weights, and for the
# unperturbed weight while a gradient check perturbs another).
_CONVERTED: "collections.OrderedDict" = collections.OrderedDict()
_CONVERTED_MAX = 6


@njit
def _same_bits(a, b):
    """a, b: 1-D integer views of two float arrays of one size -> every element equal.
    Compared by blocks of 2048, each an OR of XORs (a loop LLVM vectorises; an early exit
    per element would keep it scalar)."""
    n = a.shape[0]
    for lo in range(0, n, 2048):
        x = a[lo:lo + 2048]
        y = b[lo:lo + 2048]
        d = 0
        for i in range(x.shape[0]):
            d |= x[i] ^ y[i]
        if d != 0:
            return False
    return True


def _bits(a):
    return a.reshape(-1).view(np.int64 if a.dtype == np.float64 else np.int32)


def _check_finite(func, name, a):
    if not np.isfinite(a).all():
        raise ValueError(f"{func}: {name} contains NaN or Inf")


def _converted(func, name, W, blocks):
    """W (Wx (D, G*H) or Wh (H, G*H), as named) converted for the kernels; see _CONVERTED."""
    key = (id(W), name, blocks)
    e = _CONVERTED.get(key)
    if (e is not None and W.flags.c_contiguous and e.snap.shape == W.shape
            and e.snap.dtype == W.dtype and _same_bits(_bits(W), _bits(e.snap))):
        _CONVERTED.move_to_end(key)
        return e
    _check_finite(func, name, W)
    e = _Converted()
    e.snap = np.array(W, order="C", copy=True)
    e.fwd = e.bwd = e.rows = None
    if name == "Wx":
        e.ih = np.ascontiguousarray(_ih(e.snap, blocks).T)                  # (D, G*H)
    else:
        e.rows = _rows(e.snap, blocks)                                      # (G*H, H)
        e.fwd = pack_forward(e.rows)
    if W.flags.c_contiguous:
        _CONVERTED[key] = e
        while len(_CONVERTED) > _CONVERTED_MAX:
            _CONVERTED.popitem(last=False)
    return e


def _seq_forward(f, cell, x, h0, Wx, Wh, b):
    """cs231n's ``{cell}_forward`` -> h (N, T, H), cache."""
    kernels, G, blocks, saved_width = _SEQ[cell]
    dtype = _float_dtype(x, h0, Wx, Wh, b)
    Wx, Wh, b, D, H = _params(f, G, Wx, Wh, b, dtype)
    x, h0 = _sequence_inputs(f, x, h0, D, H, dtype)
    for name, a in (("x", x), ("h0", h0), ("b", b)):
        _check_finite(f, name, a)
    N, T = x.shape[:2]
    GH = G * H
    wx = _converted(f, "Wx", Wx, blocks)
    wh = _converted(f, "Wh", Wh, blocks)
    bias = np.ascontiguousarray(b if blocks is None else b[_lstm_perm(H)])
    xt = _time_major(x)                                              # (T, N, D)
    xw = np.empty((T, N, GH), dtype)                                 # (T, N, G*H)
    split = split_rows(N, T * N * GH * H)
    bias_hh = np.zeros(GH, dtype)
    if split.shape[0] == 2:          # a serial time loop: the products are micro-GEMMs
        if wx.fwd is None:           # too, split by columns over the threads they are worth
            wx.fwd = pack_panels(wx.ih)
        gemm_packed_cols(xt.reshape(T * N, D), wx.fwd, xw.reshape(T * N, GH),
                         threads_for(T * N * D * GH))
        if cell == "gru":            # its bias_hh is inside r * (.): b stays on the input side
            xw += bias
        else:                        # the gate pass adds b (one pass over xw less)
            bias_hh = bias
    else:
        linear_rows(xt.reshape(T * N, D), wx.ih, bias, xw.reshape(T * N, GH),
                    threads_for(T * N * D * GH))
    hs = np.empty((T + 1, N, H), dtype)                              # (T+1, N, H)
    hs[0] = h0
    cs = saved = hs
    if cell == "lstm":
        cs = np.empty((T + 1, N, H), dtype)                          # (T+1, N, H)
        cs[0] = 0
    if saved_width is not None:
        saved = np.empty((T, N, saved_width * H), dtype)             # (T, N, 4H)
    kernels[0](xw, bias_hh, wh.fwd, split, hs, cs, saved, False)
    return _batch_major(hs[1:]), _Cache(f, xt, hs, cs, saved, wx, wh, (N, T, H), dtype)


def _to_blocks(a, blocks):
    """a (R, G*H) in fastrnn's gate order -> cs231n's, C-ordered (a itself if no reorder)."""
    if blocks is None:
        return a
    H = a.shape[1] // len(blocks)
    out = np.empty_like(a)
    for q, k in enumerate(blocks):
        out[:, k * H:(k + 1) * H] = a[:, q * H:(q + 1) * H]
    return out


def _seq_backward(f, cell, dh, cache):
    """cs231n's ``{cell}_backward`` -> dx (N, T, D), dh0 (N, H), dWx, dWh, db."""
    kernels, G, blocks, _ = _SEQ[cell]
    xt, hs, cs, saved, wx, wh, shape, dtype = _open(cache, f"{cell}_forward", f)
    dh = _upstream(f, "dh", dh, shape, dtype, "(N, T, H)")
    N, T, H = shape
    D = xt.shape[2]
    GH = G * H
    if wh.bwd is None:
        wh.bwd = pack_backward(wh.rows)
    if wx.rows is None:
        wx.rows = np.ascontiguousarray(wx.ih.T)                      # (G*H, D)
    dxw = np.empty((T, N, GH), dtype)                                # (T, N, G*H)
    dhw = np.empty((T, N, GH), dtype) if cell == "gru" else dxw      # recurrent part
    dh0 = np.empty((N, H), dtype)
    split = split_rows(N, T * N * GH * H)
    kernels[1](_time_major(dh), np.zeros((N, H), dtype), np.zeros((N, H), dtype),
                hs, cs, saved, wh.bwd, split, dxw, dhw, dh0, False)
    dxw2 = dxw.reshape(T * N, GH)
    dx = np.empty((T * N, D), dtype)                                 # (T*N, D)
    da = _to_blocks(dxw2, blocks)                                    # (T*N, G*H) cs231n order
    dha = da if dhw is dxw else _to_blocks(dhw.reshape(T * N, GH), blocks)
    dWx = np.empty((D, GH), dtype)
    dWh = np.empty((H, GH), dtype)
    if split.shape[0] == 2:          # a serial time loop: micro-GEMMs (see _seq_forward)
        threads = threads_for(T * N * D * GH)
        if wx.bwd is None:
            wx.bwd = pack_panels(wx.rows)
        gemm_packed_cols(dxw2, wx.bwd, dx, threads)
        dap = pack_panels(da)
        gemm_packed_cols(np.ascontiguousarray(xt.reshape(T * N, D).T), dap, dWx, threads)
        gemm_packed_cols(np.ascontiguousarray(hs[:T].reshape(T * N, H).T),
                         dap if dha is da else pack_panels(dha), dWh, threads)
    else:
        threads = threads_for(T * N * D * GH)
        matmul_rows(dxw2, wx.rows, dx, threads)
        matmul_tn_colsum(xt.reshape(T * N, D), da, dWx, np.empty(D, dtype), threads)
        matmul_tn_colsum(hs[:T].reshape(T * N, H), dha, dWh, np.empty(H, dtype), threads)
    db = da.sum(axis=0)
    return _batch_major(dx.reshape(T, N, D)), dh0, dWx, dWh, db


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
