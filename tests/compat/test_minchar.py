"""fastrnn.compat.minchar against a plain-NumPy transcription of Karpathy's min-char-rnn.

The transcription (one-hot column vectors, a Python loop over time forward and backward,
clipping, Adagrad, the training loop and its printout) is written from the published
algorithm; the compat module must give the same loss, gradients, samples and loss curve.
"""

import io
import subprocess
import sys

import numpy as np
import pytest

from cells import rel_err
from fastrnn.compat import minchar

TOL = 1e-10


# ================================================================ the transcription

def ref_lossFun(inputs, targets, hprev, Wxh, Whh, Why, bh, by):
    vocab_size = Wxh.shape[1]
    xs, hs, ps = {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1))                     # 1-of-k input
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
        ys = np.dot(Why, hs[t]) + by
        ps[t] = np.exp(ys) / np.sum(np.exp(ys))
        loss += -np.log(ps[t][targets[t], 0])
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dhnext = np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1
        dWhy += np.dot(dy, hs[t].T)
        dby += dy
        dh = np.dot(Why.T, dy) + dhnext
        dhraw = (1 - hs[t] * hs[t]) * dh
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
        dhnext = np.dot(Whh.T, dhraw)
    for dparam in [dWxh, dWhh, dWhy, dbh, dby]:
        np.clip(dparam, -5, 5, out=dparam)
    return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]


def ref_sample(h, seed_ix, n, Wxh, Whh, Why, bh, by):
    vocab_size = Wxh.shape[1]
    x = np.zeros((vocab_size, 1))
    x[seed_ix] = 1
    ixes = []
    for t in range(n):
        h = np.tanh(np.dot(Wxh, x) + np.dot(Whh, h) + bh)
        y = np.dot(Why, h) + by
        p = np.exp(y) / np.sum(np.exp(y))
        ix = np.random.choice(range(vocab_size), p=p.ravel())
        x = np.zeros((vocab_size, 1))
        x[ix] = 1
        ixes.append(ix)
    return ixes


def ref_train(data, iters, hidden_size=100, seq_length=25, learning_rate=1e-1):
    """The original script's body (vocabulary sorted), stopped after ``iters`` iterations;
    returns its printout and final parameters."""
    out = io.StringIO()
    chars = sorted(set(data))
    data_size, vocab_size = len(data), len(chars)
    print('data has %d characters, %d unique.' % (data_size, vocab_size), file=out)
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    ix_to_char = {i: ch for i, ch in enumerate(chars)}
    Wxh = np.random.randn(hidden_size, vocab_size) * 0.01
    Whh = np.random.randn(hidden_size, hidden_size) * 0.01
    Why = np.random.randn(vocab_size, hidden_size) * 0.01
    bh = np.zeros((hidden_size, 1))
    by = np.zeros((vocab_size, 1))
    params = [Wxh, Whh, Why, bh, by]
    n, p = 0, 0
    mems = [np.zeros_like(a) for a in params]
    smooth_loss = -np.log(1.0 / vocab_size) * seq_length
    while n < iters:
        if p + seq_length + 1 >= len(data) or n == 0:
            hprev = np.zeros((hidden_size, 1))
            p = 0
        inputs = [char_to_ix[ch] for ch in data[p:p + seq_length]]
        targets = [char_to_ix[ch] for ch in data[p + 1:p + seq_length + 1]]
        if n % 100 == 0:
            sample_ix = ref_sample(hprev, inputs[0], 200, *params)
            txt = ''.join(ix_to_char[ix] for ix in sample_ix)
            print('----\n %s \n----' % (txt, ), file=out)
        loss, *grads, hprev = ref_lossFun(inputs, targets, hprev, *params)
        smooth_loss = smooth_loss * 0.999 + loss * 0.001
        if n % 100 == 0:
            print('iter %d, loss: %f' % (n, smooth_loss), file=out)
        for param, dparam, mem in zip(params, grads, mems):
            mem += dparam * dparam
            param += -learning_rate * dparam / np.sqrt(mem + 1e-8)
        p += seq_length
        n += 1
    return out.getvalue(), params, smooth_loss


# ================================================================ helpers

def make_params(rng, H=100, V=65, scale=0.01):
    """Whh stays contracting (spectral radius <= ~0.8): a chaotic recurrence would amplify
    the last-bit differences between two tanh implementations past any tolerance."""
    return [rng.standard_normal((H, V)) * scale,
            rng.standard_normal((H, H)) * min(scale, 0.08),
            rng.standard_normal((V, H)) * scale, rng.standard_normal((H, 1)) * scale,
            rng.standard_normal((V, 1)) * scale]


TEXT = ("The quick brown fox jumps over the lazy dog. " * 6
        + "Pack my box with five dozen liquor jugs! ") * 2


# ================================================================ tests

@pytest.mark.parametrize("scale,T", [(0.01, 25), (0.5, 25), (2.0, 7), (0.3, 1)])
def test_lossFun_matches(scale, T):
    rng = np.random.default_rng(0)
    params = make_params(rng, scale=scale)               # scale 2: most gradients clipped
    inputs = list(rng.integers(0, 65, T))
    targets = list(rng.integers(0, 65, T))
    hprev = rng.uniform(-1, 1, (100, 1))
    model = minchar.MinCharRNN(65, rng=np.random.RandomState(0))
    model.Wxh, model.Whh, model.Why, model.bh, model.by = params
    got = model.lossFun(inputs, targets, hprev)
    want = ref_lossFun(inputs, targets, hprev, *params)
    assert abs(got[0] - want[0]) <= TOL * abs(want[0])
    for g, w in zip(got[1:], want[1:]):
        assert g.shape == w.shape and g.flags.c_contiguous
        assert rel_err(g, w) < TOL


@pytest.mark.parametrize("dtype,tol", [(np.float64, TOL), (np.float32, 1e-4)])
@pytest.mark.parametrize("H,V,T", [(1, 2, 1), (3, 2, 5), (17, 9, 4)])
def test_lossFun_small_sizes_and_float32(H, V, T, dtype, tol):
    rng = np.random.default_rng(1)
    params = [rng.standard_normal(s) * 0.5 for s in ((H, V), (H, H), (V, H), (H, 1), (V, 1))]
    inputs, targets = list(rng.integers(0, V, T)), list(rng.integers(0, V, T))
    hprev = rng.uniform(-1, 1, (H, 1))
    model = minchar.MinCharRNN(V, H, rng=np.random.RandomState(0))
    model.Wxh, model.Whh, model.Why, model.bh, model.by = [p.astype(dtype) for p in params]
    got = model.lossFun(inputs, targets, hprev)
    want = ref_lossFun(inputs, targets, hprev, *params)
    assert abs(got[0] - want[0]) <= tol * abs(want[0])
    for g, w in zip(got[1:], want[1:]):
        assert g.shape == w.shape and g.dtype == dtype
        assert rel_err(g, w) < tol


def test_module_functions_read_the_module_globals(monkeypatch):
    rng = np.random.default_rng(1)
    params = make_params(rng, H=16, V=11, scale=0.3)
    for name, a in zip(("Wxh", "Whh", "Why", "bh", "by"), params):
        monkeypatch.setattr(minchar, name, a)
    inputs, targets = [1, 2, 3, 2, 1], [2, 3, 2, 1, 0]
    hprev = np.zeros((16, 1))
    got = minchar.lossFun(inputs, targets, hprev)
    want = ref_lossFun(inputs, targets, hprev, *params)
    assert all(rel_err(g, w) < TOL for g, w in zip(got, want))
    np.random.seed(3)
    want_ids = ref_sample(hprev, 4, 50, *params)
    state = np.random.get_state()[1].copy()
    np.random.seed(3)
    assert minchar.sample(hprev, 4, 50) == want_ids
    assert np.array_equal(np.random.get_state()[1], state)   # the same draws consumed
    assert not hprev.any()                                     # h is the caller's: untouched


def test_unset_module_parameters_say_so(monkeypatch):
    monkeypatch.setattr(minchar, "Wxh", None)
    with pytest.raises(ValueError, match="Wxh is not set"):
        minchar.lossFun([0], [0], np.zeros((3, 1)))


def run_compat(text, iters, learning_rate):
    chars = sorted(set(text))
    out = io.StringIO()
    print('data has %d characters, %d unique.' % (len(text), len(chars)), file=out)
    model = minchar.MinCharRNN(len(chars), learning_rate=learning_rate)
    losses = []
    lossFun = model.lossFun

    def spy(*args):
        r = lossFun(*args)
        losses.append(r[0])
        return r

    model.lossFun = spy
    loss = model.train(text, {c: i for i, c in enumerate(chars)}, dict(enumerate(chars)),
                       iters=iters, out=out)
    assert model.n == iters
    return out.getvalue(), model.params, loss, np.array(losses)


def ref_losses(monkeypatch, *args, **kw):
    losses = []
    inner = ref_lossFun

    def spy(*a):
        r = inner(*a)
        losses.append(r[0])
        return r

    with monkeypatch.context() as m:
        m.setitem(globals(), "ref_lossFun", spy)
        out = ref_train(*args, **kw)
    return out + (np.array(losses),)


def test_training_loop_gives_the_same_loss_curve(monkeypatch):
    """130 iterations (samples and printout at 0 and 100, a wrap-around of the data pointer)
    with a learning rate that keeps the dynamics contracting: everything agrees to round-off."""
    np.random.seed(7)
    want_out, want_params, want_loss, want_curve = ref_losses(monkeypatch, TEXT, 130,
                                                              learning_rate=0.002)
    np.random.seed(7)
    out, params, loss, curve = run_compat(TEXT, 130, 0.002)
    assert out == want_out
    assert rel_err(curve, want_curve) < TOL and abs(loss - want_loss) < TOL * want_loss
    for g, w in zip(params, want_params):
        assert rel_err(g, w) < TOL


def test_default_learning_rate_agrees_while_the_original_itself_is_reproducible(monkeypatch):
    """With the original's lr 0.1, Adagrad's first steps make the recurrence chaotic: perturbing
    the original's initial weights by 1 part in 1e15 changes its own loss by ~1e-9 after 8
    iterations and by ~10% after 100. Within that horizon the compat module agrees."""
    np.random.seed(7)
    *_, want_curve = ref_losses(monkeypatch, TEXT, 8)
    np.random.seed(7)
    *_, curve = run_compat(TEXT, 8, 0.1)
    assert np.all(np.abs(curve - want_curve) < 1e-7 * want_curve)


def test_python_dash_m_reproduces_the_original_printout(tmp_path, monkeypatch):
    path = tmp_path / "input.txt"
    path.write_text(TEXT)
    np.random.seed(11)
    want_out = ref_train(TEXT, 101, learning_rate=0.002)[0]
    r = subprocess.run([sys.executable, "-m", "fastrnn.compat.minchar", str(path), "--iters",
                        "101", "--seed", "11", "--lr", "0.002"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == want_out
    assert "iter 100, loss:" in r.stdout


def test_empty_sequence_and_errors():
    model = minchar.MinCharRNN(5, hidden_size=4, rng=np.random.RandomState(0))
    h = np.ones((4, 1)) * 0.5
    loss, *grads, hlast = model.lossFun([], [], h)
    assert loss == 0 and not any(g.any() for g in grads) and np.array_equal(hlast, h)
    with pytest.raises(ValueError, match=r"hprev must be a column vector of shape \(H, 1\)"):
        model.lossFun([0, 1], [1, 2], np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"inputs must lie in \[0, 5\)"):
        model.lossFun([0, 5], [1, 2], np.zeros((4, 1)))
    with pytest.raises(ValueError, match="same length"):
        model.lossFun([0, 1], [1], np.zeros((4, 1)))
    model.Why = model.Why.T.copy()
    with pytest.raises(ValueError, match=r"Why must have shape \(V, H\) = \(5, 4\)"):
        model.lossFun([0, 1], [1, 2], np.zeros((4, 1)))
