"""Runners for two inner pieces of the kernels, exported by ``fastrnn.kernels`` for
``fastrnn bench`` to time: the packed micro-GEMM as the time loops run it, and the fused LSTM
forward gate pass. Each builder makes its inputs once and returns a callable with no arguments
that runs the piece (compiled, on the calling thread) and returns nothing; the caller times it.
"""

import numpy as np

from .._jit import njit
from ._gemm import MR_MAX, gemm_rows, pack_panels
from .lstm import _gates_forward


@njit
def _product_loop(a, wp, c, steps):
    """The per-step product as the time loops run it: row blocks of at most MR_MAX rows."""
    M = a.shape[0]
    nb = (M + MR_MAX - 1) // MR_MAX
    for _ in range(steps):
        for i in range(nb):
            r0 = i * M // nb
            gemm_rows(a, r0, (i + 1) * M // nb - r0, wp, c)


def per_step_product(M, K, N, dtype=np.float32, steps=50, seed=0):
    """-> run(): ``steps`` times the product (M, K) @ (K, N) of one time step, with the
    weights packed once as in a time loop (2 * M * K * N * steps flops per run)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K)).astype(dtype)                    # (M, K)
    wp = pack_panels(rng.standard_normal((K, N)).astype(dtype))      # packed (K, N)
    c = np.empty((MR_MAX, wp.shape[0] * wp.shape[2]), dtype)         # (MR_MAX, N padded)
    return lambda: _product_loop(a, wp, c, steps)


@njit
def _gate_loop(xw, ar, bias, c_prev, c, h, g, reps):
    B, G4 = xw.shape
    H = G4 // 4
    for _ in range(reps):
        for b in range(B):
            _gates_forward(xw[b], ar[b], bias, c_prev[b], c[b], h[b], g[b], 0, H, H)


def lstm_gate_pass(H=256, B=50, dtype=np.float32, reps=200, seed=0):
    """-> run(): ``reps`` times the fused LSTM forward gate pass over B rows of H units
    (reps * B * 4 * H gate elements per run)."""
    rng = np.random.default_rng(seed)
    xw, ar, g = (rng.standard_normal((B, 4 * H)).astype(dtype) for _ in range(3))  # (B, 4H)
    bias = np.zeros(4 * H, dtype)                                                   # (4H,)
    c_prev, c, h = (rng.standard_normal((B, H)).astype(dtype) for _ in range(3))    # (B, H)
    return lambda: _gate_loop(xw, ar, bias, c_prev, c, h, g, reps)
