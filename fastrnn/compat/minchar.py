"""Karpathy's min-char-rnn (a character-level vanilla RNN trained with Adagrad) on fastrnn
kernels: the same names, shapes, numbers and training printout.

The original's column-vector parameters: ``Wxh (H, V)``, ``Whh (H, H)``, ``Why (V, H)``,
``bh (H, 1)``, ``by (V, 1)``, hidden states ``(H, 1)``; inputs and targets are lists of ids.

    h[t] = tanh(Wxh @ onehot(x[t]) + Whh @ h[t-1] + bh)
    y[t] = Why @ h[t] + by;  p[t] = softmax(y[t]);  loss = sum_t -log p[t][target[t]]

- ``lossFun(inputs, targets, hprev) -> loss, dWxh, dWhh, dWhy, dbh, dby, h_last``: full BPTT
  over the sequence, every gradient clipped to [-5, 5] as the original does.
- ``sample(h, seed_ix, n) -> list of n ids``, drawn with ``np.random.choice`` as the original
  (so the same global seed gives the same draws).
- As in the original script, these two module-level functions read the parameters from this
  module's globals ``Wxh, Whh, Why, bh, by`` (assign them, e.g. ``minchar.Wxh = ...``). The
  class ``MinCharRNN`` holds its own parameters, the Adagrad memory and the training loop state
  and has the same methods.
- ``python -m fastrnn.compat.minchar input.txt [--iters N] [--seed S]`` runs the original
  training loop (sequence 25, hidden 100, learning rate 0.1) and prints its
  ``iter %d, loss: %f`` progress and samples; the original runs forever, ``--iters`` stops it.
  The vocabulary is ``sorted(set(data))`` (the original's ``list(set(data))`` changes order from
  run to run with Python's string hashing, and with it the random initialisation).

Inside, ``lossFun`` is one compiled call (``_loss_fun_fused``) that never builds a one-hot
vector: the inputs are gathered columns of ``Wxh``; per step only the recurrence runs (one
matrix-vector product forward, one back); the output layer, the softmax cross-entropy and every
weight gradient are one product each over all steps; ``dWxh`` is a scatter-add.
"""

import argparse
import sys
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

import numpy as np

from .._jit import njit
from ..kernels import MR_MAX, exp, fmax, gemm_packed, gemm_rows, pack_panels_T, tanh
from ..kernels.stack import CELL_CODES, step_packed
from . import _token_ids

__all__ = ["lossFun", "sample", "MinCharRNN", "main"]

# The original script's globals, read by the module-level lossFun and sample.
Wxh = Whh = Why = bh = by = None

_PARAMS = ("Wxh", "Whh", "Why", "bh", "by")


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _check_params(func, Wxh, Whh, Why, bh, by):
    """-> H, V, dtype. Every parameter is a float array of the original's column layout."""
    nd = np.ndarray
    if (type(Wxh) is nd and type(Whh) is nd and type(Why) is nd and type(bh) is nd
            and type(by) is nd and Wxh.ndim == 2):        # the common case, in few operations
        H, V = Wxh.shape
        d = Wxh.dtype
        if (d in _FLOATS and Whh.dtype == d and Why.dtype == d and bh.dtype == d
                and by.dtype == d and Whh.shape == (H, H) and Why.shape == (V, H)
                and bh.shape == (H, 1) and by.shape == (V, 1)):
            return H, V, d
    named = dict(zip(_PARAMS, (Wxh, Whh, Why, bh, by)))
    for name, a in named.items():
        if a is None:
            raise ValueError(f"{func}: the parameter {name} is not set (assign "
                             f"fastrnn.compat.minchar.{name}, or use MinCharRNN)")
        if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
            raise TypeError(f"{func}: {name} must be a float32/float64 numpy array, got "
                            f"{getattr(a, 'dtype', type(a).__name__)}")
    if Wxh.ndim != 2:
        raise ValueError(f"{func}: Wxh must have shape (H, V), got {Wxh.shape}")
    H, V = Wxh.shape
    expected = {"Whh": (H, H), "Why": (V, H), "bh": (H, 1), "by": (V, 1)}
    layout = {"Whh": "(H, H)", "Why": "(V, H)", "bh": "(H, 1)", "by": "(V, 1)"}
    for name, shape in expected.items():
        if named[name].shape != shape:
            raise ValueError(f"{func}: {name} must have shape {layout[name]} = {shape} "
                             f"(H, V from Wxh (H, V)), got {named[name].shape}")
        if named[name].dtype != Wxh.dtype:
            raise TypeError(f"{func}: {name} has dtype {named[name].dtype} but Wxh has "
                            f"{Wxh.dtype}; all parameters must share one dtype")
    return H, V, Wxh.dtype


def _column_state(func, name, h, H, dtype):
    h = np.asarray(h)
    if h.shape != (H, 1):
        raise ValueError(f"{func}: {name} must be a column vector of shape (H, 1) = {(H, 1)}, "
                         f"got {h.shape}")
    return h.astype(dtype, copy=False)


def _loss_fun(inputs, targets, hprev, Wxh, Whh, Why, bh, by):
    f = "lossFun"
    H, V, dtype = _check_params(f, Wxh, Whh, Why, bh, by)
    ids = _token_ids("inputs", inputs, V, func=f)                    # (T,)
    tgt = _token_ids("targets", targets, V, func=f)                  # (T,)
    hprev = _column_state(f, "hprev", hprev, H, dtype)               # (H, 1)
    T = ids.shape[0]
    if tgt.shape[0] != T:
        raise ValueError(f"{f}: inputs and targets must have the same length, got {T} and "
                         f"{tgt.shape[0]}")
    if T == 0:
        return (0, np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why),
                np.zeros_like(bh), np.zeros_like(by), hprev.copy())
    return _loss_fun_kernels(ids, tgt, hprev, Wxh, Whh, Why, bh, by)


@njit
def _clip5(a):
    """np.clip(a, -5, 5, out=a) (NaN stays NaN), for an array of any shape."""
    flat = a.reshape(a.size)
    for i in range(flat.size):
        v = flat[i]
        flat[i] = 5.0 if v > 5.0 else (-5.0 if v < -5.0 else v)


@njit
def _loss_fun_fused(ids, tgt, hprev, Wxh, Whh, Why, bh, by):
    """The whole of lossFun in one compiled call (a step here is ~1 us of work, so separate
    kernel launches, checks and layout changes would cost as much as the arithmetic). Serial:
    one core does it fastest at this size. Every product is the kernels' register-blocked
    micro-GEMM over panels packed here (no BLAS call): per step only the recurrence (Whh h
    forward, Whh^T dhraw back); the output layer, the softmax and every weight gradient are
    one product each over all T steps; Wxh @ onehot(x[t]) is column ids[t] of Wxh.
    -> loss, the five gradients clipped to [-5, 5] (dbh, dby flat), h[T]"""
    T = ids.shape[0]
    H, V = Wxh.shape
    dt = Whh.dtype
    hs = np.empty((T + 1, H), dt)                          # (T+1, H): hs[0] = hprev
    wp = pack_panels_T(Whh)                                # Whh^T: h @ Whh^T = Whh h
    tile = np.empty((MR_MAX, wp.shape[0] * wp.shape[2]), dt)
    xcol = np.empty(H, dt)
    hs[0] = hprev
    for t in range(T):
        gemm_rows(hs, t, 1, wp, tile)                      # Whh @ h[t-1]
        a = tile[0]
        h = hs[t + 1]
        c = ids[t]
        for u in range(H):                                 # Wxh @ onehot: a column, gathered
            xcol[u] = Wxh[u, c]                            # so that the tanh loop vectorises
        for u in range(H):
            h[u] = tanh(xcol[u] + a[u] + bh[u])
    hT = hs[1:]                                            # (T, H)
    dyT = np.empty((V, T), dt)                             # logits^T, then (p - onehot)^T
    gemm_packed(Why, pack_panels_T(hT), dyT)               # Why @ hT^T: Why in its own layout
    m = np.empty(T, dt)                                    # the softmax of every step at once,
    s = np.zeros(T, dt)                                    # vectorised over the steps
    for t in range(T):
        m[t] = dyT[0, t] + by[0]
    for v in range(V):
        y = dyT[v]
        b = by[v]
        for t in range(T):
            y[t] += b
            m[t] = fmax(m[t], y[t])
    for v in range(V):
        y = dyT[v]
        for t in range(T):
            y[t] = exp(y[t] - m[t])
            s[t] += y[t]
    for v in range(V):
        y = dyT[v]
        for t in range(T):
            y[t] /= s[t]
    loss = 0.0
    for t in range(T):
        loss -= np.log(dyT[tgt[t], t])
        dyT[tgt[t], t] -= 1
    dby = np.empty(V, dt)
    dy = np.empty((T, V), dt)                              # (T, V)
    for v in range(V):
        acc = 0.0
        for t in range(T):
            acc += dyT[v, t]
            dy[t, v] = dyT[v, t]
        dby[v] = acc
    dWhy = np.empty((V, H), dt)
    gemm_packed(dyT, pack_panels_T(hT.T), dWhy)            # dy^T @ hT
    dh = np.empty((T, H), dt)                              # (T, H): from the outputs
    gemm_packed(dy, pack_panels_T(Why.T), dh)              # dy @ Why
    wp = pack_panels_T(Whh.T)                              # Whh: dhraw @ Whh = Whh^T dhraw
    for t in range(T - 1, -1, -1):
        h = hs[t + 1]
        d = dh[t]
        for u in range(H):
            d[u] *= 1 - h[u] * h[u]                        # dhraw[t]
        if t > 0:
            gemm_rows(dh, t, 1, wp, tile)                  # Whh.T @ dhraw: dhnext
            g = tile[0]
            p = dh[t - 1]
            for u in range(H):
                p[u] += g[u]
    dhT = np.empty((H, T), dt)
    for t in range(T):
        for u in range(H):
            dhT[u, t] = dh[t, u]
    dWhh = np.empty((H, H), dt)
    gemm_packed(dhT, pack_panels_T(hs[:T].T), dWhh)        # sum_t dhraw[t] h[t-1]^T
    dbh = np.zeros(H, dt)
    dWxh = np.zeros((H, V), dt)
    for t in range(T):
        c = ids[t]
        for u in range(H):
            dbh[u] += dh[t, u]
            dWxh[u, c] += dh[t, u]
    for g in (dWxh, dWhh, dWhy):                           # clip to mitigate exploding
        _clip5(g)                                          # gradients
    _clip5(dbh)
    _clip5(dby)
    return loss, dWxh, dWhh, dWhy, dbh, dby, hs[T].copy()


def _loss_fun_kernels(ids, tgt, hprev, Wxh, Whh, Why, bh, by):
    H, V = Wxh.shape
    f = np.ascontiguousarray
    loss, dWxh, dWhh, dWhy, dbh, dby, h_last = _loss_fun_fused(
        ids, tgt, f(hprev.reshape(H)), f(Wxh), f(Whh), f(Why), f(bh.reshape(H)),
        f(by.reshape(V)))
    return loss, dWxh, dWhh, dWhy, dbh.reshape(H, 1), dby.reshape(V, 1), h_last.reshape(H, 1)


def _sample(h, seed_ix, n, params, rng):
    f = "sample"
    H, V, dtype = _check_params(f, *params)
    Wxh, Whh, Why, bh, by = params
    h = _column_state(f, "h", h, H, dtype)
    if not 0 <= seed_ix < V:
        raise ValueError(f"{f}: seed_ix must lie in [0, {V}), got {seed_ix}")
    # One compiled call per character does h = tanh(Wxh[:, ix] + Whh @ h + bh), y = Why @ h + by
    # (the single-layer case of fastrnn's sampling step; weights transposed once here).
    table = np.ascontiguousarray(Wxh.T)                              # (V, H): Wxh @ onehot
    w_ihT = np.zeros((1, H, H), dtype)                               # unused by one layer
    w_hhT = np.ascontiguousarray(Whh.T)[None]                        # (1, H, H)
    b0 = np.zeros((1, H), dtype)
    b_hh = np.ascontiguousarray(bh.reshape(1, H))                    # (1, H)
    dec_wT = np.ascontiguousarray(Why.T)                             # (H, V)
    dec_b = np.ascontiguousarray(by.reshape(V))                      # (V,)
    hb = h.reshape(1, 1, H).copy()           # (L=1, B=1, H), stepped in place: not h itself
    c = np.zeros_like(hb)
    gx = np.empty((1, H), dtype)
    gh = np.empty((1, H), dtype)
    logits = np.empty((1, V), dtype)
    tok = np.empty(1, np.int64)
    tok[0] = seed_ix
    cell = CELL_CODES["rnn_tanh"]
    ixes = []
    for _ in range(n):
        step_packed(tok, cell, table, w_ihT, w_hhT, b0, b_hh, dec_wT, dec_b, hb, c, gx, gh,
                    logits)
        e = np.exp(logits[0])
        p = e / np.sum(e)
        ix = rng.choice(V, p=p)
        tok[0] = ix
        ixes.append(ix)
    return ixes


def lossFun(inputs: Sequence[int], targets: Sequence[int], hprev: np.ndarray
            ) -> Tuple[Any, ...]:
    """inputs, targets are both list of integers; hprev is the (H, 1) initial hidden state.
    Returns the loss, the gradients on the module's parameters (clipped to [-5, 5]) and the
    last hidden state (H, 1)."""
    return _loss_fun(inputs, targets, hprev, Wxh, Whh, Why, bh, by)


def sample(h: np.ndarray, seed_ix: int, n: int) -> List[int]:
    """Sample a sequence of n integers from the model (the module's parameters); h is the
    (H, 1) memory state, seed_ix the seed letter for the first time step. Draws from NumPy's
    global random state, as the original."""
    return _sample(h, seed_ix, n, (Wxh, Whh, Why, bh, by), np.random)


class MinCharRNN:
    """min-char-rnn's model, Adagrad memory and training-loop state.

    ``rng``: where the initial weights and the samples are drawn from: ``None`` is NumPy's
    global random state (as the original script: ``np.random.seed(s)`` first reproduces it), or
    a ``np.random.RandomState``. Attributes: ``Wxh, Whh, Why, bh, by`` and their Adagrad memory
    ``mWxh, mWhh, mWhy, mbh, mby``; ``n`` (iterations done), ``p`` (data pointer), ``hprev``,
    ``smooth_loss``.
    """

    def __init__(self, vocab_size: int, hidden_size: int = 100, seq_length: int = 25,
                 learning_rate: float = 1e-1, rng: Optional[Any] = None) -> None:
        self.vocab_size, self.hidden_size = int(vocab_size), int(hidden_size)
        self.seq_length, self.learning_rate = int(seq_length), learning_rate
        self.rng = np.random if rng is None else rng
        r, H, V = self.rng, self.hidden_size, self.vocab_size
        self.Wxh = r.randn(H, V) * 0.01      # input to hidden
        self.Whh = r.randn(H, H) * 0.01      # hidden to hidden
        self.Why = r.randn(V, H) * 0.01      # hidden to output
        self.bh = np.zeros((H, 1))           # hidden bias
        self.by = np.zeros((V, 1))           # output bias
        for name in _PARAMS:                 # memory variables for Adagrad
            setattr(self, "m" + name, np.zeros_like(getattr(self, name)))
        self.n, self.p = 0, 0
        self.hprev = np.zeros((H, 1))
        self.smooth_loss = -np.log(1.0 / V) * self.seq_length   # loss at iteration 0

    @property
    def params(self) -> List[np.ndarray]:
        return [self.Wxh, self.Whh, self.Why, self.bh, self.by]

    @property
    def memory(self) -> List[np.ndarray]:
        return [self.mWxh, self.mWhh, self.mWhy, self.mbh, self.mby]

    def lossFun(self, inputs: Sequence[int], targets: Sequence[int], hprev: np.ndarray
                ) -> Tuple[Any, ...]:
        """As the module's ``lossFun``, on this model's parameters."""
        return _loss_fun(inputs, targets, hprev, *self.params)

    def sample(self, h: np.ndarray, seed_ix: int, n: int) -> List[int]:
        """As the module's ``sample``, on this model's parameters and ``self.rng``."""
        return _sample(h, seed_ix, n, self.params, self.rng)

    def update(self, dWxh: np.ndarray, dWhh: np.ndarray, dWhy: np.ndarray, dbh: np.ndarray,
               dby: np.ndarray) -> None:
        """The original's Adagrad step: mem += d * d; param += -lr * d / sqrt(mem + 1e-8)."""
        for param, dparam, mem in zip(self.params, (dWxh, dWhh, dWhy, dbh, dby), self.memory):
            mem += dparam * dparam
            param += -self.learning_rate * dparam / np.sqrt(mem + 1e-8)

    def train(self, data: str, char_to_ix: Dict[str, int], ix_to_char: Dict[int, str],
              iters: Optional[int] = None, print_every: int = 100, sample_every: int = 100,
              sample_length: int = 200, out: Optional[TextIO] = None) -> float:
        """The original training loop over the string ``data``, continuing from the current
        state (``n``, ``p``, ``hprev``); stops after ``iters`` more iterations (``None``: runs
        forever, as the original). Prints samples and ``iter %d, loss: %f`` to ``out``
        (default stdout). Returns the smoothed loss."""
        out = sys.stdout if out is None else out
        sl = self.seq_length
        if len(data) < sl + 2:
            raise ValueError(f"data must hold at least seq_length + 2 = {sl + 2} characters, "
                             f"got {len(data)}")
        stop = None if iters is None else self.n + int(iters)
        while stop is None or self.n < stop:
            # prepare inputs (we're sweeping from left to right in steps seq_length long)
            if self.p + sl + 1 >= len(data) or self.n == 0:
                self.hprev = np.zeros((self.hidden_size, 1))   # reset RNN memory
                self.p = 0                                       # go from start of data
            inputs = [char_to_ix[ch] for ch in data[self.p:self.p + sl]]
            targets = [char_to_ix[ch] for ch in data[self.p + 1:self.p + sl + 1]]
            # sample from the model now and then
            if sample_every and self.n % sample_every == 0:
                sample_ix = self.sample(self.hprev, inputs[0], sample_length)
                txt = ''.join(ix_to_char[ix] for ix in sample_ix)
                print('----\n %s \n----' % (txt, ), file=out)
            # forward seq_length characters through the net and fetch gradient
            loss, dWxh, dWhh, dWhy, dbh, dby, self.hprev = self.lossFun(inputs, targets,
                                                                        self.hprev)
            self.smooth_loss = self.smooth_loss * 0.999 + loss * 0.001
            if print_every and self.n % print_every == 0:
                print('iter %d, loss: %f' % (self.n, self.smooth_loss), file=out)
            self.update(dWxh, dWhh, dWhy, dbh, dby)
            self.p += sl                                         # move data pointer
            self.n += 1                                          # iteration counter
        return self.smooth_loss


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m fastrnn.compat.minchar",
        description="min-char-rnn's training loop (hidden 100, sequence 25, Adagrad lr 0.1) "
                    "on fastrnn kernels.")
    ap.add_argument("input", nargs="?", default="input.txt",
                    help="a plain text file (default: input.txt)")
    ap.add_argument("--iters", type=int, default=None,
                    help="stop after this many iterations (default: run forever, as the "
                         "original)")
    ap.add_argument("--seed", type=int, default=None,
                    help="np.random.seed before initialising (default: unseeded)")
    ap.add_argument("--hidden", type=int, default=100, help="hidden size (default: 100)")
    ap.add_argument("--seq-length", type=int, default=25, help="steps unrolled (default: 25)")
    ap.add_argument("--lr", type=float, default=1e-1, help="learning rate (default: 0.1)")
    args = ap.parse_args(argv)
    with open(args.input, "r") as fh:
        data = fh.read()                 # should be simple plain text file
    chars = sorted(set(data))
    data_size, vocab_size = len(data), len(chars)
    print('data has %d characters, %d unique.' % (data_size, vocab_size))
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    ix_to_char = {i: ch for i, ch in enumerate(chars)}
    if args.seed is not None:
        np.random.seed(args.seed)
    model = MinCharRNN(vocab_size, args.hidden, args.seq_length, args.lr)
    try:
        model.train(data, char_to_ix, ix_to_char, iters=args.iters)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
