"""Run every kernel once on tiny inputs so numba compiles (or loads from its cache) each
signature the public API can reach."""

import numpy as np


def warmup(dtypes=("float32", "float64")):
    from . import kernels as K

    calls = 0
    for dtype in map(np.dtype, dtypes):
        rng = np.random.default_rng(0)
        T, B, D, H = 3, 2, 3, 4

        def arr(*shape):
            return rng.uniform(-0.5, 0.5, shape).astype(dtype)

        x, h0, c0, dhs = arr(T, B, D), arr(B, H), arr(B, H), arr(T, B, H)
        for kind, G in (("rnn", 1), ("lstm", 4), ("gru", 3)):
            fwd, bwd = getattr(K, f"{kind}_forward"), getattr(K, f"{kind}_backward")
            states = (h0, c0) if kind == "lstm" else (h0,)
            params = (arr(G * H, D), arr(G * H, H), arr(G * H), arr(G * H))
            variants = [{"nonlinearity": "tanh"}, {"nonlinearity": "relu"}] if kind == "rnn" \
                else [{}]
            for kw in variants:
                out = fwd(x, *states, *params, **kw)
                for truncate in (None, 1):
                    bwd(dhs, out[-1], truncate=truncate)
                    calls += 2
        logits = arr(T, B, 5)
        targets = rng.integers(0, 5, (T, B))
        K.softmax_cross_entropy(logits, targets)
        K.softmax_cross_entropy(logits, targets, np.ones((T, B), bool))
        calls += 2
    from .kernels import optim
    optim.warmup(dtypes)
    return calls + 1
