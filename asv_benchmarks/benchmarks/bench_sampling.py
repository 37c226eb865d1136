"""Generating 1000 characters with B=1 from the default char model (2 layers, H=128):
one compiled call per character (``model.sampler()``) plus softmax sampling with a seeded
NumPy Generator, as ``fastrnn sample`` does."""

import numpy as np

from .common import TIMEOUT, TIMER, char_model

N_CHARS = 1000


def generate(model, n, seed=0):
    """n token ids sampled from the model, starting from token 0. -> int64 (n,)"""
    rng = np.random.default_rng(seed)
    s = model.sampler()
    out = np.empty(n, np.int64)
    tok = 0
    for i in range(n):
        z = s.step(np.array([tok]))[0].astype(np.float64)          # (V,) logits
        p = np.exp(z - z.max())
        tok = int(rng.choice(z.size, p=p / p.sum()))
        out[i] = tok
    return out


class Sampling:
    params = ["lstm", "gru", "rnn"]
    param_names = ["cell"]
    timer = TIMER
    timeout = TIMEOUT
    N_CHARS = N_CHARS

    def setup(self, cell):
        self.model, _ = char_model(cell)
        generate(self.model, 2)                 # compiles / loads the stack-step kernel

    def time_generate_1000_chars(self, cell):
        generate(self.model, self.N_CHARS)
