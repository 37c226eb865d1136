"""fastrnn.compat.numpy_rnn against a plain-NumPy transcription of the classic tutorial's
"U, V, W" RNN (WildML, "Recurrent Neural Networks Tutorial", part 2).

The transcription follows the published code path: a loop over time forward (``U[:, x[t]]``
for the one-hot product, ``s[-1]`` the zero initial state), and ``bptt`` with the nested loop
that sends the error of step t back through steps ``t - bptt_truncate .. t`` only.
"""

import contextlib
import io
import re

import numpy as np
import pytest

from cells import rel_err
from fastrnn.compat import numpy_rnn
from fastrnn.compat.numpy_rnn import RNNNumpy

TOL = 1e-10


# ================================================================ the transcription

def softmax(x):
    xt = np.exp(x - np.max(x))
    return xt / np.sum(xt)


class RefRNN:
    def __init__(self, U, V, W, bptt_truncate):
        self.U, self.V, self.W = U.copy(), V.copy(), W.copy()
        self.hidden_dim, self.word_dim = U.shape
        self.bptt_truncate = bptt_truncate

    def forward_propagation(self, x):
        T = len(x)
        s = np.zeros((T + 1, self.hidden_dim))
        s[-1] = np.zeros(self.hidden_dim)
        o = np.zeros((T, self.word_dim))
        for t in np.arange(T):
            s[t] = np.tanh(self.U[:, x[t]] + self.W.dot(s[t - 1]))
            o[t] = softmax(self.V.dot(s[t]))
        return [o, s]

    def calculate_total_loss(self, x, y):
        L = 0
        for i in np.arange(len(y)):
            o, s = self.forward_propagation(x[i])
            correct_word_predictions = o[np.arange(len(y[i])), y[i]]
            L += -1 * np.sum(np.log(correct_word_predictions))
        return L

    def calculate_loss(self, x, y):
        return self.calculate_total_loss(x, y) / sum(len(y_i) for y_i in y)

    def bptt(self, x, y):
        T = len(y)
        o, s = self.forward_propagation(x)
        dLdU = np.zeros(self.U.shape)
        dLdV = np.zeros(self.V.shape)
        dLdW = np.zeros(self.W.shape)
        delta_o = o
        delta_o[np.arange(len(y)), y] -= 1.
        for t in np.arange(T)[::-1]:
            dLdV += np.outer(delta_o[t], s[t].T)
            delta_t = self.V.T.dot(delta_o[t]) * (1 - (s[t] ** 2))
            for bptt_step in np.arange(max(0, t - self.bptt_truncate), t + 1)[::-1]:
                dLdW += np.outer(delta_t, s[bptt_step - 1])
                dLdU[:, x[bptt_step]] += delta_t
                delta_t = self.W.T.dot(delta_t) * (1 - s[bptt_step - 1] ** 2)
        return [dLdU, dLdV, dLdW]

    def sgd_step(self, x, y, learning_rate):
        dLdU, dLdV, dLdW = self.bptt(x, y)
        self.U -= learning_rate * dLdU
        self.V -= learning_rate * dLdV
        self.W -= learning_rate * dLdW


# ================================================================ helpers

def pair(rng, word_dim, hidden_dim, bptt_truncate, scale=1.0):
    """A compat model and a transcription with the same weights."""
    model = RNNNumpy.__new__(RNNNumpy)
    model.word_dim, model.hidden_dim, model.bptt_truncate = word_dim, hidden_dim, bptt_truncate
    model.U = rng.uniform(-1, 1, (hidden_dim, word_dim)) * scale
    model.V = rng.uniform(-1, 1, (word_dim, hidden_dim)) * scale / np.sqrt(hidden_dim)
    model.W = rng.uniform(-1, 1, (hidden_dim, hidden_dim)) * scale
    return model, RefRNN(model.U, model.V, model.W, bptt_truncate)


def sentences(rng, word_dim, n, lo=1, hi=12):
    lens = rng.integers(lo, hi, n)
    X = [list(rng.integers(0, word_dim, k)) for k in lens]
    Y = [list(rng.integers(0, word_dim, k)) for k in lens]
    return X, Y


# ================================================================ tests

def test_init_draws_the_tutorials_weights():
    np.random.seed(10)
    model = RNNNumpy(50, hidden_dim=8)
    np.random.seed(10)
    U = np.random.uniform(-np.sqrt(1. / 50), np.sqrt(1. / 50), (8, 50))
    V = np.random.uniform(-np.sqrt(1. / 8), np.sqrt(1. / 8), (50, 8))
    W = np.random.uniform(-np.sqrt(1. / 8), np.sqrt(1. / 8), (8, 8))
    assert np.array_equal(model.U, U) and np.array_equal(model.V, V)
    assert np.array_equal(model.W, W) and model.bptt_truncate == 4


def test_forward_predict_and_losses_match():
    rng = np.random.default_rng(0)
    model, ref = pair(rng, 40, 7, 4)
    x = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
    o, s = model.forward_propagation(x)
    o_ref, s_ref = ref.forward_propagation(x)
    assert o.shape == (10, 40) and s.shape == (11, 7) and not s[-1].any()
    assert rel_err(o, o_ref) < TOL and rel_err(s, s_ref) < TOL
    assert np.array_equal(model.predict(x), np.argmax(o_ref, axis=1))
    X, Y = sentences(rng, 40, 6)
    want = ref.calculate_total_loss(X, Y)
    assert abs(model.calculate_total_loss(X, Y) - want) <= TOL * want
    assert abs(model.calculate_loss(X, Y) - ref.calculate_loss(X, Y)) <= TOL * want


@pytest.mark.parametrize("bptt_truncate", [0, 1, 4, 1000])
def test_bptt_matches_with_the_tutorials_truncation(bptt_truncate):
    rng = np.random.default_rng(1)
    model, ref = pair(rng, 30, 6, bptt_truncate, scale=1.5)
    x = list(rng.integers(0, 30, 11))
    x[5] = x[2]                                     # a repeated word accumulates into dLdU
    y = list(rng.integers(0, 30, 11))
    got, want = model.bptt(x, y), ref.bptt(x, y)
    assert isinstance(got, list) and len(got) == 3
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert rel_err(g, w) < TOL


def test_bptt_at_the_tutorials_size():
    # word_dim 8000, hidden 100, bptt_truncate 4, a 20-word sentence
    rng = np.random.default_rng(2)
    np.random.seed(2)
    model = RNNNumpy(8000)
    ref = RefRNN(model.U, model.V, model.W, 4)
    x, y = list(rng.integers(0, 8000, 20)), list(rng.integers(0, 8000, 20))
    for g, w in zip(model.bptt(x, y), ref.bptt(x, y)):
        assert rel_err(g, w) < TOL


def test_bptt_reuses_only_the_gradients_no_one_holds():
    # bptt writes into the arrays of the previous call once the caller has dropped them: the
    # results stay exact (dLdU's rows of the previous sentence zeroed again), and arrays the
    # caller still holds, or holds a view of, are never written
    rng = np.random.default_rng(5)
    model, ref = pair(rng, 60, 5, 3)
    (x1, x2), (y1, y2) = sentences(rng, 60, 2, lo=6)
    want1, want2 = ref.bptt(x1, y1), ref.bptt(x2, y2)
    model.bptt(x1, y1)
    first = id(model._held[1])                      # (no reference kept here)
    for _ in range(3):                              # alternate: every call reuses
        for x, y, want in ((x1, y1, want1), (x2, y2, want2)):
            got = model.bptt(x, y)
            assert id(got[1]) == first
            for g, w in zip(got, want):
                assert rel_err(g, w) < TOL
            del got, g
    kept = model.bptt(x1, y1)
    view = model.bptt(x2, y2)[0][:, :3]             # a view of dLdU keeps its array
    again = model.bptt(x2, y2)
    assert again[0].base is not view.base and again[1] is not kept[1]
    for g, w in zip(kept, want1):
        assert rel_err(g, w) < TOL
    assert rel_err(view, want2[0][:, :3]) < TOL


def test_sgd_step_and_training_loop_match():
    rng = np.random.default_rng(3)
    model, ref = pair(rng, 25, 5, 3)
    X, Y = sentences(rng, 25, 8)
    model.sgd_step(X[0], Y[0], 0.01)
    ref.sgd_step(X[0], Y[0], 0.01)
    for name in "UVW":
        assert rel_err(getattr(model, name), getattr(ref, name)) < TOL
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        losses = model.train_with_sgd(X, Y, learning_rate=0.05, nepoch=6, evaluate_loss_after=2)
    want, lr, seen = [], 0.05, 0
    for epoch in range(6):
        if epoch % 2 == 0:
            want.append((seen, ref.calculate_loss(X, Y)))
            if len(want) > 1 and want[-1][1] > want[-2][1]:
                lr *= 0.5
        for i in range(len(Y)):
            ref.sgd_step(X[i], Y[i], lr)
            seen += 1
    assert [n for n, _ in losses] == [n for n, _ in want]
    assert all(abs(a - b) <= TOL * b for (_, a), (_, b) in zip(losses, want))
    for name in "UVW":
        assert rel_err(getattr(model, name), getattr(ref, name)) < 1e-9
    lines = buf.getvalue().splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: Loss after num_examples_seen=0 "
                        r"epoch=0: \d+\.\d{6}", lines[0])


def test_module_level_train_with_sgd_and_sdg_step_alias():
    rng = np.random.default_rng(4)
    m1, _ = pair(rng, 12, 4, 2)
    m2 = RNNNumpy.__new__(RNNNumpy)
    m2.__dict__.update({k: (v.copy() if isinstance(v, np.ndarray) else v)
                        for k, v in m1.__dict__.items()})
    X, Y = sentences(rng, 12, 3)
    with contextlib.redirect_stdout(io.StringIO()):
        numpy_rnn.train_with_sgd(m1, X, Y, nepoch=2, evaluate_loss_after=1)
    for _ in range(2):
        for x, y in zip(X, Y):
            numpy_rnn.numpy_sdg_step(m2, x, y, 0.005)
    assert all(np.array_equal(getattr(m1, n), getattr(m2, n)) for n in "UVW")


def test_gradient_check_passes_with_full_bptt():
    # the tutorial checks word_dim 100, hidden 10; a smaller model keeps the test fast
    np.random.seed(10)
    model = RNNNumpy(20, 5, bptt_truncate=1000)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        model.gradient_check([0, 1, 2, 3], [1, 2, 3, 4])
    out = buf.getvalue()
    for p, size in (("U", 100), ("V", 100), ("W", 25)):
        assert f"Performing gradient check for parameter {p} with size {size}." in out
        assert f"Gradient check for parameter {p} passed." in out
    assert "ERROR" not in out


def test_gradient_check_reports_a_truncated_gradient():
    np.random.seed(10)
    model = RNNNumpy(20, 5, bptt_truncate=0)       # bptt misses the earlier steps' terms
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        model.gradient_check([0, 1, 2, 3], [1, 2, 3, 4])
    assert "Gradient Check ERROR: parameter=U" in buf.getvalue()


def test_empty_sentence_and_errors():
    rng = np.random.default_rng(5)
    model, _ = pair(rng, 10, 3, 4)
    o, s = model.forward_propagation([])
    assert o.shape == (0, 10) and s.shape == (1, 3)
    assert all(not g.any() for g in model.bptt([], []))
    with pytest.raises(ValueError, match=r"x must lie in \[0, 10\)"):
        model.bptt([1, 10], [1, 2])
    with pytest.raises(ValueError, match="same length"):
        model.bptt([1, 2, 3], [1, 2])
    model.V = model.V.T.copy()
    with pytest.raises(ValueError, match=r"self.V must have shape \(word_dim, hidden_dim\)"):
        model.forward_propagation([1])
