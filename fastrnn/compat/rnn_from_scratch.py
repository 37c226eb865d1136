"""The "RNN from scratch with NumPy" tutorial (R. Dholakia, "Implementing Recurrent Neural
Network using Numpy"; also printed in Chinese by QbitAI) with its own names and calling
conventions, the sequence loops in compiled code.

The tutorial's conventions, kept here: column vectors ``(hidden_dim, 1)``; ``input_weights`` U
``(hidden_dim, D)`` (D = hidden_dim in the tutorial), ``internal_state_weights`` W
``(hidden_dim, hidden_dim)``, ``output_weights`` V ``(output_dim, hidden_dim)``; ``embeddings``
a list of ``(D, 1)`` vectors; targets ``output_t[t]`` one-hot ``(output_dim, 1)``; the
``memory`` dict with keys ``"ht{t}"``, ``"yt{t}"``, ``"params{t}"`` (``params{t}`` is
``[[W_frd, U_frd, sum_s, yt_unactivated]]``); gradients ``dU``, ``dW``, ``dV``.

    sum_s[t] = W @ h[t-1] + U @ x[t];  h[t] = tanh(sum_s[t]);  h[-1] = prev_memory
    y[t] = softmax(V @ h[t])

``rnn_backprop`` adds to ``dU, dW, dV`` the truncated-BPTT gradients of the summed
natural-log cross-entropy ``sum_t -log y[t][target t]`` (its gradient at the logits is
``delta_cross_entropy``'s ``y_hat - y``): the loss at step t reaches step t and the look-back
steps ``range(t-1, max(-1, t-bptt_truncate), -1)``, each with its own embedding and its true
previous state. In fastrnn's terms (``fastrnn.reference.rnn_backward_proj(...,
truncate=k)``, the loss at step t crosses at most k recurrent transitions) that is
``k = max(bptt_truncate - 1, 0)``: ``bptt_truncate = 2`` (the tutorial's) is ``truncate=1``,
``bptt_truncate >= T + 1`` is full BPTT.

Where this differs from the printed code (which does not run as printed), on purpose:

- ``tanh_activation`` is ``np.tanh`` (the text says it "can also be written as np.tanh(Z)"):
  the printed ``(e^Z - e^-Z) / (e^Z + e^-Z)`` is NaN for ``|Z| > ~710``, and the Chinese
  printing has ``-`` in the denominator (division by the numerator: always 1).
- ``full_forward_prop`` (used, not printed) is the tutorial's loop over ``Rnn_forward`` with the
  state carried from ``prev_memory``; it returns ``(outputs, memory)`` and its ``memory`` also
  holds ``"ht-1"`` = ``prev_memory``, the true previous state of step 0 for ``rnn_backprop``
  (whose signature has no ``prev_memory``; a memory without ``"ht-1"`` uses zeros, as the
  printed code does, which is right for the tutorial's ``prev_memory`` of zeros).
- ``calculate_loss`` returns a float (the printed code returns a 1-element array for column
  vectors); it keeps the printed log2 and the averaging over output_dim and over the steps,
  so it is the printed number, not the loss ``rnn_backprop`` differentiates (natural log,
  summed).
- ``delta_cross_entropy`` returns a new array; the printed one subtracts 1 in place from
  ``predicted_output``, i.e. from ``memory["yt{t}"]``, so a second backprop on the same memory
  used ``y_hat - 2y``.
- ``multiplication_backward`` uses ``np.dot(dz, x.T)`` instead of ``np.asmatrix`` (NumPy's
  matrix class is deprecated); the same outer product for column vectors.
- ``rnn_backprop``: the number of steps is that of ``memory`` (printed: ``T = 4`` and
  ``range(4)``); hidden_dim and output_dim come from the weights (printed: globals); step t
  uses its true previous state ``memory["ht{t-1}"]`` (printed: ``prev_s_t`` reset to zeros at
  every t); look-back step i uses ``embeddings[i]`` (printed: ``embeddings[t]``) and
  ``memory["ht{i-1}"]`` (printed: ``memory["ht" + str[prev]]``, a TypeError, with
  ``prev = t-1`` for every i). It still adds into the ``dU, dV, dW`` given and returns
  ``(dU, dW, dV)``.
- ``sgd_step`` is ``gd_step`` (the printed ``train`` calls ``sgd_step``, which it never
  defines).
- ``train`` takes ``bptt_truncate`` as a keyword (default 2, the tutorial's; printed: a
  global), runs the forward pass every epoch (printed: only on the epochs it prints the loss,
  so the other epochs backpropagated through the previous epoch's memory) and zeroes ``dU, dW,
  dV`` before each epoch's ``rnn_backprop`` (printed: they were passed back in, so every step
  used the sum of all gradients so far instead of the current one: the text calls it gradient
  descent). ``output_mapper`` may also be a sequence of the targets instead of a dict.

Inside: ``full_forward_prop`` (and ``Rnn_forward``, with T = 1) is one serial compiled call
over the sequence that writes every quantity of ``memory`` into a few contiguous buffers; the
``memory`` entries are views of them. ``rnn_backprop`` is one serial compiled call: the
matrix-vector products of every window are hand loops over the weights in their own layout (no
BLAS call, no copy), the weight gradients are accumulated over all steps at the end. When
``memory`` is the one ``full_forward_prop`` returned and its entries are still the same objects
(edits in place are seen), ``rnn_backprop`` reads those buffers; any other dict is gathered.
float32 and float64 are both supported (float64, the tutorial's, is what is checked to 1e-10).
The compiled loops are in ``fastrnn/compat/_rnn_from_scratch_kernels.py``.
"""

import sys
from datetime import datetime
from typing import Any, Dict, List, Mapping, Sequence, Tuple, Union

import numpy as np

from . import _rnn_from_scratch_kernels as _kernels

__all__ = ["tanh_activation", "softmax_activation", "Rnn_forward", "full_forward_prop",
           "calculate_loss", "delta_cross_entropy", "multiplication_backward", "add_backward",
           "tanh_activation_backward", "single_backprop", "rnn_backprop", "gd_step", "sgd_step",
           "train", "lookback_to_truncate"]


def lookback_to_truncate(bptt_truncate: int) -> int:
    """fastrnn's ``truncate=k`` for the tutorial's ``bptt_truncate``: ``max(bptt_truncate - 1,
    0)`` (the look-back range ``range(t-1, max(-1, t-bptt_truncate), -1)`` has that many
    steps once t is large enough)."""
    return max(int(bptt_truncate) - 1, 0)


# ================================================================ checks and gathering


def _float_dtype(*arrays):
    dtype = np.result_type(*arrays)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _weights(func, input_weights, internal_state_weights, output_weights):
    """-> U, W, V (C-contiguous, one float dtype), H, D, O, dtype. Copies only when a weight is
    not already a C-contiguous array of that dtype (the tutorial's arrays never are copied)."""
    U, W, V = input_weights, internal_state_weights, output_weights
    if not (type(U) is type(W) is type(V) is np.ndarray and U.dtype == W.dtype == V.dtype
            and U.dtype in _FLOATS):
        U, W, V = (np.asarray(a) for a in (U, W, V))
        dtype = _float_dtype(U, W, V)
        U, W, V = (a.astype(dtype, copy=False) for a in (U, W, V))
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise ValueError(f"{func}: internal_state_weights must have shape (hidden_dim, "
                         f"hidden_dim), got {W.shape}")
    H = W.shape[0]
    if U.ndim != 2 or U.shape[0] != H or U.shape[1] == 0:
        raise ValueError(f"{func}: input_weights must have shape (hidden_dim, D) = ({H}, D) "
                         f"(hidden_dim from internal_state_weights), got {U.shape}")
    if V.ndim != 2 or V.shape[1] != H or V.shape[0] == 0:
        raise ValueError(f"{func}: output_weights must have shape (output_dim, hidden_dim) = "
                         f"(output_dim, {H}), got {V.shape}")
    if not (U.flags.c_contiguous and W.flags.c_contiguous and V.flags.c_contiguous):
        U, W, V = (np.ascontiguousarray(a) for a in (U, W, V))
    return U, W, V, H, U.shape[1], V.shape[0], U.dtype


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _column(func, name, a, n, dtype):
    """One of the tutorial's column vectors (n, 1) (or (n,)) -> a 1-D view/copy of n values."""
    a = np.asarray(a)
    if a.size != n or a.ndim > 2 or (a.ndim == 2 and a.shape[1] != 1):
        raise ValueError(f"{func}: {name} must be a column vector of shape ({n}, 1), got "
                         f"shape {a.shape}")
    return a.astype(dtype, copy=False).reshape(n)


def _stack(func, name, vectors, T, n, dtype):
    """The first T of a sequence of column vectors (n, 1) -> a C-contiguous (T, n) array: one
    ``np.array`` call when they are well formed, else vector by vector (naming a bad one)."""
    if len(vectors) < T:
        raise ValueError(f"{func}: {name} has {len(vectors)} vectors, fewer than the {T} "
                         "steps")
    try:
        out = np.array(vectors[:T], dtype)
    except (ValueError, TypeError):
        out = None
    if out is not None and out.shape[:2] == (T, n) and out.size == T * n and out.ndim <= 3:
        return out.reshape(T, n)
    out = np.empty((T, n), dtype)
    for t in range(T):
        out[t] = _column(func, f"{name}[{t}]", vectors[t], n, dtype)
    return out


def _dtype_of(vectors, T):
    """dtype of the first vector (float64 for lists of numbers or none)."""
    v = vectors[0] if T and len(vectors) else None
    return v.dtype if isinstance(v, np.ndarray) else _FLOATS[1]


# ================================================================ memory


class _Memory(dict):
    """The tutorial's ``memory`` dict; its arrays are views of the buffers the compiled forward
    wrote (``_bufs``), which ``rnn_backprop`` reads directly while the entries it reads are
    still those views (edits in place are seen, replaced entries are gathered)."""

    __slots__ = ("_T", "_bufs", "_views")

    def _buffers(self):
        """-> (hs, S, Y) as (T(+1), n, 1) arrays if every entry rnn_backprop reads is still the
        forward's own view."""
        T = self._T
        hv, yv, sv = self._views
        kh, ky, kp = _keys(T)
        get = self.get
        if get("ht-1") is not hv[0]:
            return None
        for t in range(T):
            if get(kh[t]) is not hv[t + 1] or get(ky[t]) is not yv[t]:
                return None
            p = get(kp[t])
            try:
                if p[0][2] is not sv[t]:
                    return None
            except (TypeError, IndexError, KeyError):
                return None
        return self._bufs


_KEYS = {}


def _keys(T):
    """The memory keys of T steps: ("ht0", ..), ("yt0", ..), ("params0", ..) (cached)."""
    k = _KEYS.get(T)
    if k is None:
        k = _KEYS[T] = tuple(tuple(f"{p}{t}" for t in range(T)) for p in ("ht", "yt", "params"))
    return k


def _run_forward(func, T, embeddings, U, W, V, prev_memory):
    """-> (outputs, memory) of the tutorial's forward over T steps."""
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 0:
        raise ValueError(f"{func}: T must be an int >= 0 (the number of steps), got {T!r}")
    T = int(T)
    U, W, V, H, D, O, dtype = _weights(func, U, W, V)
    de, dp = _dtype_of(embeddings, T), getattr(prev_memory, "dtype", dtype)
    if not de == dp == dtype:
        dtype = _float_dtype(dtype, de, dp)
        U, W, V = (a.astype(dtype, copy=False) for a in (U, W, V))
    X = _stack(func, "embeddings", embeddings, T, D, dtype)           # (T, D)
    hs3 = np.empty((T + 1, H, 1), dtype)                               # h[-1], h[0..T-1]
    Wf3, Uf3, S3 = (np.empty((T, H, 1), dtype) for _ in range(3))      # W h, U x, sum
    Z3, Y3 = np.empty((T, O, 1), dtype), np.empty((T, O, 1), dtype)    # V h, softmax
    _kernels.forward(X, U, W, V, _column(func, "prev_memory", prev_memory, H, dtype),
                    hs3, Wf3, Uf3, S3, Z3, Y3)
    # the tutorial's (n, 1) vectors: views of the rows
    hv = [hs3[t] for t in range(T + 1)]
    yv = [Y3[t] for t in range(T)]
    sv = [S3[t] for t in range(T)]
    kh, ky, kp = _keys(T)
    memory = _Memory(zip(kh, hv[1:]))
    memory["ht-1"] = hv[0]
    memory.update(zip(ky, yv))
    memory.update(zip(kp, [[[Wf3[t], Uf3[t], sv[t], Z3[t]]] for t in range(T)]))
    memory._T = T
    memory._bufs = (hs3, S3, Y3)
    memory._views = (hv, yv, sv)
    return yv, memory


# ================================================================ the tutorial's functions


def tanh_activation(Z: np.ndarray) -> np.ndarray:
    """tanh(Z) (``np.tanh``: the printed exponential formula overflows for |Z| > ~710)."""
    return np.tanh(Z)


def softmax_activation(Z: np.ndarray) -> np.ndarray:
    """softmax of a column vector: exp(Z - max(Z)) / sum over axis 0."""
    e_x = np.exp(Z - np.max(Z))
    return e_x / e_x.sum(axis=0)


def Rnn_forward(input_embedding: np.ndarray, input_weights: np.ndarray,
                internal_state_weights: np.ndarray, prev_memory: np.ndarray,
                output_weights: np.ndarray
                ) -> Tuple[np.ndarray, np.ndarray, List[List[np.ndarray]]]:
    """One step -> ht_activated (H, 1), yt_activated (O, 1), forward_params =
    [[W_frd, U_frd, sum_s, yt_unactivated]]."""
    outputs, memory = _run_forward("Rnn_forward", 1, [input_embedding], input_weights,
                                   internal_state_weights, output_weights, prev_memory)
    return memory["ht0"], memory["yt0"], memory["params0"]


def full_forward_prop(T: int, embeddings: Sequence[np.ndarray], input_weights: np.ndarray,
                      internal_state_weights: np.ndarray, prev_memory: np.ndarray,
                      output_weights: np.ndarray) -> Tuple[List[np.ndarray], Dict[str, Any]]:
    """The tutorial's loop over ``Rnn_forward`` for T steps from ``prev_memory`` -> (list of
    the T predictions (O, 1), memory dict with "ht{t}", "yt{t}", "params{t}" and "ht-1")."""
    return _run_forward("full_forward_prop", T, embeddings, input_weights,
                        internal_state_weights, output_weights, prev_memory)


def calculate_loss(output_mapper: Union[Mapping[Any, np.ndarray], Sequence[np.ndarray]],
                   predicted_output: Sequence[np.ndarray]) -> float:
    """The printed loss: per step -sum(y * log2(y_hat)) / len(y), averaged over the steps
    (``output_mapper.values()`` are the targets; a sequence of targets is accepted too)."""
    targets = output_mapper.values() if hasattr(output_mapper, "values") else output_mapper
    total_loss = 0.0
    for y, y_ in zip(targets, predicted_output):
        y = np.asarray(y)
        n = len(y)
        y_ = np.asarray(y_)
        loss = -np.sum(y.reshape(n, -1)[:, 0] * np.log2(y_.reshape(len(y_), -1)[:n, 0]))
        total_loss = total_loss + loss / float(n)
    return float(total_loss / float(len(predicted_output)))


def delta_cross_entropy(predicted_output: np.ndarray, original_t_output: np.ndarray) -> np.ndarray:
    """dLoss/dy_unactivated: a copy of ``predicted_output`` with 1 subtracted where the target
    is 1 (``y_hat - y`` for a one-hot y). The argument is not changed."""
    p = np.asarray(predicted_output)
    grad = p.astype(p.dtype if np.issubdtype(p.dtype, np.floating) else np.float64)  # a copy
    mask = np.asarray(original_t_output) == 1
    grad[mask.reshape(grad.shape)] -= 1
    return grad


def multiplication_backward(weights: np.ndarray, x: np.ndarray, dz: np.ndarray
                            ) -> Tuple[np.ndarray, np.ndarray]:
    """Back through z = weights @ x -> (dz @ x^T, weights^T @ dz)."""
    gradient_weight = np.dot(dz, np.transpose(x))
    chain_gradient = np.dot(np.transpose(weights), dz)
    return gradient_weight, chain_gradient


def add_backward(x1: np.ndarray, x2: np.ndarray, dz: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Back through x1 + x2 -> (dz, dz) shaped as x1, x2."""
    dx1 = dz * np.ones_like(x1)
    dx2 = dz * np.ones_like(x2)
    return dx1, dx2


def tanh_activation_backward(x: np.ndarray, top_diff: np.ndarray) -> np.ndarray:
    """Back through tanh at the pre-activation x."""
    output = np.tanh(x)
    return (1.0 - np.square(output)) * top_diff


def single_backprop(X: np.ndarray, input_weights: np.ndarray,
                    internal_state_weights: np.ndarray, output_weights: np.ndarray,
                    ht_activated: np.ndarray, dLo: np.ndarray,
                    forward_params_t: Sequence[Sequence[np.ndarray]], diff_s: np.ndarray,
                    prev_s: np.ndarray
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One step back -> (dprev_s, dU, dW, dV), as printed."""
    W_frd = forward_params_t[0][0]
    U_frd = forward_params_t[0][1]
    ht_unactivated = forward_params_t[0][2]
    dV, dsv = multiplication_backward(output_weights, ht_activated, dLo)
    ds = np.add(dsv, diff_s)  # used for truncation of memory
    dadd = tanh_activation_backward(ht_unactivated, ds)
    dmulw, dmulu = add_backward(U_frd, W_frd, dadd)
    dW, dprev_s = multiplication_backward(internal_state_weights, prev_s, dmulw)
    dU, dx = multiplication_backward(input_weights, X, dmulu)  # input weights
    return (dprev_s, dU, dW, dV)


def _memory_steps(memory):
    if type(memory) is _Memory:
        return memory._T
    T = 0
    while f"yt{T}" in memory:
        T += 1
    return T


def _gather_memory(func, memory, T, H, O, dtype):
    """-> hs (T+1, H), S (T, H), Y (T, O) from any memory dict."""
    try:
        prev = memory.get("ht-1")
        hs = np.empty((T + 1, H), dtype)
        hs[0] = 0 if prev is None else _column(func, 'memory["ht-1"]', prev, H, dtype)
        for t in range(T):
            hs[t + 1] = _column(func, f'memory["ht{t}"]', memory[f"ht{t}"], H, dtype)
        S = np.empty((T, H), dtype)
        for t in range(T):
            S[t] = _column(func, f'memory["params{t}"][0][2]', memory[f"params{t}"][0][2], H,
                           dtype)
        Y = _stack(func, "memory yt", [memory[f"yt{t}"] for t in range(T)], T, O, dtype)
    except KeyError as e:
        raise ValueError(f"{func}: memory has no entry {e}; pass the memory full_forward_prop "
                         "returned") from None
    return hs, S, Y


def rnn_backprop(embeddings: Sequence[np.ndarray], memory: Mapping[str, Any],
                 output_t: Sequence[np.ndarray], dU: np.ndarray, dV: np.ndarray,
                 dW: np.ndarray, bptt_truncate: int, input_weights: np.ndarray,
                 output_weights: np.ndarray, internal_state_weights: np.ndarray
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adds the truncated-BPTT gradients of the summed cross-entropy of the sequence in
    ``memory`` to dU, dV, dW (in place) and returns ``(dU, dW, dV)``."""
    f = "rnn_backprop"
    U, W, V, H, D, O, dtype = _weights(f, input_weights, internal_state_weights, output_weights)
    T = _memory_steps(memory) if hasattr(memory, "get") else 0
    de = _dtype_of(embeddings, T)
    if de != dtype:
        dtype = _float_dtype(dtype, de)
        U, W, V = (a.astype(dtype, copy=False) for a in (U, W, V))
    if isinstance(bptt_truncate, bool) or not isinstance(bptt_truncate, (int, np.integer)):
        raise TypeError(f"{f}: bptt_truncate must be an int, got {bptt_truncate!r}")
    if not hasattr(memory, "get"):
        raise TypeError(f"{f}: memory must be the dict full_forward_prop returned, got "
                        f"{type(memory).__name__}")
    bufs = memory._buffers() if type(memory) is _Memory else None
    if bufs is not None and bufs[0].dtype == dtype:
        hs, S, Y = (a.reshape(a.shape[:2]) for a in bufs)
    else:
        hs, S, Y = _gather_memory(f, memory, T, H, O, dtype)
    X = _stack(f, "embeddings", embeddings, T, D, dtype)               # (T, D)
    tgt = _stack(f, "output_t", output_t, T, O, dtype)                  # (T, O)
    grads = []
    for name, g, shape in (("dU", dU, U.shape), ("dW", dW, W.shape), ("dV", dV, V.shape)):
        if not isinstance(g, np.ndarray) or g.shape != shape:
            raise ValueError(f"{f}: {name} must be an array of shape {shape} (that of its "
                             f"weight), got {getattr(g, 'shape', type(g).__name__)}")
        direct = g.dtype == dtype and g.flags.c_contiguous and g.flags.writeable
        grads.append(g if direct else np.zeros(shape, dtype))
    _kernels.backprop(X, hs, S, Y, tgt, W, V, lookback_to_truncate(bptt_truncate), *grads)
    for g, acc in zip((dU, dW, dV), grads):
        if acc is not g:
            g += acc
    return (dU, dW, dV)


def gd_step(learning_rate: float, dU: np.ndarray, dW: np.ndarray, dV: np.ndarray,
            input_weights: np.ndarray, internal_state_weights: np.ndarray,
            output_weights: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """weights -= learning_rate * gradient, in place; returns the three weights."""
    input_weights -= learning_rate * dU
    internal_state_weights -= learning_rate * dW
    output_weights -= learning_rate * dV
    return input_weights, internal_state_weights, output_weights


sgd_step = gd_step      # the name the printed train calls


def train(T: int, embeddings: Sequence[np.ndarray], output_t: Sequence[np.ndarray],
          output_mapper: Union[Mapping[Any, np.ndarray], Sequence[np.ndarray]],
          input_weights: np.ndarray, internal_state_weights: np.ndarray,
          output_weights: np.ndarray, dU: np.ndarray, dW: np.ndarray, dV: np.ndarray,
          prev_memory: np.ndarray, learning_rate: float = 0.001, nepoch: int = 100,
          evaluate_loss_after: int = 2, bptt_truncate: int = 2) -> List[float]:
    """The tutorial's training loop: one forward, backprop and gradient step per epoch on the
    one sequence; every ``evaluate_loss_after`` epochs the loss is printed and kept. The
    weights are updated in place; returns the list of losses."""
    losses = []
    for epoch in range(nepoch):
        output_string, memory = full_forward_prop(T, embeddings, input_weights,
                                                  internal_state_weights, prev_memory,
                                                  output_weights)
        if epoch % evaluate_loss_after == 0:
            loss = calculate_loss(output_mapper, output_string)
            losses.append(loss)
            time = datetime.now().strftime('%Y-%m-%d %H:%M:%S')
            print("%s: Loss after epoch=%d: %f" % (time, epoch, loss))
            sys.stdout.flush()
        for g in (dU, dW, dV):
            g[...] = 0
        dU, dW, dV = rnn_backprop(embeddings, memory, output_t, dU, dV, dW, bptt_truncate,
                                  input_weights, output_weights, internal_state_weights)
        input_weights, internal_state_weights, output_weights = sgd_step(
            learning_rate, dU, dW, dV, input_weights, internal_state_weights, output_weights)
    return losses
