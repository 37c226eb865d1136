"""The "U, V, W" word-level RNN of the classic NumPy RNN tutorial (WildML, "Recurrent Neural
Networks Tutorial", parts 2 and 3) on fastrnn kernels: the class ``RNNNumpy`` with the same
methods, arguments, shapes, return values and numbers.

    s[t] = tanh(U[:, x[t]] + W @ s[t-1])        U (hidden_dim, word_dim), W (hidden_dim,)^2
    o[t] = softmax(V @ s[t])                     V (word_dim, hidden_dim)
    loss = sum_t -log o[t][y[t]]

``forward_propagation(x)`` returns ``[o, s]`` with ``o (T, word_dim)`` and ``s (T+1,
hidden_dim)`` whose last row ``s[-1]`` is the zero initial state (the tutorial indexes
``s[t-1]`` with ``t = 0``). ``bptt(x, y)`` returns ``[dLdU, dLdV, dLdW]``, the gradients of the
sentence's summed loss with the tutorial's truncation: the loss at step t is backpropagated
through steps ``t - bptt_truncate .. t`` only (``fastrnn``'s ``truncate=bptt_truncate``).

Inside, the columns ``U[:, x[t]]`` are gathered as the projected inputs (no one-hot vectors),
the recurrence and its truncated backward run in ``fastrnn.kernels.rnn_forward_proj`` /
``rnn_backward_proj``; in ``bptt`` the output layer (scores, softmax, ``dLdV`` and the gradient
reaching the states) is one compiled call over all steps that reads V twice, split over the
kernels' threads by rows of V (the original does a (word_dim, hidden_dim) outer product per
step), and ``dLdU`` is a scatter-add of the input gradients into the touched columns. ``dLdU``
is returned as the transpose of a C-ordered ``(word_dim, hidden_dim)`` array (an F-ordered
``(hidden_dim, word_dim)`` array with the original's values): writing it column by column
would touch every page of the 6 MB array for a 20-word sentence. ``sgd_step`` updates only the
columns of ``U`` the sentence touched, which gives exactly the original's result (the other
columns of ``dLdU`` are 0). The two word_dim-sized gradients are written into the arrays the
previous call returned when the caller no longer holds them (``_reuse``): a new 6 MB array
costs ~1,600 page faults on first touch, 2-5 ms here, as long as the whole computation.
"""

import operator
import sys
from datetime import datetime
from typing import List, Sequence, Tuple

import numba
import numpy as np

from .. import kernels as K
from .._jit import blas_single_threaded, njit, prange
from ..kernels import exp, fmax, gemm_packed, pack_panels_T
from ..kernels.linalg import linear_rows, scatter_add
from . import _token_ids

__all__ = ["RNNNumpy", "softmax", "train_with_sgd", "numpy_sdg_step"]


def _reuse(held, shape, dtype):
    """The arrays of the tuple ``held`` (the gradients a previous call returned, and kept by
    the model) if nothing else refers to them any more (the caller dropped them, and no view of
    them lives), their shape and dtype being ``shape`` and ``dtype``; else None. A reference
    count of 2 is the tuple's own reference plus ``getrefcount``'s argument (no local name may
    hold them while counting)."""
    if held is None or sys.getrefcount(held[0]) != 2 or sys.getrefcount(held[1]) != 2:
        return None
    if held[0].shape != shape or held[0].dtype != dtype:
        return None
    return held


def softmax(x: np.ndarray) -> np.ndarray:
    """The tutorial's softmax of a vector: exp(x - max(x)) / sum."""
    xt = np.exp(x - np.max(x))
    return xt / np.sum(xt)


@njit(parallel=True)
def _output_grads(s, V, tgt, P, dLdV):
    """The output layer's share of bptt, all steps at once, in P blocks of rows of V shared
    out over the threads (each block's rows of V are read twice, by one thread; the two
    products with s on the micro-GEMM, ~1.3x faster than BLAS with K or N = T this small):
    s (T, H) states, V (Vd, H), tgt (T,) -> dLdV (Vd, H) = delta_o^T s (written into the
    array given) and ds (T, H) = delta_o V, for delta_o = softmax(s V^T) - onehot(tgt) row by
    row (the tutorial's o - y). Each block keeps its own maxima and sums of the softmax; they
    are combined in block order, so the result does not depend on scheduling. 1 <= P <= Vd.
    (Outside the two prange loops only explicit loops: numba would make any array expression
    a parallel region of its own.)"""
    T, H = s.shape
    Vd = V.shape[0]
    sT = np.empty((H, T), s.dtype)                          # (H, T)
    for t in range(T):
        for k in range(H):
            sT[k, t] = s[t, k]
    sTp = pack_panels_T(s)                                  # the micro-GEMM's s^T
    sp = pack_panels_T(sT)                                  # and s
    eT = np.empty((Vd, T), s.dtype)                         # scores^T, exp, then delta_o^T
    mloc = np.empty((P, T), s.dtype)                        # each block's maxima over v
    sloc = np.empty((P, T), s.dtype)                        # and sums of exp(score - max)
    for j in prange(P):
        lo, hi = j * Vd // P, (j + 1) * Vd // P
        blk = eT[lo:hi]                                     # (hi - lo, T)
        gemm_packed(V[lo:hi], sTp, blk)                     # scores[:, lo:hi]^T
        m = mloc[j]
        sm = sloc[j]
        for t in range(T):
            m[t] = blk[0, t]
            sm[t] = 0.0
        for v in range(1, hi - lo):
            r = blk[v]
            for t in range(T):
                m[t] = fmax(m[t], r[t])
        for v in range(hi - lo):
            r = blk[v]
            for t in range(T):
                e = exp(r[t] - m[t])
                r[t] = e
                sm[t] += e
    scale = np.empty((P, T), s.dtype)                       # block j's exp -> softmax
    for t in range(T):
        mx = mloc[0, t]                                     # the row maximum
        for j in range(1, P):
            mx = fmax(mx, mloc[j, t])
        total = 0.0                                         # sum of exp(score - mx)
        for j in range(P):
            scale[j, t] = exp(mloc[j, t] - mx)
            total += sloc[j, t] * scale[j, t]
        for j in range(P):
            scale[j, t] /= total
    dsp = np.empty((P, T, H), s.dtype)                      # each block's part of ds
    for j in prange(P):
        lo, hi = j * Vd // P, (j + 1) * Vd // P
        blk = eT[lo:hi]
        sc = scale[j]
        for v in range(hi - lo):
            r = blk[v]
            for t in range(T):
                r[t] *= sc[t]
        for t in range(T):                                  # o - onehot(y)
            if lo <= tgt[t] < hi:
                blk[tgt[t] - lo, t] -= 1.0
        gemm_packed(blk, sp, dLdV[lo:hi])                   # delta_o^T s
        np.dot(blk.T, V[lo:hi], dsp[j])                     # delta_o V over these rows
    ds = np.empty((T, H), s.dtype)
    for t in range(T):
        for k in range(H):
            acc = dsp[0, t, k]
            for j in range(1, P):
                acc += dsp[j, t, k]
            ds[t, k] = acc
    return ds


class RNNNumpy:
    """The tutorial's RNN. The weights are drawn from NumPy's global random state in the
    original's order (U, V, W), so ``np.random.seed(10)`` first gives the tutorial's model."""

    def __init__(self, word_dim: int, hidden_dim: int = 100, bptt_truncate: int = 4) -> None:
        # Assign instance variables
        self.word_dim = word_dim
        self.hidden_dim = hidden_dim
        self.bptt_truncate = bptt_truncate
        # Randomly initialize the network parameters
        self.U = np.random.uniform(-np.sqrt(1. / word_dim), np.sqrt(1. / word_dim),
                                   (hidden_dim, word_dim))
        self.V = np.random.uniform(-np.sqrt(1. / hidden_dim), np.sqrt(1. / hidden_dim),
                                   (word_dim, hidden_dim))
        self.W = np.random.uniform(-np.sqrt(1. / hidden_dim), np.sqrt(1. / hidden_dim),
                                   (hidden_dim, hidden_dim))

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_held", None)                        # scratch for bptt, not the model
        return state

    # ------------------------------------------------------------ shared pieces

    def _check_params(self, func):
        Hd, Vd = self.hidden_dim, self.word_dim
        for name, shape, layout in (("U", (Hd, Vd), "(hidden_dim, word_dim)"),
                                    ("V", (Vd, Hd), "(word_dim, hidden_dim)"),
                                    ("W", (Hd, Hd), "(hidden_dim, hidden_dim)")):
            a = getattr(self, name)
            if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
                raise TypeError(f"{func}: self.{name} must be a float32/float64 numpy array, "
                                f"got {getattr(a, 'dtype', type(a).__name__)}")
            if a.shape != shape:
                raise ValueError(f"{func}: self.{name} must have shape {layout} = {shape}, "
                                 f"got {a.shape}")
        if not self.U.dtype == self.V.dtype == self.W.dtype:
            raise TypeError(f"{func}: U, V and W must share one dtype, got {self.U.dtype}, "
                            f"{self.V.dtype}, {self.W.dtype}")

    def _forward(self, x, func, scores=True):
        """-> ids (T,), states hs (T, 1, H), scores (T, word_dim) = V @ s[t] (None unless
        ``scores``), kernel cache."""
        self._check_params(func)
        ids = _token_ids("x", x, self.word_dim, func=func)           # (T,)
        T, H = ids.shape[0], self.hidden_dim
        if T == 0:
            return ids, None, None, None
        dtype = self.U.dtype
        xw = self.U.T[ids].reshape(T, 1, H)                           # (T, 1, H) = U[:, x[t]]
        with blas_single_threaded():
            hs, cache = K.rnn_forward_proj(xw, np.zeros((1, H), dtype), self.W,
                                           np.zeros(H, dtype))        # (T, 1, H)
            if not scores:
                return ids, hs, None, cache
            scores = np.empty((T, self.word_dim), dtype)              # (T, word_dim)
            linear_rows(hs.reshape(T, H), self.V.T, np.zeros(self.word_dim, dtype), scores,
                        numba.get_num_threads())                      # s @ V.T
        return ids, hs, scores, cache

    def _targets(self, y, T, func):
        tgt = _token_ids("y", y, self.word_dim, func=func)
        if tgt.shape[0] != T:
            raise ValueError(f"{func}: x and y must have the same length, got {T} and "
                             f"{tgt.shape[0]}")
        return tgt

    def _sentence_loss(self, x, y, func):
        ids, _, scores, _ = self._forward(x, func)
        T = ids.shape[0]
        tgt = self._targets(y, T, func)
        if T == 0:
            return 0.0
        loss, _ = K.softmax_cross_entropy(scores.reshape(T, 1, -1), tgt.reshape(T, 1))
        return loss * T                                               # mean -> sum over t

    def _bptt(self, x, y):
        """-> ids, dLdU^T (word_dim, hidden_dim) C-ordered, dLdV, dLdW.

        The output layer (scores, softmax, dLdV and its gradient reaching the states) is one
        compiled call over all steps, split over the kernels' threads by rows of V
        (``_output_grads``: single-threaded BLAS in each thread, so NumPy's own BLAS threads
        never compete with the kernels' for the cores); the recurrence's truncated backward
        is ``rnn_backward_proj``."""
        f = "bptt"
        ids, hs, _, cache = self._forward(x, f, scores=False)
        T, H, Vd = ids.shape[0], self.hidden_dim, self.word_dim
        tgt = self._targets(y, T, f)
        dtype = self.U.dtype
        if T == 0:
            return ids, np.zeros((Vd, H), dtype), np.zeros((Vd, H), dtype), \
                np.zeros((H, H), dtype)
        held = _reuse(self.__dict__.pop("_held", None), (Vd, H), dtype)
        if held is None:
            dUT, dLdV = np.zeros((Vd, H), dtype), np.empty((Vd, H), dtype)
        else:
            dUT, dLdV, touched = held
            dUT[touched] = 0                                          # the rest is still 0
        V = np.ascontiguousarray(self.V)
        blocks = min(max(4, numba.get_num_threads()), Vd)  # 4 on 2 threads: up to 1.2x faster
        with blas_single_threaded():
            ds = _output_grads(hs.reshape(T, H), V, tgt, blocks, dLdV)   # (T, H)
            dxw, _, dLdW, _ = K.rnn_backward_proj(ds.reshape(T, 1, H), cache,
                                                  truncate=self.bptt_truncate)
        scatter_add(ids, dxw, dUT)                                    # dLdU[:, x[t]] += ...
        self._held = (dUT, dLdV, ids)
        return ids, dUT, dLdV, dLdW

    # ------------------------------------------------------------ the tutorial's API

    def forward_propagation(self, x: Sequence[int]) -> List[np.ndarray]:
        """x: list of word ids (T,) -> [o (T, word_dim), s (T+1, hidden_dim)]; s[-1] = 0 is
        the initial state."""
        ids, hs, scores, _ = self._forward(x, "forward_propagation")
        T, H = ids.shape[0], self.hidden_dim
        dtype = self.U.dtype
        s = np.zeros((T + 1, H), dtype)                               # (T+1, H)
        if T == 0:
            return [np.zeros((0, self.word_dim), dtype), s]
        s[:T] = hs.reshape(T, H)
        o = np.exp(scores - scores.max(axis=1, keepdims=True))        # (T, word_dim)
        o /= o.sum(axis=1, keepdims=True)
        return [o, s]

    def predict(self, x: Sequence[int]) -> np.ndarray:
        """Index of the highest score at every step."""
        o, s = self.forward_propagation(x)
        return np.argmax(o, axis=1)

    def calculate_total_loss(self, x: Sequence[Sequence[int]], y: Sequence[Sequence[int]]
                             ) -> float:
        """Summed cross-entropy over all sentences x[i], y[i]."""
        L = 0.0
        for i in range(len(y)):
            L += self._sentence_loss(x[i], y[i], "calculate_total_loss")
        return L

    def calculate_loss(self, x: Sequence[Sequence[int]], y: Sequence[Sequence[int]]) -> float:
        """The total loss divided by the number of words."""
        N = sum(len(y_i) for y_i in y)
        return self.calculate_total_loss(x, y) / N

    def bptt(self, x: Sequence[int], y: Sequence[int]) -> List[np.ndarray]:
        """-> [dLdU, dLdV, dLdW] of the sentence's summed loss, truncated at bptt_truncate."""
        _, dUT, dLdV, dLdW = self._bptt(x, y)
        return [dUT.T, dLdV, dLdW]

    def sgd_step(self, x: Sequence[int], y: Sequence[int], learning_rate: float) -> None:
        """One step of SGD on the sentence: param -= learning_rate * dparam."""
        if type(self).bptt is not RNNNumpy.bptt:        # a subclass's own bptt: dense update
            dLdU, dLdV, dLdW = self.bptt(x, y)
            self.U -= learning_rate * dLdU
            self.V -= learning_rate * dLdV
            self.W -= learning_rate * dLdW
            return
        ids, dUT, dLdV, dLdW = self._bptt(x, y)
        cols = np.unique(ids)                           # dLdU is zero outside these columns
        self.U[:, cols] -= learning_rate * dUT[cols].T
        self.V -= learning_rate * dLdV
        self.W -= learning_rate * dLdW

    def gradient_check(self, x: Sequence[int], y: Sequence[int], h: float = 0.001,
                       error_threshold: float = 0.01) -> None:
        """The tutorial's check of bptt against central differences of calculate_total_loss,
        element by element, with its printout. Use a small model (word_dim 100 or so) and
        bptt_truncate >= len(x): the differences see the untruncated loss."""
        # Calculate the gradients using backpropagation. We want to check if these are correct.
        bptt_gradients = self.bptt(x, y)
        # List of all parameters we want to check.
        model_parameters = ['U', 'V', 'W']
        # Gradient check for each parameter
        for pidx, pname in enumerate(model_parameters):
            # Get the actual parameter value from the mode, e.g. model.W
            parameter = operator.attrgetter(pname)(self)
            print("Performing gradient check for parameter %s with size %d." % (
                pname, np.prod(parameter.shape)))
            # Iterate over each element of the parameter matrix, e.g. (0,0), (0,1), ...
            it = np.nditer(parameter, flags=['multi_index'], op_flags=['readwrite'])
            while not it.finished:
                ix = it.multi_index
                # Save the original value so we can reset it later
                original_value = parameter[ix]
                # Estimate the gradient using (f(x+h) - f(x-h))/(2*h)
                parameter[ix] = original_value + h
                gradplus = self.calculate_total_loss([x], [y])
                parameter[ix] = original_value - h
                gradminus = self.calculate_total_loss([x], [y])
                estimated_gradient = (gradplus - gradminus) / (2 * h)
                # Reset parameter to original value
                parameter[ix] = original_value
                # The gradient for this parameter calculated using backpropagation
                backprop_gradient = bptt_gradients[pidx][ix]
                # calculate The relative error: (|x - y|/(|x| + |y|))
                with np.errstate(invalid="ignore"):     # 0/0 (an unused word) is nan: passes
                    relative_error = np.abs(backprop_gradient - estimated_gradient) / (
                        np.abs(backprop_gradient) + np.abs(estimated_gradient))
                # If the error is to large fail the gradient check
                if relative_error > error_threshold:
                    print("Gradient Check ERROR: parameter=%s ix=%s" % (pname, ix))
                    print("+h Loss: %f" % gradplus)
                    print("-h Loss: %f" % gradminus)
                    print("Estimated_gradient: %f" % estimated_gradient)
                    print("Backpropagation gradient: %f" % backprop_gradient)
                    print("Relative Error: %f" % relative_error)
                    return
                it.iternext()
            print("Gradient check for parameter %s passed." % (pname))

    def train_with_sgd(self, X_train: Sequence[Sequence[int]], y_train: Sequence[Sequence[int]],
                       learning_rate: float = 0.005, nepoch: int = 100,
                       evaluate_loss_after: int = 5) -> List[Tuple[int, float]]:
        """The tutorial's outer SGD loop (``train_with_sgd(model, ...)``) as a method."""
        return train_with_sgd(self, X_train, y_train, learning_rate, nepoch,
                              evaluate_loss_after)


numpy_sdg_step = RNNNumpy.sgd_step      # the tutorial's name for it


def train_with_sgd(model: RNNNumpy, X_train: Sequence[Sequence[int]],
                   y_train: Sequence[Sequence[int]], learning_rate: float = 0.005,
                   nepoch: int = 100, evaluate_loss_after: int = 5) -> List[Tuple[int, float]]:
    """The tutorial's outer SGD loop: every ``evaluate_loss_after`` epochs print the loss and
    halve the learning rate if it went up; one ``sgd_step`` per sentence. Returns the list of
    (num_examples_seen, loss) pairs (the original keeps it in a local)."""
    # We keep track of the losses so we can plot them later
    losses = []
    num_examples_seen = 0
    for epoch in range(nepoch):
        # Optionally evaluate the loss
        if (epoch % evaluate_loss_after == 0):
            loss = model.calculate_loss(X_train, y_train)
            losses.append((num_examples_seen, loss))
            time = datetime.now().strftime('%Y-%m-%d %H:%M:%S')
            print("%s: Loss after num_examples_seen=%d epoch=%d: %f" % (
                time, num_examples_seen, epoch, loss))
            # Adjust the learning rate if loss increases
            if (len(losses) > 1 and losses[-1][1] > losses[-2][1]):
                learning_rate = learning_rate * 0.5
                print("Setting learning rate to %f" % learning_rate)
            sys.stdout.flush()
        # For each training example...
        for i in range(len(y_train)):
            # One SGD step
            model.sgd_step(X_train[i], y_train[i], learning_rate)
            num_examples_seen += 1
    return losses
