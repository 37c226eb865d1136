"""Train a small character-level LSTM with the pure-NumPy reference, then sample from it.

    python examples/char_lstm_reference.py [corpus.txt] [--iters N]

With no corpus it trains on the source of Python's ``textwrap`` module (always installed).
Everything here is the public reference API: lstm_forward / lstm_backward,
softmax_cross_entropy and lstm_step_forward for sampling.
"""

import argparse
import inspect
import textwrap

import numpy as np

from fastrnn.reference import (lstm_backward, lstm_forward, lstm_step_forward,
                               softmax_cross_entropy)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("corpus", nargs="?")
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--seq", type=int, default=25)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    text = open(a.corpus, encoding="utf-8").read() if a.corpus else inspect.getsource(textwrap)
    chars = sorted(set(text))
    V, H, T, B = len(chars), a.hidden, a.seq, a.batch
    ids = np.array([chars.index(ch) for ch in text], dtype=np.int64)
    rng = np.random.default_rng(a.seed)
    params = {
        "emb": rng.normal(0, 0.1, (V, V)),                       # one-hot input = identity rows
        "weight_ih": rng.uniform(-0.08, 0.08, (4 * H, V)),
        "weight_hh": rng.uniform(-0.08, 0.08, (4 * H, H)),
        "bias_ih": np.zeros(4 * H), "bias_hh": np.zeros(4 * H),
        "W_out": rng.uniform(-0.08, 0.08, (V, H)), "b_out": np.zeros(V),
    }
    params["bias_ih"][H:2 * H] = 1.0                              # forget-gate bias
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v2 = {k: np.zeros_like(v) for k, v in params.items()}
    eye = np.eye(V)
    stream_len = (len(ids) - 1) // B
    starts = np.arange(B) * stream_len
    h = np.zeros((B, H)); c = np.zeros((B, H))
    pos = 0
    for it in range(1, a.iters + 1):
        if pos + T > stream_len:
            pos = 0; h[:] = 0; c[:] = 0
        idx = starts[None, :] + pos + np.arange(T)[:, None]      # (T, B)
        x = eye[ids[idx]]                                         # (T, B, V) one-hot
        y = ids[idx + 1]                                          # (T, B)
        hs, c_n, cache = lstm_forward(x, h, c, params["weight_ih"], params["weight_hh"],
                                      params["bias_ih"], params["bias_hh"])
        logits = hs @ params["W_out"].T + params["b_out"]         # (T, B, V)
        loss, dlogits = softmax_cross_entropy(logits, y)
        grads = {"W_out": dlogits.reshape(-1, V).T @ hs.reshape(-1, H),
                 "b_out": dlogits.sum(axis=(0, 1))}
        dhs = dlogits @ params["W_out"]
        _, _, _, grads["weight_ih"], grads["weight_hh"], grads["bias_ih"], grads["bias_hh"] = \
            lstm_backward(dhs, cache)
        for k, g in grads.items():                                # Adam, clipped
            g = np.clip(g, -5, 5)
            m[k] = 0.9 * m[k] + 0.1 * g
            v2[k] = 0.999 * v2[k] + 0.001 * g * g
            params[k] -= 2e-3 * (m[k] / (1 - 0.9 ** it)) / (np.sqrt(v2[k] / (1 - 0.999 ** it)) + 1e-8)
        h, c, pos = hs[-1].copy(), c_n.copy(), pos + T
        if it % 50 == 0 or it == 1:
            print(f"iter {it:5d}  loss {loss:.4f}  ({loss / np.log(2):.3f} bits/char)")
    # sample
    hh, cc = np.zeros((1, H)), np.zeros((1, H))
    ix, out = ids[0], []
    for _ in range(400):
        hh, cc, _ = lstm_step_forward(eye[[ix]], hh, cc, params["weight_ih"], params["weight_hh"],
                                      params["bias_ih"], params["bias_hh"])
        z = (hh @ params["W_out"].T + params["b_out"])[0]
        p = np.exp(z - z.max()); p /= p.sum()
        ix = rng.choice(V, p=p)
        out.append(chars[ix])
    print("----\n" + "".join(out) + "\n----")


if __name__ == "__main__":
    main()
