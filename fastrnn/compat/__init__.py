"""Drop-in replacements for the NumPy RNN code people already run: the same names, argument
order, shapes and return values, computed by ``fastrnn.kernels``.

- ``fastrnn.compat.cs231n``: cs231n's ``rnn_layers.py`` (``rnn_*``, ``lstm_*``,
  ``word_embedding_*``, ``temporal_affine_*``, ``temporal_softmax_loss``, ``sigmoid``) plus
  ``gru_*`` twins in the same style. Replace ``from cs231n.rnn_layers import *`` with
  ``from fastrnn.compat.cs231n import *``.
- ``fastrnn.compat.minchar``: Karpathy's min-char-rnn (``lossFun``, ``sample``, a
  ``MinCharRNN`` class with Adagrad memory); ``python -m fastrnn.compat.minchar input.txt``
  runs the original training loop.
- ``fastrnn.compat.numpy_rnn``: the "U, V, W" word-level RNN of the classic NumPy tutorial
  (``RNNNumpy`` with ``forward_propagation``, ``bptt`` with ``bptt_truncate``, ``sgd_step``,
  ``gradient_check``, ``train_with_sgd``).
- ``fastrnn.compat.rnn_from_scratch``: the "RNN from scratch with NumPy" tutorial's functions
  (column vectors, ``Rnn_forward``, ``full_forward_prop``, the ``memory`` dict,
  ``rnn_backprop`` with ``bptt_truncate``, ``gd_step``, ``train``), its bugs fixed and listed.
- ``fastrnn.compat.binary_adder``: Peter Roelants' binary-addition RNN (``TensorLinear``,
  ``RecurrentStateUnfold``, ``RnnBinaryAdder`` with ``getParamGrads`` / ``get_params_iter``,
  ``create_dataset``, ``printSample``); the tutorial's gradient check and RMSprop + Nesterov
  loop run unchanged.

Each call converts layout and gate order at the boundary once (the last two need no conversion)
and runs the whole time loop in compiled code; one-hot inputs are never built (the columns of
the input weight are gathered and their gradient scatter-added). The submodules are imported on
demand.
"""

import contextlib

import numpy as np

from .._jit import njit

__all__ = ["cs231n", "minchar", "numpy_rnn", "rnn_from_scratch", "binary_adder"]


def _token_ids(name, ids, vocab, ndim=1, layout="(T,)", func=None):
    """Integer token ids of rank ``ndim`` in [0, vocab) as an int64 array (lists accepted)."""
    a = np.asarray(ids)
    if a.size == 0 and a.ndim == ndim:
        return a.astype(np.int64)
    where = f"{func}: " if func else ""
    if a.dtype.kind not in "iu":
        raise TypeError(f"{where}{name} must hold integer token ids, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{where}{name} must have shape {layout}, got shape {a.shape}")
    lo, hi = _id_range(a.reshape(-1))
    if lo < 0 or hi >= vocab:
        raise ValueError(f"{where}{name} must lie in [0, {vocab}), got values in [{lo}, {hi}]")
    return a.astype(np.int64, copy=False)


@njit
def _id_range(a):
    """min and max of a non-empty 1-D integer array in one compiled pass (a call costs less
    than one of NumPy's reductions on the short id lists the drop-ins get)."""
    lo = hi = a[0]
    for v in a:
        lo = min(lo, v)
        hi = max(hi, v)
    return lo, hi


def warmup(dtypes=("float32", "float64")):
    """Run every drop-in once on tiny inputs of each dtype, so that numba compiles (or loads
    from its cache) what their first real call would run: the cs231n sequence functions on
    both of their paths (serial, split over threads), min-char-rnn's lossFun and sample,
    RNNNumpy.bptt (truncated and full), the RNN-from-scratch forward and rnn_backprop, the
    binary adder's getParamGrads and getOutput. NumPy's global random state is left as it was.
    Returns the number of calls made."""
    from ..kernels import split_small_problems
    from . import binary_adder, cs231n, minchar, numpy_rnn, rnn_from_scratch

    calls = 0
    state = np.random.get_state()
    try:
        for dtype in map(np.dtype, dtypes):
            rng = np.random.default_rng(0)

            def u(*shape):
                return rng.uniform(-0.5, 0.5, shape).astype(dtype)

            N, T, D, H, V = 2, 3, 3, 4, 5
            for split in (False, True):
                with split_small_problems() if split else contextlib.nullcontext():
                    for forward, backward, G in cs231n._SEQUENCE_FUNCTIONS.values():
                        _, cache = forward(u(N, T, D), u(N, H), u(D, G * H), u(H, G * H),
                                           u(G * H))
                        backward(u(N, T, H), cache)
                        calls += 2
            m = minchar.MinCharRNN(V, H, seq_length=T, rng=np.random.RandomState(0))
            m.Wxh, m.Whh, m.Why, m.bh, m.by = (a.astype(dtype)
                                               for a in (m.Wxh, m.Whh, m.Why, m.bh, m.by))
            m.lossFun([0, 1, 2], [1, 2, 3], np.zeros((H, 1), dtype))
            m.sample(np.zeros((H, 1), dtype), 0, 2)
            r = numpy_rnn.RNNNumpy(V, H, 1)
            r.U, r.V, r.W = (a.astype(dtype) for a in (r.U, r.V, r.W))
            for r.bptt_truncate in (1, T):
                r.bptt([0, 1, 2], [1, 2, 3])
            r.calculate_loss([[0, 1]], [[1, 2]])
            U, W, Vw = u(H, D), u(H, H), u(V, H)
            emb = [u(D, 1) for _ in range(T)]
            out = [np.eye(V, dtype=dtype)[:, [i]] for i in range(T)]
            ys, memory = rnn_from_scratch.full_forward_prop(T, emb, U, W, np.zeros((H, 1), dtype),
                                                            Vw)
            rnn_from_scratch.rnn_backprop(emb, memory, out, np.zeros_like(U), np.zeros_like(Vw),
                                          np.zeros_like(W), 2, U, Vw, W)
            X, Tg = binary_adder.create_dataset(4, T)
            net = binary_adder.RnnBinaryAdder(2, 1, 3, T)
            for layer in (net.tensorInput, net.tensorOutput, net.rnnUnfold.stateUpdate.linear):
                layer.W, layer.b = layer.W.astype(dtype), layer.b.astype(dtype)
            net.rnnUnfold.S0 = net.rnnUnfold.S0.astype(dtype)
            net.getParamGrads(X.astype(dtype), Tg.astype(dtype))
            net.getOutput(X.astype(dtype))
            calls += 8
    finally:
        np.random.set_state(state)
    return calls
