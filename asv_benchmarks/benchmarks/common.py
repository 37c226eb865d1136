"""Helpers shared by the benchmark modules (no benchmarks here)."""

import os
import time

import numpy as np

# Wall-clock time: the kernels and BLAS run on several threads, so CPU time would overstate
# the cost of parallel code (it adds up the time of every thread).
TIMER = time.perf_counter

# asv's timeout (s) for classes whose setup may compile kernels: compilation is kept out of
# the timings by the warm-up call in setup, but counts against the timeout, and in a fresh
# environment (asv continuous) every kernel starts uncompiled.
TIMEOUT = 300

# The default character model of ``fastrnn train``: 2-layer LSTM, H=128, T=50, B=50, RMSprop
# (alpha 0.95), lr 8e-3 (the peak of its schedule), gradient clipping at 5.
VOCAB, HIDDEN, LAYERS, SEQ, BATCH = 65, 128, 2, 50, 50


def cell_problem(cell, T, B, H, dtype, seed=0):
    """Inputs of one cell's sequence forward/backward, D = H:
    -> x (T, B, H), states ((B, H),) or ((B, H), (B, H)), params (w_ih, w_hh, b_ih, b_hh),
    dhs (T, B, H)."""
    from fastrnn import cells

    return cells.random_problem(cells.get(cell), T, B, H, H, dtype, seed)


def char_batch(T=SEQ, B=BATCH, V=VOCAB, seed=0):
    """Token ids and next-token targets, int64 (T, B) each."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, (T + 1, B))
    return ids[:-1].copy(), ids[1:].copy()


def char_model(cell="lstm", hidden=HIDDEN, layers=LAYERS, vocab=VOCAB):
    """The default char model and its optimizer (``fastrnn train``'s defaults)."""
    from fastrnn import nn, optim

    m = nn.CharRNN(vocab, hidden, layers, cell)
    opt = optim.RMSprop(m.parameters(), lr=8e-3, alpha=0.95)
    return m, opt


def train_step(m, opt, ids, y):
    """One full training step: forward, loss, backward, clipping, optimizer. -> loss"""
    from fastrnn import optim

    m.zero_grad()
    loss, state = m.loss_and_grad(ids, y)
    optim.clip_grad_norm_(m.parameters(), 5.0)
    opt.step()
    return loss


_WORD_SEED = 12345


def _words(n_words=400, seed=_WORD_SEED):
    """A fixed pseudo-language: words built from syllables, a few with non-ASCII letters so
    the UTF-8 path of the encoder is exercised."""
    rng = np.random.default_rng(seed)
    syllables = ["ka", "to", "ri", "men", "sa", "lo", "ve", "dun", "pi", "ar", "el", "os",
                 "qu", "ith", "ny", "bé", "zo", "ça", "fu", "gre"]
    words = []
    for _ in range(n_words):
        k = rng.integers(1, 4)
        words.append("".join(syllables[i] for i in rng.integers(0, len(syllables), k)))
    return words


def generated_text(n_chars, seed=0):
    """Deterministic text of about ``n_chars`` characters with learnable structure: Zipf-
    distributed words, sentences with capitals and punctuation, ~70-character lines."""
    words = _words()
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(words) + 1)
    n = max(1, n_chars // 5)
    idx = rng.choice(len(words), size=n, p=p / p.sum())
    ends = rng.random(n)
    out, line, sentence_start = [], 0, True
    for i, e in zip(idx.tolist(), ends.tolist()):
        w = words[i]
        if sentence_start:
            w = w[0].upper() + w[1:]
        sentence_start = e < 0.1
        w += ". " if sentence_start else (", " if e < 0.15 else " ")
        if line + len(w) > 70:
            out.append("\n")
            line = 0
        out.append(w)
        line += len(w)
    return "".join(out)[:n_chars] + "\n"


def write_corpus(path, n_bytes, seed=0, block_chars=1 << 20):
    """Write a generated UTF-8 corpus of about ``n_bytes`` bytes to ``path`` without holding
    more than one ~1 MB block in memory (the block is repeated). -> bytes written"""
    block = generated_text(min(block_chars, n_bytes), seed).encode("utf-8")
    written = 0
    with open(path, "wb") as f:
        while written < n_bytes:
            piece = block[:n_bytes - written]
            if len(piece) < len(block):          # never cut a multi-byte character in two
                piece = piece.decode("utf-8", "ignore").encode("utf-8")
            f.write(piece)
            written += len(piece)
            if not piece:
                break
    return written


def env_without_numba_cache(**extra):
    """os.environ for a child process, without an inherited NUMBA_CACHE_DIR, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(extra)
    return env
