"""Run every kernel once on tiny inputs so numba compiles (or loads from its cache) each
signature the public API can reach (``fastrnn.warmup()``, through ``fastrnn.kernels.warmup``)."""

import numpy as np

from ..cells import random_problem, variants
from . import _blocks, optim
from .loss import softmax_cross_entropy


def warmup(dtypes=("float32", "float64")):
    calls = 0
    rule = _blocks.MIN_MACS_PER_THREAD
    for dtype in map(np.dtype, dtypes):
        rng = np.random.default_rng(0)
        T, B, D, H = 3, 2, 3, 4
        for _, cell, options in variants():
            x, states, params, dhs = random_problem(cell, T, B, D, H, dtype)
            fns = cell.functions("kernels")
            try:
                # both copies of every loop and product: the serial one small problems run
                # and the parallel one (a tiny problem takes it when any work is enough)
                for _blocks.MIN_MACS_PER_THREAD in (rule, 1):
                    out = fns.forward(x, *states, *params, **options)
                    for truncate in (None, 1):
                        fns.backward(dhs, out[-1], truncate=truncate)
                        calls += 2
            finally:
                _blocks.MIN_MACS_PER_THREAD = rule
        logits = rng.uniform(-0.5, 0.5, (T, B, 5)).astype(dtype)
        targets = rng.integers(0, 5, (T, B))
        softmax_cross_entropy(logits, targets)
        softmax_cross_entropy(logits, targets, np.ones((T, B), bool))
        calls += 2
    optim.warmup(dtypes)
    return calls + 1
