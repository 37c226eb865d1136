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

import numpy as np

__all__ = ["cs231n", "minchar", "numpy_rnn", "rnn_from_scratch", "binary_adder"]


def _token_ids(name, ids, vocab, ndim=1, layout="(T,)", func=None):
    """Integer token ids of rank ``ndim`` in [0, vocab) as an int64 array (lists accepted)."""
    where = f"{func}: " if func else ""
    a = np.asarray(ids)
    if a.size == 0 and a.ndim == ndim:
        return a.astype(np.int64)
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{where}{name} must hold integer token ids, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{where}{name} must have shape {layout}, got shape {a.shape}")
    lo, hi = a.min(), a.max()
    if lo < 0 or hi >= vocab:
        raise ValueError(f"{where}{name} must lie in [0, {vocab}), got values in [{lo}, {hi}]")
    return a.astype(np.int64, copy=False)
