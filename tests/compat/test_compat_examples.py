"""The compat examples run and do what they claim (small budgets; no timing is asserted)."""

import contextlib
import importlib.util
import io
import os

import numpy as np

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


def load(name):
    spec = importlib.util.spec_from_file_location(f"compat_example_{name}",
                                                  os.path.join(EXAMPLES, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cs231n_lstm_learns_to_caption():
    ex = load("cs231n_lstm")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        accuracy = ex.train(iters=150, verbose=True)
    out = buf.getvalue()
    assert "(Iteration 1 / 150) loss:" in out and "held-out word accuracy" in out
    losses = [float(line.rsplit(" ", 1)[1]) for line in out.splitlines()
              if line.startswith("(Iteration")]
    assert losses[-1] < 0.5 * losses[0]
    assert accuracy > 0.3                  # chance is ~1/11 per word


def test_min_char_rnn_lowers_the_loss():
    ex = load("min_char_rnn")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        loss = ex.train(iters=300, print_every=100)
    out = buf.getvalue()
    assert "iter 0, loss:" in out and "iter 200, loss:" in out and "it/s" in out
    first = float(out.split("iter 0, loss: ")[1].split()[0])
    assert loss < first


def test_binary_adder_tutorial_runs_unchanged_and_learns():
    ex = load("binary_adder_tutorial")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        losses, RNN = ex.main()
    out = buf.getvalue()
    assert "X_train tensor shape: (2000, 7, 2)" in out and "No gradient errors found" in out
    assert len(losses) == 1 + 5 * 20
    assert losses[-1] < 0.2 * losses[0]
    # the trained network adds numbers it has not seen (7-bit sums of 6-bit numbers)
    a = np.arange(0, 64, 3)
    b = (a * 7 + 5) % 64
    bits = lambda v: ((v[:, None] >> np.arange(7)) & 1).astype(float)  # noqa: E731
    X = np.stack([bits(a), bits(b)], axis=2)
    Y = RNN.getBinaryOutput(X)[:, :, 0]
    assert np.mean(np.all(Y == bits(a + b), axis=1)) > 0.9
