"""Karpathy's min-char-rnn on a text file, through ``fastrnn.compat.minchar``: the original's
model (a 100-unit vanilla RNN), sequence length 25, Adagrad with learning rate 0.1 and its
training loop and printout, with ``lossFun`` running on fastrnn kernels.

    python examples/min_char_rnn.py [input.txt] [--iters 5000] [--seed 0]

Without a file it trains on fastrnn's README.md. At the end it prints the speed (iterations
per second) and a 400-character sample. ``python -m fastrnn.compat.minchar input.txt`` is the
bare original loop.
"""

import argparse
import os
import time

import numpy as np

from fastrnn.compat.minchar import MinCharRNN

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")


def train(path=README, iters=5000, seed=0, print_every=1000, verbose=True):
    """Returns the smoothed loss after ``iters`` iterations."""
    with open(path, "r") as fh:
        data = fh.read()
    chars = sorted(set(data))
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    ix_to_char = dict(enumerate(chars))
    if verbose:
        print('data has %d characters, %d unique.' % (len(data), len(chars)))
    model = MinCharRNN(len(chars), hidden_size=100, seq_length=25, learning_rate=1e-1,
                       rng=np.random.RandomState(seed))
    log = None if verbose else open(os.devnull, "w")
    t0 = time.perf_counter()
    try:
        loss = model.train(data, char_to_ix, ix_to_char, iters=iters, print_every=print_every,
                           sample_every=print_every, out=log)
    finally:
        if log is not None:
            log.close()
    elapsed = time.perf_counter() - t0
    if verbose:
        print(f"{iters} iterations in {elapsed:.1f} s ({iters / elapsed:.0f} it/s), "
              f"smooth loss {loss:.3f}")
        text = "".join(ix_to_char[i] for i in model.sample(model.hprev, char_to_ix[data[0]], 400))
        print("----\n%s\n----" % text)
    return loss


def main(argv=None):
    ap = argparse.ArgumentParser(description="min-char-rnn on fastrnn.compat.minchar")
    ap.add_argument("input", nargs="?", default=README, help="a plain text file")
    ap.add_argument("--iters", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--print-every", type=int, default=1000)
    args = ap.parse_args(argv)
    train(args.input, args.iters, args.seed, args.print_every)


if __name__ == "__main__":
    main()
