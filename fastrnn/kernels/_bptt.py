"""The time loops, written once for every cell: forward, full BPTT and windowed truncation.

Batch rows are independent through time in both directions (only the weight gradients sum,
and those are one product over all T*B rows after the loop, in ``_blocks``). So each thread
owns a contiguous range of batch rows for the whole call and runs the whole time loop for
them: ONE parallel region per call, no barrier per step. Per step and block of at most
``MR_MAX`` rows a thread does one packed micro-GEMM (``_gemm``) into a small scratch and then
the cell's fused pass on each finished row, while it is in L1:

    forward   a = h[t] @ W_hh^T           (rows, G*H)  ->  cell.forward_row   -> h[t+1], ...
    backward  dh = dhw[t+1] @ W_hh        (rows, H)    ->  cell.backward_row  -> dxw[t], dhw[t]

Windowed truncation (``truncate=k < T``) carries k+1 separate gradients per row ("ages"
a = source step - t); one product per age and step takes each to the previous step (see
``fastrnn.reference._bptt`` for the semantics).

A cell plugs in two row functions (njit), made into the three loops by the factories here:

    forward_row(xw, t, b, ar, bias, hs, cs, saved, flag)
        ar (G*H,): recurrent pre-activation h[t, b] @ W_hh^T (bias not added);
        writes hs[t+1, b] (and cs[t+1, b], saved[t, b]).
    backward_row(t, b, dh, dh_ext, ds_in, ds_out, hs, cs, saved, dx_row, dh_row, scratch, flag)
        dh (H,): gradient reaching h[t+1, b] through W_hh (overwritten); dh_ext (H,): the
        output gradient; ds_in / ds_out (H,): the cell's second state gradient coming in and
        going back (LSTM: dc; GRU: the direct path z * dh; RNN: unused; ds_out may be
        ds_in); writes the pre-activation gradients dx_row (G*H) of the projected input and
        dh_row (G*H) of the recurrent pre-activation (the same array unless ``SEPARATE``).

``STATE`` tells what the second state gradient is at the ends of the sequence: 0 none (RNN),
1 its own output (LSTM: dc_n in, dc0 out), 2 a part of dh (GRU: it is added to dh0).
"""

import types

import numpy as np

from .._jit import parallel_or_serial, prange
from ._blocks import threads_for
from ._gemm import MR_MAX, gemm_rows, pack_panels

NO_STATE, OWN_STATE, STATE_IN_DH = 0, 1, 2


def split_rows(B, macs, threads=None):
    """Batch rows per thread -> int64 (P+1,) bounds: as many threads as have at least one row
    and ``_blocks.MIN_MACS_PER_THREAD`` of the call's ``macs`` multiply-adds each."""
    P = min(B, threads_for(macs, threads))
    return (np.arange(P + 1, dtype=np.int64) * B) // P


def ages(T, truncate):
    """Gradient rows per batch row that one backward step multiplies: 1 for full BPTT, the
    k+1 "ages" of windowed truncation otherwise."""
    return 1 if truncate is None or truncate >= T else truncate + 1


# The loops below are templates: ``forward_row``, ``backward_row``, ``STATE`` and ``SEPARATE``
# are bound per cell by ``_specialise`` (as globals of a copy of the template: numba freezes
# them at compile time). Not closures: numba keys its cache on the pickled closure cells, and
# a dispatcher pickles with a per-process id, so a loop closing over a row function was
# compiled again in every process (measured: warm-up from the cache 150 s instead of ~3 s).
forward_row = backward_row = STATE = SEPARATE = None


def _specialise(template, name, **bound):
    """A copy of the loop ``template`` for cell ``name`` with ``bound`` as globals, under a
    name of its own (numba's cache files are named after it)."""
    fn = types.FunctionType(template.__code__, dict(template.__globals__, **bound),
                            f"{name}{template.__name__}")
    fn.__qualname__ = fn.__name__
    return fn


def _serial_when_one_chunk(split_arg):
    return parallel_or_serial(lambda *args: args[split_arg].shape[0] == 2)


def _forward_loop(xw, bias_hh, wp, split, hs, cs, saved, flag):
    T = xw.shape[0]
    P = split.shape[0] - 1
    N = wp.shape[0] * wp.shape[2]
    for j in prange(P):
        b0 = split[j]
        n = split[j + 1] - b0
        nb = (n + MR_MAX - 1) // MR_MAX
        ar = np.empty((MR_MAX, N), xw.dtype)               # this thread's pre-activations
        for t in range(T):
            for i in range(nb):
                r0 = b0 + i * n // nb
                m = b0 + (i + 1) * n // nb - r0
                gemm_rows(hs[t], r0, m, wp, ar, (t * nb + i) % 2 == 1)  # alternate: see gemm_rows
                for r in range(m):
                    forward_row(xw, t, r0 + r, ar[r], bias_hh, hs, cs, saved, flag)



def make_forward(name, forward_row):
    """The forward time loop of cell ``name`` -> ``forward(xw, bias_hh, wp, split, hs, cs,
    saved, flag)``; see the module docstring."""
    return _serial_when_one_chunk(3)(_specialise(_forward_loop, name, forward_row=forward_row))


def _backward_loop(dhs, dh_n, ds0, hs, cs, saved, wp, split, dxw, dhw, dh0, flag):
    T, B, H = dhs.shape
    P = split.shape[0] - 1
    N = wp.shape[0] * wp.shape[2]
    for j in prange(P):
        b0 = split[j]
        n = split[j + 1] - b0
        nb = (n + MR_MAX - 1) // MR_MAX
        dh = np.empty((MR_MAX, N), dhs.dtype)              # gradient through W_hh
        scratch = np.empty(H, dhs.dtype)
        for t in range(T - 1, -1, -1):
            for i in range(nb):
                r0 = b0 + i * n // nb
                m = b0 + (i + 1) * n // nb - r0
                if t == T - 1:
                    for r in range(m):
                        dh[r, :H] = dh_n[r0 + r]
                else:
                    gemm_rows(dhw[t + 1], r0, m, wp, dh, (t * nb + i) % 2 == 1)
                for r in range(m):
                    b = r0 + r
                    backward_row(t, b, dh[r], dhs[t, b], ds0[b], ds0[b], hs, cs, saved,
                                 dxw[t, b], dhw[t, b], scratch, flag)
        for i in range(nb):                                # the gradient reaching h0
            r0 = b0 + i * n // nb
            m = b0 + (i + 1) * n // nb - r0
            gemm_rows(dhw[0], r0, m, wp, dh)
            for r in range(m):
                d = dh0[r0 + r]
                s = ds0[r0 + r]
                g = dh[r]
                if STATE == STATE_IN_DH:
                    for u in range(H):
                        d[u] = g[u] + s[u]
                else:
                    for u in range(H):
                        d[u] = g[u]



def make_backward(name, backward_row, STATE, SEPARATE):
    """Full BPTT of a cell -> ``backward(dhs, dh_n, ds0, hs, cs, saved, wp, split, dxw, dhw,
    dh0, flag)``: ds0 holds the final state gradient on entry (zeros unless OWN_STATE) and
    ends as the initial one; dhw is dxw unless SEPARATE."""
    return _serial_when_one_chunk(7)(_specialise(_backward_loop, name, backward_row=backward_row,
                                                 STATE=STATE, SEPARATE=SEPARATE))


def _backward_window_loop(dhs, dh_n, ds_n, hs, cs, saved, wp, split, k, dxw, dhw, dh0, ds0, flag):
    T, B, H = dhs.shape
    GH = dxw.shape[2]
    P = split.shape[0] - 1
    N = wp.shape[0] * wp.shape[2]
    K1 = k + 1
    # per age: recurrent pre-activation gradients (double-buffered over t), projected
    # input ones, and the incoming second-state gradient (age a reads a, writes a+1)
    dpre = np.zeros((2, K1, B, GH), dhs.dtype)
    dxa = np.zeros((K1, B, GH), dhs.dtype) if SEPARATE else dpre[0]
    dss = np.zeros((K1 + 1, B, H), dhs.dtype)
    zeros = np.zeros(H, dhs.dtype)
    for j in prange(P):
        b0 = split[j]
        n = split[j + 1] - b0
        nb = (n + MR_MAX - 1) // MR_MAX
        dh = np.empty((MR_MAX, N), dhs.dtype)
        scratch = np.empty(H, dhs.dtype)
        for t in range(T - 1, -1, -1):
            na = min(k, T - 1 - t) + 1                     # ages alive at step t
            cur = t % 2
            prev = 1 - cur
            for a in range(na - 1, -1, -1):                # descending: dss[a+1] is free
                for i in range(nb):
                    r0 = b0 + i * n // nb
                    m = b0 + (i + 1) * n // nb - r0
                    if a > 0:
                        gemm_rows(dpre[prev, a - 1], r0, m, wp, dh)
                    else:                                  # age 0: the loss of step t
                        for r in range(m):
                            b = r0 + r
                            for u in range(H):
                                dh[r, u] = dh_n[b, u] if t == T - 1 else 0
                                dss[0, b, u] = ds_n[b, u] if t == T - 1 else 0
                    for r in range(m):
                        b = r0 + r
                        dpa = dpre[cur, a, b]
                        dxr = dxa[a, b] if SEPARATE else dpa
                        backward_row(t, b, dh[r], dhs[t, b] if a == 0 else zeros, dss[a, b],
                                     dss[a + 1, b], hs, cs, saved, dxr, dpa, scratch, flag)
                        o = dxw[t, b]
                        for q in range(GH):
                            o[q] += dxr[q]
                        if SEPARATE:
                            o = dhw[t, b]
                            for q in range(GH):
                                o[q] += dpa[q]
        # sources still alive past step 0 reach the initial state: ages a <= m-1
        m_ages = min(k, min(k, T - 1) + 1)
        for r in range(n):
            b = b0 + r
            for u in range(H):
                dh0[b, u] = 0
                ds0[b, u] = 0
        for a in range(m_ages):
            for i in range(nb):
                r0 = b0 + i * n // nb
                m = b0 + (i + 1) * n // nb - r0
                gemm_rows(dpre[0, a], r0, m, wp, dh)
                for r in range(m):
                    b = r0 + r
                    d = dh0[b]
                    g = dh[r]
                    s = dss[a + 1, b]
                    if STATE == STATE_IN_DH:
                        for u in range(H):
                            d[u] += g[u] + s[u]
                    else:
                        for u in range(H):
                            d[u] += g[u]
                    if STATE == OWN_STATE:
                        o = ds0[b]
                        for u in range(H):
                            o[u] += s[u]



def make_backward_window(name, backward_row, STATE, SEPARATE):
    """Windowed truncation (k < T) -> ``backward(dhs, dh_n, ds_n, hs, cs, saved, wp, split, k,
    dxw, dhw, dh0, ds0, flag)``; dxw and dhw (dhw is dxw unless SEPARATE) zero on entry."""
    return _serial_when_one_chunk(7)(_specialise(_backward_window_loop, name,
                                                 backward_row=backward_row, STATE=STATE,
                                                 SEPARATE=SEPARATE))


def pack_forward(weight_hh):
    """W_hh (G*H, H) -> panels of W_hh^T for ``a = h @ W_hh^T``."""
    return pack_panels(weight_hh.T)


def pack_backward(weight_hh):
    """W_hh (G*H, H) -> panels of W_hh for ``dh = dhw @ W_hh``."""
    return pack_panels(weight_hh)


