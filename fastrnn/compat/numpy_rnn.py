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
``rnn_backward_proj``, the output layer, softmax and ``dLdV`` are one product / one kernel call
over all steps (the original does a (word_dim, hidden_dim) outer product per step), and
``dLdU`` is a scatter-add of the input gradients into the touched columns. ``dLdU`` is returned
as the transpose of a C-ordered ``(word_dim, hidden_dim)`` array (an F-ordered
``(hidden_dim, word_dim)`` array with the original's values): writing it column by column
would touch every page of the 6 MB array for a 20-word sentence. ``sgd_step`` updates only the
columns of ``U`` the sentence touched, which gives exactly the original's result (the other
columns of ``dLdU`` are 0).
"""

import operator
import sys
from datetime import datetime
from typing import List, Sequence, Tuple

import numba
import numpy as np

from .. import kernels as K
from .._jit import blas_single_threaded
from ..kernels.linalg import linear_rows, matmul_rows, scatter_add
from . import _token_ids

__all__ = ["RNNNumpy", "softmax", "train_with_sgd", "numpy_sdg_step"]


def softmax(x: np.ndarray) -> np.ndarray:
    """The tutorial's softmax of a vector: exp(x - max(x)) / sum."""
    xt = np.exp(x - np.max(x))
    return xt / np.sum(xt)


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

    def _forward(self, x, func):
        """-> ids (T,), states hs (T, 1, H), scores (T, word_dim) = V @ s[t], kernel cache."""
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

        The three (word_dim x hidden_dim)-sized products run on the kernels' thread pool
        (rows split over numba's threads, single-threaded BLAS in each), so NumPy's own BLAS
        threads never compete with the kernels' for the cores."""
        f = "bptt"
        ids, hs, scores, cache = self._forward(x, f)
        T, H, Vd = ids.shape[0], self.hidden_dim, self.word_dim
        tgt = self._targets(y, T, f)
        dtype = self.U.dtype
        dUT = np.zeros((Vd, H), dtype)                                # (word_dim, H)
        if T == 0:
            return ids, dUT, np.zeros((Vd, H), dtype), np.zeros((H, H), dtype)
        _, dsc = K.softmax_cross_entropy(scores.reshape(T, 1, Vd), tgt.reshape(T, 1))
        delta_o = dsc.reshape(T, Vd)                                  # (T, word_dim)
        delta_o *= T                                                  # o - onehot(y)
        s = hs.reshape(T, H)                                          # (T, H)
        threads = numba.get_num_threads()
        dLdV = np.empty((Vd, H), dtype)                               # (word_dim, H)
        ds = np.empty((T, 1, H), dtype)                               # (T, 1, H)
        with blas_single_threaded():
            matmul_rows(np.ascontiguousarray(delta_o.T), s, dLdV, threads)   # delta_o.T @ s
            matmul_rows(delta_o, self.V, ds.reshape(T, H), threads)          # delta_o @ V
            dxw, _, dLdW, _ = K.rnn_backward_proj(ds, cache, truncate=self.bptt_truncate)
        scatter_add(ids, dxw, dUT)                                    # dLdU[:, x[t]] += ...
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
