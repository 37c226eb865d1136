"""The binary-addition RNN of Peter Roelants' "How to implement a recurrent neural network,
part 2" (tensor input, learnable initial state, RMSprop with Nesterov momentum) with the same
classes, methods, shapes, numbers and random draws; the time loops in compiled code.

The tutorial's conventions, kept here: batch-major tensors ``X (N, T, nb_of_inputs)``, targets
``T (N, T, nb_of_outputs)``, states ``S (N, T+1, nb_of_states)`` with ``S[:, 0] = S0``;
right-multiplied weights ``W (n_in, n_out)`` and biases ``b (n_out,)``.

    recIn = X @ Win + bin                                       TensorLinear
    S[:, k+1] = tanh(recIn[:, k] + (S[:, k] @ Wrec + brec))    RecurrentStateUnfold
    Z = S[:, 1:] @ Wout + bout;  Y = 1 / (1 + exp(-Z))          TensorLinear, LogisticClassifier
    loss = -mean(T log Y + (1 - T) log(1 - Y))

``RnnBinaryAdder.getParamGrads`` returns the list of the gradient's elements (0-d arrays) in the
order of ``get_params_iter`` (``S0, Win, bin, Wrec, brec, Wout, bout``), whose elements are
in-place editable views of the parameters: the tutorial's gradient check and its RMSprop +
Nesterov loop run unchanged (``examples/binary_adder_tutorial.py`` is that loop). Weights are
drawn from NumPy's global random state in the original's order (``np.random.seed(1)`` first
gives the tutorial's network), and ``create_dataset`` draws as the original.

Differences from the printed code, on purpose:
- ``RnnBinaryAdder`` keeps its ``sequence_len`` and uses it where the printed ``forward`` and
  ``backward`` read the notebook's global ``sequence_len``; an ``X`` with another number of
  steps raises a ValueError naming the expected shape (the printed code would silently leave
  the extra states at zero or fail with an IndexError). ``RecurrentStateUnfold.forward``
  likewise refuses an ``X`` with fewer steps than ``nbTimesteps``.
- Arrays of mixed dtypes are promoted as NumPy would (integer inputs become float64).

Inside: ``RnnBinaryAdder.forward`` (input layer, recurrence, output layer, logistic) and
``RnnBinaryAdder.backward`` (all seven gradients) are one serial compiled call each, and
``getParamGrads`` is one call for both (unless a subclass overrides ``forward`` or
``backward``), that reads the parameter arrays where they are (no copy, no re-layout: edits
through ``get_params_iter`` are seen at the next call); ``RecurrentStateUnfold.forward`` /
``backward`` are one compiled call each too. ``TensorLinear``, ``TanH``, ``LogisticClassifier`` and
``RecurrentStateUpdate`` are the original NumPy code (each is one NumPy expression). The
compiled loops are in ``fastrnn/compat/_binary_adder_kernels.py``.
"""

import itertools
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import _binary_adder_kernels as _kernels

__all__ = ["create_dataset", "printSample", "TensorLinear", "LogisticClassifier", "TanH",
           "RecurrentStateUpdate", "RecurrentStateUnfold", "RnnBinaryAdder"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ================================================================ data


def create_dataset(nb_samples: int, sequence_len: int) -> Tuple[np.ndarray, np.ndarray]:
    """Create a dataset for binary addition and return as input, targets."""
    max_int = 2**(sequence_len - 1)  # Maximum integer that can be added
    # Transform integer in binary format
    format_str = '{:0' + str(sequence_len) + 'b}'
    nb_inputs = 2  # Add 2 binary numbers
    nb_outputs = 1  # Result is 1 binary number
    # Input samples
    X = np.zeros((nb_samples, sequence_len, nb_inputs))
    # Target samples
    T = np.zeros((nb_samples, sequence_len, nb_outputs))
    # Fill up the input and target matrix
    for i in range(nb_samples):
        # Generate random numbers to add
        nb1 = np.random.randint(0, max_int)
        nb2 = np.random.randint(0, max_int)
        # Fill current input and target row.
        # Note that binary numbers are added from right to left,
        # but our RNN reads from left to right, so reverse the sequence.
        X[i, :, 0] = list(reversed([int(b) for b in format_str.format(nb1)]))
        X[i, :, 1] = list(reversed([int(b) for b in format_str.format(nb2)]))
        T[i, :, 0] = list(reversed([int(b) for b in format_str.format(nb1 + nb2)]))
    return X, T


def printSample(x1: Sequence[float], x2: Sequence[float], t: Sequence[Sequence[float]],
                y: Optional[Sequence[Sequence[float]]] = None) -> None:
    """Print a sample in a more visual way."""
    x1 = ''.join([str(int(d)) for d in x1])
    x1_r = int(''.join(reversed(x1)), 2)
    x2 = ''.join([str(int(d)) for d in x2])
    x2_r = int(''.join(reversed(x2)), 2)
    t = ''.join([str(int(d[0])) for d in t])
    t_r = int(''.join(reversed(t)), 2)
    if y is not None:
        y = ''.join([str(int(d[0])) for d in y])
    print(f'x1:   {x1:s}   {x1_r:2d}')
    print(f'x2: + {x2:s}   {x2_r:2d}')
    print('      -------   --')
    print(f't:  = {t:s}   {t_r:2d}')
    if y is not None:
        print(f'y:  = {y:s}')


# ================================================================ checks


def _float_dtype(*arrays):
    dtype = np.result_type(*arrays)
    return dtype if dtype in _FLOATS else _FLOATS[1]


def _same_float(arrays):
    """The common dtype when every array is a C-contiguous float ndarray of one dtype, else
    None (then the caller converts)."""
    d = arrays[0].dtype if type(arrays[0]) is np.ndarray else None
    if d not in _FLOATS:
        return None
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype != d or not a.flags.c_contiguous:
            return None
    return d


def _convert(arrays):
    """All arrays as C-contiguous arrays of their common float dtype (NumPy's promotion)."""
    arrays = [np.asarray(a) for a in arrays]
    dtype = _float_dtype(*arrays)
    return [np.ascontiguousarray(a, dtype) for a in arrays]


def _tensor(func, name, a, shape, layout):
    """a.shape must match shape (None: any size; a tuple (">=", n): at least n)."""
    def fits(want, got):
        return want is None or (got >= want[1] if isinstance(want, tuple) else got == want)

    if a.ndim != len(shape) or not all(fits(w, g) for w, g in zip(shape, a.shape)):
        want = ", ".join("N" if w is None else (f">= {w[1]}" if isinstance(w, tuple) else
                                                str(w)) for w in shape)
        raise ValueError(f"{func}: {name} must have shape {layout} = ({want}), got {a.shape}")


# ================================================================ the tutorial's classes


class TensorLinear(object):
    """The linear tensor layer applies a linear tensor dot product and a bias to its input."""

    def __init__(self, n_in: int, n_out: int, tensor_order: int,
                 W: Optional[np.ndarray] = None, b: Optional[np.ndarray] = None) -> None:
        """Initialse the weight W and bias b parameters."""
        a = np.sqrt(6.0 / (n_in + n_out))
        self.W = (np.random.uniform(-a, a, (n_in, n_out)) if W is None else W)
        self.b = (np.zeros((n_out)) if b is None else b)
        # Axes summed over in backprop
        self.bpAxes = tuple(range(tensor_order - 1))

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Perform forward step transformation with the help of a tensor product."""
        return np.tensordot(X, self.W, axes=((-1), (0))) + self.b

    def backward(self, X: np.ndarray, gY: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the gradient of the parmeters and the inputs of this layer."""
        gW = np.tensordot(X, gY, axes=(self.bpAxes, self.bpAxes))
        gB = np.sum(gY, axis=self.bpAxes)
        gX = np.tensordot(gY, self.W.T, axes=((-1), (0)))
        return gX, gW, gB


class LogisticClassifier(object):
    """The logistic layer applies the logistic function to its inputs."""

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Perform the forward step transformation."""
        return 1. / (1. + np.exp(-X))

    def backward(self, Y: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Return the gradient with respect to the loss function at the inputs of this
        layer."""
        # Average by the number of samples and sequence length.
        return (Y - T) / (Y.shape[0] * Y.shape[1])

    def loss(self, Y: np.ndarray, T: np.ndarray) -> float:
        """Compute the loss at the output."""
        return -np.mean((T * np.log(Y)) + ((1 - T) * np.log(1 - Y)))


class TanH(object):
    """TanH applies the tanh function to its inputs."""

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Perform the forward step transformation."""
        return np.tanh(X)

    def backward(self, Y: np.ndarray, output_grad: np.ndarray) -> np.ndarray:
        """Return the gradient at the inputs of this layer."""
        gTanh = 1.0 - (Y**2)
        return (gTanh * output_grad)


class RecurrentStateUpdate(object):
    """Update a given state."""

    def __init__(self, nbStates: int, W: np.ndarray, b: np.ndarray) -> None:
        """Initialse the linear transformation and tanh transfer function."""
        self.linear = TensorLinear(nbStates, nbStates, 2, W, b)
        self.tanh = TanH()

    def forward(self, Xk: np.ndarray, Sk: np.ndarray) -> np.ndarray:
        """Return state k+1 from input and state k."""
        return self.tanh.forward(Xk + self.linear.forward(Sk))

    def backward(self, Sk0: np.ndarray, Sk1: np.ndarray, output_grad: np.ndarray
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return the gradient of the parmeters and the inputs of this layer."""
        gZ = self.tanh.backward(Sk1, output_grad)
        gSk0, gW, gB = self.linear.backward(Sk0, gZ)
        return gZ, gSk0, gW, gB


class RecurrentStateUnfold(object):
    """Unfold the recurrent states."""

    def __init__(self, nbStates: int, nbTimesteps: int) -> None:
        """Initialse the shared parameters, the inital state and state update function."""
        a = np.sqrt(6. / (nbStates * 2))
        self.W = np.random.uniform(-a, a, (nbStates, nbStates))
        self.b = np.zeros((self.W.shape[0]))  # Shared bias
        self.S0 = np.zeros(nbStates)  # Initial state
        self.nbTimesteps = nbTimesteps  # Timesteps to unfold
        self.stateUpdate = RecurrentStateUpdate(
            nbStates, self.W, self.b)  # State update function

    def _params(self, func, X, *more):
        lin = self.stateUpdate.linear
        arrays = (X, lin.W, lin.b, self.S0) + more
        if _same_float(arrays) is None:
            arrays = _convert(arrays)
        X, W, b, S0 = arrays[:4]
        H = W.shape[0] if W.ndim == 2 else -1
        _tensor(func, "stateUpdate.linear.W", W, (H, H), "(nbStates, nbStates)")
        _tensor(func, "stateUpdate.linear.b", b, (H,), "(nbStates,)")
        _tensor(func, "S0", S0, (H,), "(nbStates,)")
        _tensor(func, "X", X, (None, (">=", self.nbTimesteps), H), "(N, T, nbStates)")
        return arrays

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Iteratively apply forward step to all states -> S (N, T+1, nbStates)."""
        X, W, b, S0 = self._params("RecurrentStateUnfold.forward", X)
        return _kernels.unfold_forward(X, W, b, S0, self.nbTimesteps)

    def backward(self, X: np.ndarray, S: np.ndarray, gY: np.ndarray
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return the gradient of the parmeters and the inputs of this layer:
        gZ (N, T, nbStates), gW, gB, gS0."""
        f = "RecurrentStateUnfold.backward"
        X, W, b, S0, S, gY = self._params(f, X, S, gY)
        N, T, H = X.shape
        _tensor(f, "S", S, (N, (">=", self.nbTimesteps + 1), H), "(N, T+1, nbStates)")
        _tensor(f, "gY", gY, (N, (">=", self.nbTimesteps), H), "(N, T, nbStates)")
        gZ = np.zeros(X.shape, X.dtype)
        gW, gB, gS0 = _kernels.unfold_backward(S, gY, W, self.nbTimesteps, gZ)
        return gZ, gW, gB, gS0


class RnnBinaryAdder(object):
    """RNN to perform binary addition of 2 numbers."""

    def __init__(self, nb_of_inputs: int, nb_of_outputs: int, nb_of_states: int,
                 sequence_len: int) -> None:
        """Initialse the network layers."""
        # Input layer
        self.tensorInput = TensorLinear(nb_of_inputs, nb_of_states, 3)
        # Recurrent layer
        self.rnnUnfold = RecurrentStateUnfold(nb_of_states, sequence_len)
        # Linear output transform
        self.tensorOutput = TensorLinear(nb_of_states, nb_of_outputs, 3)
        self.classifier = LogisticClassifier()  # Classification output
        self.sequence_len = sequence_len

    def _params(self, func, X, *more):
        """-> X, Win, bin, Wrec, brec, S0, Wout, bout (and ``more``), checked, as arrays of
        one float dtype; the parameters themselves unless a conversion is needed."""
        lin = self.rnnUnfold.stateUpdate.linear
        arrays = (X, self.tensorInput.W, self.tensorInput.b, lin.W, lin.b, self.rnnUnfold.S0,
                  self.tensorOutput.W, self.tensorOutput.b) + more
        if _same_float(arrays) is None:
            arrays = _convert(arrays)
        X, Win, bin_, Wrec, brec, S0, Wout, bout = arrays[:8]
        ok = (Win.ndim == 2 and Wrec.ndim == 2 and Wout.ndim == 2
              and Wrec.shape[0] == Wrec.shape[1] == Win.shape[1] == Wout.shape[0]
              and bin_.shape == S0.shape == brec.shape == (Wrec.shape[0],)
              and bout.shape == (Wout.shape[1],))
        if not ok:
            raise ValueError(
                f"{func}: the parameters must have shapes tensorInput.W (nb_of_inputs, "
                f"nb_of_states), tensorInput.b, rnnUnfold.W, .b, .S0 (nb_of_states, ...), "
                f"tensorOutput.W (nb_of_states, nb_of_outputs), tensorOutput.b "
                f"(nb_of_outputs,), got {Win.shape}, {bin_.shape}, {Wrec.shape}, {brec.shape}, "
                f"{S0.shape}, {Wout.shape}, {bout.shape}")
        _tensor(func, "X", X, (None, self.sequence_len, Win.shape[0]),
                "(N, sequence_len, nb_of_inputs)")
        return arrays

    def forward(self, X: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Perform the forward propagation of input X through all layers -> recIn (N, T, H),
        S (N, T+1, H), Z (N, T, O), Y (N, T, O)."""
        return _kernels.adder_forward(*self._params("RnnBinaryAdder.forward", X))

    def _grads(self, X, Y, S, T):
        """The seven gradients in one flat array, in get_params_iter's order."""
        f = "RnnBinaryAdder.backward"
        X, Win, bin_, Wrec, brec, S0, Wout, bout, Y, S, T = self._params(f, X, Y, S, T)
        N, Tn, _ = X.shape
        H, O = Wrec.shape[0], Wout.shape[1]
        _tensor(f, "Y", Y, (N, Tn, O), "(N, T, nb_of_outputs)")
        _tensor(f, "T", T, (N, Tn, O), "(N, T, nb_of_outputs)")
        _tensor(f, "S", S, (N, Tn + 1, H), "(N, T+1, nb_of_states)")
        return _kernels.adder_backward(X, Y, S, T, Wrec, Wout), Win.shape[0], H, O

    def _fused_grads(self, X, T):
        """getParamGrads' flat gradients, forward and backward in one compiled call."""
        f = "RnnBinaryAdder.getParamGrads"
        arrays = self._params(f, X, T)
        X, T = arrays[0], arrays[8]
        _tensor(f, "T", T, X.shape[:2] + (arrays[6].shape[1],), "(N, T, nb_of_outputs)")
        return _kernels.adder_grads(*arrays)

    def backward(self, X: np.ndarray, Y: np.ndarray, recIn: np.ndarray, S: np.ndarray, T: np.ndarray
                 ) -> Tuple[np.ndarray, ...]:
        """Perform the backward propagation through all layers -> the gradients of: linear
        output weights, linear output bias, recursive weights, recursive bias, linear input
        weights, linear input bias, initial state."""
        flat, I, H, O = self._grads(X, Y, S, T)
        n0 = H + I * H + H
        n1 = n0 + H * H + H
        return (flat[n1:n1 + H * O].reshape(H, O), flat[n1 + H * O:],       # gWout, gBout
                flat[n0:n0 + H * H].reshape(H, H), flat[n0 + H * H:n1],      # gWrec, gBrec
                flat[H:H + I * H].reshape(I, H), flat[H + I * H:n0],         # gWin, gBin
                flat[:H])                                                    # gS0

    def getOutput(self, X: np.ndarray) -> np.ndarray:
        """Get the output probabilities of input X."""
        recIn, S, Z, Y = self.forward(X)
        return Y

    def getBinaryOutput(self, X: np.ndarray) -> np.ndarray:
        """Get the binary output of input X."""
        return np.around(self.getOutput(X))

    def getParamGrads(self, X: np.ndarray, T: np.ndarray) -> List[np.ndarray]:
        """Return the gradients with respect to input X and target T as a list. The list has
        the same order as the get_params_iter iterator."""
        cls = type(self)
        if cls.forward is RnnBinaryAdder.forward and cls.backward is RnnBinaryAdder.backward:
            # forward and backward in one compiled call; the gradients are already one array
            # in this order: one nditer over it gives the same 0-d views as the chain of seven
            return list(np.nditer(self._fused_grads(X, T)))
        recIn, S, Z, Y = self.forward(X)
        gWout, gBout, gWrec, gBrec, gWin, gBin, gS0 = self.backward(X, Y, recIn, S, T)
        return [g for g in itertools.chain(
            np.nditer(gS0),
            np.nditer(gWin),
            np.nditer(gBin),
            np.nditer(gWrec),
            np.nditer(gBrec),
            np.nditer(gWout),
            np.nditer(gBout))]

    def loss(self, Y: np.ndarray, T: np.ndarray) -> float:
        """Return the loss of input X w.r.t. targets T."""
        return self.classifier.loss(Y, T)

    def get_params_iter(self) -> Iterator[np.ndarray]:
        """Return an iterator over the parameters. The iterator has the same order as
        get_params_grad. The elements returned by the iterator are editable in-place."""
        return itertools.chain(
            np.nditer(self.rnnUnfold.S0, op_flags=['readwrite']),
            np.nditer(self.tensorInput.W, op_flags=['readwrite']),
            np.nditer(self.tensorInput.b, op_flags=['readwrite']),
            np.nditer(self.rnnUnfold.W, op_flags=['readwrite']),
            np.nditer(self.rnnUnfold.b, op_flags=['readwrite']),
            np.nditer(self.tensorOutput.W, op_flags=['readwrite']),
            np.nditer(self.tensorOutput.b, op_flags=['readwrite']))
