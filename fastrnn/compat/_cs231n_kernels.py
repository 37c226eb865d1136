"""How ``fastrnn.compat.cs231n`` runs on ``fastrnn.kernels``: cs231n's weight layout and gate
order converted to the kernels' and back (``ih``, ``rows``, ``cols``, ``to_blocks``,
``lstm_perm``), the converted weights kept between calls (``converted``), and the sequence
functions' forward and backward on arrays the drop-in has checked (``forward``,
``backward``). None of these names is cs231n's; the layouts are in that module's docstring.
"""

import collections

import numpy as np

from .._checks import check_finite
from .._jit import njit
from ..kernels import (TIME_LOOPS, gemm_packed_cols, matmul_tn_colsum, pack_backward,
                       pack_forward, pack_panels, split_rows)
from ..kernels.linalg import linear_rows, matmul_rows, threads_for

# ---------------------------------------------------------------- layout

# The LSTM's gate blocks: fastrnn's block q (i, f, g, o) is cs231n's block LSTM_BLOCKS[q]
# (i, f, o, g). The map swaps two blocks, so it also takes cs231n's blocks to fastrnn's.
LSTM_BLOCKS = (0, 1, 3, 2)


def lstm_perm(H):
    """Index array taking a vector of cs231n's gate blocks to fastrnn's order, and back."""
    return np.concatenate([np.arange(q * H, (q + 1) * H) for q in LSTM_BLOCKS])


def ih(Wx, blocks=None):
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


def rows(W, blocks=None):
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


def cols(w, blocks=None):
    """The inverse of ``rows``: a weight gradient (G*H, X) -> cs231n's (X, G*H), C-contiguous."""
    if blocks is None:
        return np.ascontiguousarray(w.T)
    GH, X = w.shape
    H = GH // len(blocks)
    out = np.empty((X, GH), w.dtype)
    for q, k in enumerate(blocks):
        out[:, k * H:(k + 1) * H] = w[q * H:(q + 1) * H].T
    return out


def to_blocks(a, blocks):
    """a (R, G*H) in fastrnn's gate order -> cs231n's, C-ordered (a itself if no reorder)."""
    if blocks is None:
        return a
    H = a.shape[1] // len(blocks)
    out = np.empty_like(a)
    for q, k in enumerate(blocks):
        out[:, k * H:(k + 1) * H] = a[:, q * H:(q + 1) * H]
    return out


def time_major(x):
    """(N, T, .) -> (T, N, .), C-contiguous (and back: ``batch_major``)."""
    return np.ascontiguousarray(x.transpose(1, 0, 2))                # (T, N, .)


def batch_major(xt):
    return np.ascontiguousarray(xt.transpose(1, 0, 2))               # (N, T, .)


# ---------------------------------------------------------------- converted weights

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


def converted(func, name, W, blocks):
    """W (Wx (D, G*H) or Wh (H, G*H), as named) converted for the kernels; see _CONVERTED.
    Checks that W is finite when it converts it (``func`` names the caller)."""
    key = (id(W), name, blocks)
    e = _CONVERTED.get(key)
    if (e is not None and W.flags.c_contiguous and e.snap.shape == W.shape
            and e.snap.dtype == W.dtype and _same_bits(_bits(W), _bits(e.snap))):
        _CONVERTED.move_to_end(key)
        return e
    check_finite(f"{func}: {name}", W)
    e = _Converted()
    e.snap = np.array(W, order="C", copy=True)
    e.fwd = e.bwd = e.rows = None
    if name == "Wx":
        e.ih = np.ascontiguousarray(ih(e.snap, blocks).T)                   # (D, G*H)
    else:
        e.rows = rows(e.snap, blocks)                                       # (G*H, H)
        e.fwd = pack_forward(e.rows)
    if W.flags.c_contiguous:
        _CONVERTED[key] = e
        while len(_CONVERTED) > _CONVERTED_MAX:
            _CONVERTED.popitem(last=False)
    return e


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
SEQUENCES = {"rnn": (TIME_LOOPS["rnn"], 1, None, None),
             "lstm": (TIME_LOOPS["lstm"], 4, LSTM_BLOCKS, 4),
             "gru": (TIME_LOOPS["gru"], 3, None, 4)}


def forward(f, cell, x, h0, Wx, Wh, b):
    """cs231n's ``{cell}_forward`` (``f``) on checked arrays of one float dtype (x (N, T, D),
    h0 (N, H), Wx (D, G*H), Wh (H, G*H), b (G*H,); x, h0, b finite) -> h (N, T, H) and the
    state its backward needs (``backward``'s arguments after ``dh``)."""
    kernels, G, blocks, saved_width = SEQUENCES[cell]
    dtype = x.dtype
    N, T, D = x.shape
    H = h0.shape[1]
    GH = G * H
    wx = converted(f, "Wx", Wx, blocks)
    wh = converted(f, "Wh", Wh, blocks)
    bias = np.ascontiguousarray(b if blocks is None else b[lstm_perm(H)])
    xt = time_major(x)                                               # (T, N, D)
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
    return batch_major(hs[1:]), (xt, hs, cs, saved, wx, wh)


def backward(cell, dh, xt, hs, cs, saved, wx, wh):
    """cs231n's ``{cell}_backward`` on a checked dh (N, T, H) of the forward's dtype and the
    state ``forward`` returned -> dx (N, T, D), dh0 (N, H), dWx, dWh, db."""
    kernels, G, blocks, _ = SEQUENCES[cell]
    dtype = hs.dtype
    N, T, H = dh.shape
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
    kernels[1](time_major(dh), np.zeros((N, H), dtype), np.zeros((N, H), dtype),
                hs, cs, saved, wh.bwd, split, dxw, dhw, dh0, False)
    dxw2 = dxw.reshape(T * N, GH)
    dx = np.empty((T * N, D), dtype)                                 # (T*N, D)
    da = to_blocks(dxw2, blocks)                                     # (T*N, G*H) cs231n order
    dha = da if dhw is dxw else to_blocks(dhw.reshape(T * N, GH), blocks)
    dWx = np.empty((D, GH), dtype)
    dWh = np.empty((H, GH), dtype)
    if split.shape[0] == 2:          # a serial time loop: micro-GEMMs (see forward)
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
    return batch_major(dx.reshape(T, N, D)), dh0, dWx, dWh, db
