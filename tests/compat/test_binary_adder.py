"""fastrnn.compat.binary_adder against a plain-NumPy transcription of the binary-addition RNN
(shared/seeds/003: Peter Roelants, "How to implement a recurrent neural network, part 2").

The transcription is the printed code; like the notebook it reads the global ``sequence_len``
in ``RnnBinaryAdder.forward`` / ``backward`` (the tests set it to the model's length).
"""

import contextlib
import io
import itertools

import numpy as np
import pytest

from cells import rel_err
from fastrnn.compat import binary_adder as B

TOL = 1e-10
sequence_len = 7            # the notebook's global, read by OrigRnnBinaryAdder


# ================================================================ the transcription

def create_dataset(nb_samples, sequence_len):
    max_int = 2**(sequence_len - 1)
    format_str = '{:0' + str(sequence_len) + 'b}'
    nb_inputs = 2
    nb_outputs = 1
    X = np.zeros((nb_samples, sequence_len, nb_inputs))
    T = np.zeros((nb_samples, sequence_len, nb_outputs))
    for i in range(nb_samples):
        nb1 = np.random.randint(0, max_int)
        nb2 = np.random.randint(0, max_int)
        X[i, :, 0] = list(reversed([int(b) for b in format_str.format(nb1)]))
        X[i, :, 1] = list(reversed([int(b) for b in format_str.format(nb2)]))
        T[i, :, 0] = list(reversed([int(b) for b in format_str.format(nb1 + nb2)]))
    return X, T


class TensorLinear(object):
    def __init__(self, n_in, n_out, tensor_order, W=None, b=None):
        a = np.sqrt(6.0 / (n_in + n_out))
        self.W = (np.random.uniform(-a, a, (n_in, n_out)) if W is None else W)
        self.b = (np.zeros((n_out)) if b is None else b)
        self.bpAxes = tuple(range(tensor_order - 1))

    def forward(self, X):
        return np.tensordot(X, self.W, axes=((-1), (0))) + self.b

    def backward(self, X, gY):
        gW = np.tensordot(X, gY, axes=(self.bpAxes, self.bpAxes))
        gB = np.sum(gY, axis=self.bpAxes)
        gX = np.tensordot(gY, self.W.T, axes=((-1), (0)))
        return gX, gW, gB


class LogisticClassifier(object):
    def forward(self, X):
        return 1. / (1. + np.exp(-X))

    def backward(self, Y, T):
        return (Y - T) / (Y.shape[0] * Y.shape[1])

    def loss(self, Y, T):
        return -np.mean((T * np.log(Y)) + ((1 - T) * np.log(1 - Y)))


class TanH(object):
    def forward(self, X):
        return np.tanh(X)

    def backward(self, Y, output_grad):
        gTanh = 1.0 - (Y**2)
        return (gTanh * output_grad)


class RecurrentStateUpdate(object):
    def __init__(self, nbStates, W, b):
        self.linear = TensorLinear(nbStates, nbStates, 2, W, b)
        self.tanh = TanH()

    def forward(self, Xk, Sk):
        return self.tanh.forward(Xk + self.linear.forward(Sk))

    def backward(self, Sk0, Sk1, output_grad):
        gZ = self.tanh.backward(Sk1, output_grad)
        gSk0, gW, gB = self.linear.backward(Sk0, gZ)
        return gZ, gSk0, gW, gB


class RecurrentStateUnfold(object):
    def __init__(self, nbStates, nbTimesteps):
        a = np.sqrt(6. / (nbStates * 2))
        self.W = np.random.uniform(-a, a, (nbStates, nbStates))
        self.b = np.zeros((self.W.shape[0]))
        self.S0 = np.zeros(nbStates)
        self.nbTimesteps = nbTimesteps
        self.stateUpdate = RecurrentStateUpdate(nbStates, self.W, self.b)

    def forward(self, X):
        S = np.zeros((X.shape[0], X.shape[1] + 1, self.W.shape[0]))
        S[:, 0, :] = self.S0
        for k in range(self.nbTimesteps):
            S[:, k + 1, :] = self.stateUpdate.forward(X[:, k, :], S[:, k, :])
        return S

    def backward(self, X, S, gY):
        gSk = np.zeros_like(gY[:, self.nbTimesteps - 1, :])
        gZ = np.zeros_like(X)
        gWSum = np.zeros_like(self.W)
        gBSum = np.zeros_like(self.b)
        for k in range(self.nbTimesteps - 1, -1, -1):
            gSk += gY[:, k, :]
            gZ[:, k, :], gSk, gW, gB = self.stateUpdate.backward(S[:, k, :], S[:, k + 1, :], gSk)
            gWSum += gW
            gBSum += gB
        gS0 = np.sum(gSk, axis=0)
        return gZ, gWSum, gBSum, gS0


class RnnBinaryAdder(object):
    def __init__(self, nb_of_inputs, nb_of_outputs, nb_of_states, sequence_len):
        self.tensorInput = TensorLinear(nb_of_inputs, nb_of_states, 3)
        self.rnnUnfold = RecurrentStateUnfold(nb_of_states, sequence_len)
        self.tensorOutput = TensorLinear(nb_of_states, nb_of_outputs, 3)
        self.classifier = LogisticClassifier()

    def forward(self, X):
        recIn = self.tensorInput.forward(X)
        S = self.rnnUnfold.forward(recIn)
        Z = self.tensorOutput.forward(S[:, 1:sequence_len + 1, :])
        Y = self.classifier.forward(Z)
        return recIn, S, Z, Y

    def backward(self, X, Y, recIn, S, T):
        gZ = self.classifier.backward(Y, T)
        gRecOut, gWout, gBout = self.tensorOutput.backward(S[:, 1:sequence_len + 1, :], gZ)
        gRnnIn, gWrec, gBrec, gS0 = self.rnnUnfold.backward(recIn, S, gRecOut)
        gX, gWin, gBin = self.tensorInput.backward(X, gRnnIn)
        return gWout, gBout, gWrec, gBrec, gWin, gBin, gS0

    def getOutput(self, X):
        recIn, S, Z, Y = self.forward(X)
        return Y

    def getBinaryOutput(self, X):
        return np.around(self.getOutput(X))

    def getParamGrads(self, X, T):
        recIn, S, Z, Y = self.forward(X)
        gWout, gBout, gWrec, gBrec, gWin, gBin, gS0 = self.backward(X, Y, recIn, S, T)
        return [g for g in itertools.chain(
            np.nditer(gS0), np.nditer(gWin), np.nditer(gBin), np.nditer(gWrec),
            np.nditer(gBrec), np.nditer(gWout), np.nditer(gBout))]

    def loss(self, Y, T):
        return self.classifier.loss(Y, T)

    def get_params_iter(self):
        return itertools.chain(
            np.nditer(self.rnnUnfold.S0, op_flags=['readwrite']),
            np.nditer(self.tensorInput.W, op_flags=['readwrite']),
            np.nditer(self.tensorInput.b, op_flags=['readwrite']),
            np.nditer(self.rnnUnfold.W, op_flags=['readwrite']),
            np.nditer(self.rnnUnfold.b, op_flags=['readwrite']),
            np.nditer(self.tensorOutput.W, op_flags=['readwrite']),
            np.nditer(self.tensorOutput.b, op_flags=['readwrite']))


# ================================================================ the tutorial's scripts

def gradient_check(RNN, X_train, T_train):
    """The tutorial's gradient check, verbatim (raises ValueError on a mismatch)."""
    backprop_grads = RNN.getParamGrads(X_train[0:100, :, :], T_train[0:100, :, :])
    eps = 1e-7
    for p_idx, param in enumerate(RNN.get_params_iter()):
        grad_backprop = backprop_grads[p_idx]
        param += eps
        plus_loss = RNN.loss(RNN.getOutput(X_train[0:100, :, :]), T_train[0:100, :, :])
        param -= 2 * eps
        min_loss = RNN.loss(RNN.getOutput(X_train[0:100, :, :]), T_train[0:100, :, :])
        param += eps
        grad_num = (plus_loss - min_loss) / (2 * eps)
        if not np.isclose(grad_num, grad_backprop):
            raise ValueError((
                f'Numerical gradient of {grad_num:.6f} is not close '
                f'to the backpropagation gradient of {grad_backprop:.6f}!'))
    return backprop_grads


lmbd, learning_rate, momentum_term, eps = 0.5, 0.05, 0.80, 1e-6


def loop_step(RNN, X_mb, T_mb, maSquare, Vs):
    """The body of the tutorial's RMSprop + Nesterov loop, verbatim; returns its loss."""
    V_tmp = [v * momentum_term for v in Vs]
    for pIdx, P in enumerate(RNN.get_params_iter()):
        P += V_tmp[pIdx]
    backprop_grads = RNN.getParamGrads(X_mb, T_mb)
    for pIdx, P in enumerate(RNN.get_params_iter()):
        maSquare[pIdx] = lmbd * maSquare[pIdx] + (1 - lmbd) * backprop_grads[pIdx]**2
        pGradNorm = ((learning_rate * backprop_grads[pIdx]) / np.sqrt(maSquare[pIdx]) + eps)
        Vs[pIdx] = V_tmp[pIdx] - pGradNorm
        P -= pGradNorm
    return RNN.loss(RNN.getOutput(X_mb), T_mb)


# ================================================================ helpers

PARAMS = [("rnnUnfold", "S0"), ("tensorInput", "W"), ("tensorInput", "b"), ("rnnUnfold", "W"),
          ("rnnUnfold", "b"), ("tensorOutput", "W"), ("tensorOutput", "b")]


def copy_params(src, dst):
    """dst's parameters take src's values, in place (dst's shared arrays stay shared)."""
    for layer, name in PARAMS:
        getattr(getattr(dst, layer), name)[...] = getattr(getattr(src, layer), name)


def pair(seed, I=2, O=1, H=3, T=7, scale=None):
    """A compat and an original network, both drawn after np.random.seed(seed)."""
    np.random.seed(seed)
    new = B.RnnBinaryAdder(I, O, H, T)
    np.random.seed(seed)
    old = RnnBinaryAdder(I, O, H, T)
    if scale is not None:       # bigger weights, a nonzero S0 and biases: every path matters
        rng = np.random.default_rng(seed)
        for layer, name in PARAMS:
            a = getattr(getattr(new, layer), name)
            a[...] = rng.uniform(-scale, scale, a.shape)
        copy_params(new, old)
    return new, old


@pytest.fixture
def steps(monkeypatch):
    """Sets the transcription's global sequence_len."""
    def set_steps(T):
        monkeypatch.setitem(globals(), "sequence_len", T)
    return set_steps


def data(rng, N, T, I=2, O=1):
    X = rng.integers(0, 2, (N, T, I)).astype(np.float64)
    Tg = rng.integers(0, 2, (N, T, O)).astype(np.float64)
    return X, Tg


# ================================================================ tests

def test_draws_match_the_original():
    np.random.seed(1)
    X, T = B.create_dataset(50, 7)
    new = B.RnnBinaryAdder(2, 1, 3, 7)
    np.random.seed(1)
    X0, T0 = create_dataset(50, 7)
    old = RnnBinaryAdder(2, 1, 3, 7)
    assert np.array_equal(X, X0) and np.array_equal(T, T0)
    for layer, name in PARAMS:
        assert np.array_equal(getattr(getattr(new, layer), name),
                              getattr(getattr(old, layer), name))
    assert new.rnnUnfold.stateUpdate.linear.W is new.rnnUnfold.W     # shared, as the original
    assert X.shape == (50, 7, 2) and T.shape == (50, 7, 1)
    assert np.array_equal(X[:, :, 0] @ 2 ** np.arange(7) + X[:, :, 1] @ 2 ** np.arange(7),
                          T[:, :, 0] @ 2 ** np.arange(7))


@pytest.mark.parametrize("I,O,H,T,N", [(2, 1, 3, 7, 100), (3, 2, 5, 4, 9), (1, 1, 1, 1, 1),
                                       (2, 3, 4, 6, 2)])
def test_forward_and_every_gradient_match(I, O, H, T, N, steps):
    steps(T)
    rng = np.random.default_rng(N)
    new, old = pair(N, I, O, H, T, scale=1.2)
    X, Tg = data(rng, N, T, I, O)
    got, want = new.forward(X), old.forward(X)
    for a, b in zip(got, want):                           # recIn, S, Z, Y
        assert a.shape == b.shape and rel_err(a, b) < TOL
    recIn, S, Z, Y = want
    g_new = new.backward(X, Y, recIn, S, Tg)
    g_old = old.backward(X, Y, recIn, S, Tg)
    assert len(g_new) == 7
    for a, b in zip(g_new, g_old):                        # gWout, gBout, .., gS0
        assert a.shape == b.shape and rel_err(a, b) < TOL
    pg_new, pg_old = new.getParamGrads(X, Tg), old.getParamGrads(X, Tg)
    assert len(pg_new) == len(pg_old) == sum(1 for _ in new.get_params_iter())
    assert all(np.ndim(a) == 0 for a in pg_new)
    assert rel_err(np.array(pg_new), np.array(pg_old)) < TOL
    assert abs(new.loss(new.getOutput(X), Tg) - old.loss(Y, Tg)) < TOL * old.loss(Y, Tg)
    assert np.array_equal(new.getBinaryOutput(X), old.getBinaryOutput(X))


def test_get_param_grads_in_one_call_is_forward_then_backward(steps):
    """getParamGrads runs forward and backward in one compiled call unless a subclass
    overrides either; both ways give the same bits, and a subclass's own forward is used."""
    steps(7)
    rng = np.random.default_rng(11)
    new, old = pair(20, 2, 1, 3, 7, scale=1.2)
    X, Tg = data(rng, 20, 7)

    class Traced(B.RnnBinaryAdder):
        calls = 0

        def forward(self, X):
            Traced.calls += 1
            return super().forward(X)

    traced = Traced(2, 1, 3, 7)
    copy_params(new, traced)
    fused, split = new.getParamGrads(X, Tg), traced.getParamGrads(X, Tg)
    assert Traced.calls == 1
    assert np.array_equal(np.array(fused), np.array(split))
    assert rel_err(np.array(fused), np.array(old.getParamGrads(X, Tg))) < TOL
    with pytest.raises(ValueError, match="getParamGrads: T must have shape"):
        new.getParamGrads(X, Tg[:, :, [0, 0]])


def test_recurrent_state_unfold_alone_matches():
    rng = np.random.default_rng(3)
    np.random.seed(3)
    new = B.RecurrentStateUnfold(4, 5)
    np.random.seed(3)
    old = RecurrentStateUnfold(4, 5)
    new.S0[...] = old.S0[...] = rng.uniform(-1, 1, 4)
    new.b[...] = old.b[...] = rng.uniform(-1, 1, 4)
    X = rng.standard_normal((6, 7, 4))                    # more steps than nbTimesteps
    S_new, S_old = new.forward(X), old.forward(X)
    assert S_new.shape == (6, 8, 4) and rel_err(S_new, S_old) < TOL
    assert not S_new[:, 6:].any()
    gY = rng.standard_normal((6, 7, 4))
    for a, b in zip(new.backward(X, S_old, gY), old.backward(X, S_old, gY)):
        assert a.shape == b.shape and rel_err(a, b) < TOL
    # the layers that stay NumPy code
    lin = B.TensorLinear(4, 2, 3, W=old.W[:, :2].copy())
    lin0 = TensorLinear(4, 2, 3, W=old.W[:, :2].copy())
    for a, b in zip(lin.backward(X, gY[:, :, :2]), lin0.backward(X, gY[:, :, :2])):
        assert rel_err(a, b) < TOL


def test_the_tutorials_gradient_check_runs_unchanged():
    np.random.seed(seed=1)
    X_train, T_train = B.create_dataset(2000, 7)
    RNN = B.RnnBinaryAdder(2, 1, 3, 7)
    before = [float(p) for p in RNN.get_params_iter()]
    grads = gradient_check(RNN, X_train, T_train)              # raises on a mismatch
    assert [float(p) for p in RNN.get_params_iter()] == pytest.approx(before, abs=1e-15)
    assert len(grads) == 3 + 6 + 3 + 9 + 3 + 3 + 1
    # and it does catch a wrong gradient
    bad = B.RnnBinaryAdder(2, 1, 3, 7)
    real = bad.getParamGrads
    bad.getParamGrads = lambda X, T: [g * 1.5 for g in real(X, T)]
    with pytest.raises(ValueError, match="Numerical gradient of"):
        gradient_check(bad, X_train, T_train)


def test_the_training_loop_step_by_step():
    """Both sides get the same parameters and optimizer state before each step; their losses,
    gradients and updates agree to 1e-10 at every step of the tutorial's first 2 x 20
    minibatches (of 5 x 20; 2 keep the test fast)."""
    np.random.seed(seed=1)
    X_train, T_train = B.create_dataset(2000, 7)
    new, old = pair(1)
    n = sum(1 for _ in new.get_params_iter())
    maSquare, Vs = [0.0] * n, [0.0] * n
    losses = [new.loss(new.getOutput(X_train[0:100]), T_train[0:100])]
    assert abs(losses[0] - old.loss(old.getOutput(X_train[0:100]), T_train[0:100])) < TOL
    worst = 0.0
    for i in range(2):
        for mb in range(2000 // 100):
            X_mb, T_mb = X_train[mb:mb + 100], T_train[mb:mb + 100]
            copy_params(new, old)
            ma_old, vs_old = list(maSquare), list(Vs)
            loss = loop_step(new, X_mb, T_mb, maSquare, Vs)
            loss_old = loop_step(old, X_mb, T_mb, ma_old, vs_old)
            worst = max(worst, abs(loss - loss_old) / loss_old)
            for layer, name in PARAMS:
                a, b = (getattr(getattr(m, layer), name) for m in (new, old))
                assert rel_err(a, b) < TOL
            assert rel_err(np.array(Vs, float), np.array(vs_old, float)) < TOL
            losses.append(loss)
    assert worst < TOL
    assert losses[-1] < 0.5 * losses[0]                   # and it learns


def test_the_free_running_loop_matches_at_first():
    np.random.seed(seed=1)
    X_train, T_train = B.create_dataset(300, 7)
    new, old = pair(1)
    n = sum(1 for _ in new.get_params_iter())
    states = [([0.0] * n, [0.0] * n), ([0.0] * n, [0.0] * n)]
    for mb in range(3):
        X_mb, T_mb = X_train[mb:mb + 100], T_train[mb:mb + 100]
        a = loop_step(new, X_mb, T_mb, *states[0])
        b = loop_step(old, X_mb, T_mb, *states[1])
        assert abs(a - b) <= TOL * b


def test_float32_close_to_float64():
    new, _ = pair(4, scale=1.0)
    rng = np.random.default_rng(4)
    X, Tg = data(rng, 10, 7)
    Y64 = new.getOutput(X)
    g64 = new.getParamGrads(X, Tg)
    for layer, name in PARAMS:
        lay = getattr(new, layer)
        setattr(lay, name, getattr(lay, name).astype(np.float32))
    new.rnnUnfold.stateUpdate.linear.W = new.rnnUnfold.W
    new.rnnUnfold.stateUpdate.linear.b = new.rnnUnfold.b
    X32 = X.astype(np.float32)
    Y32 = new.getOutput(X32)
    assert Y32.dtype == np.float32 and rel_err(Y32, Y64) < 1e-5
    g32 = new.getParamGrads(X32, Tg.astype(np.float32))
    assert g32[0].dtype == np.float32 and rel_err(np.array(g32), np.array(g64)) < 1e-4
    assert new.getOutput(X).dtype == np.float64          # float64 X: promoted, as NumPy


def test_bad_input_names_the_problem():
    new, _ = pair(5)
    rng = np.random.default_rng(5)
    X, Tg = data(rng, 4, 7)
    with pytest.raises(ValueError, match=r"X must have shape \(N, sequence_len, nb_of_inputs\) "
                                         r"= \(N, 7, 2\), got \(4, 6, 2\)"):
        new.forward(X[:, :6])
    with pytest.raises(ValueError, match=r"X must have shape .* got \(7, 4, 2\)"):
        new.getOutput(X.transpose(1, 0, 2))
    recIn, S, Z, Y = new.forward(X)
    with pytest.raises(ValueError, match=r"T must have shape \(N, T, nb_of_outputs\) = "
                                         r"\(4, 7, 1\)"):
        new.backward(X, Y, recIn, S, Tg[:, :, 0])
    new.tensorOutput.W = new.tensorOutput.W.T
    with pytest.raises(ValueError, match="tensorOutput.W"):
        new.forward(X)
    with pytest.raises(ValueError, match=r"X must have shape \(N, T, nbStates\) = "
                                         r"\(N, >= 7, 3\)"):
        new.rnnUnfold.forward(np.zeros((2, 5, 3)))


def test_print_sample():
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        B.printSample([1, 0, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0],
                      [[0], [0], [0], [1], [0], [0], [0]], [[0], [0], [0], [1], [0], [0], [0]])
    lines = buf.getvalue().splitlines()
    assert "1010000" in lines[0] and lines[0].endswith(" 5")
    assert "1100000" in lines[1] and lines[1].endswith(" 3")
    assert lines[3].endswith(" 8") and lines[4].startswith("y:")
