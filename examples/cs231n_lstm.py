"""A cs231n-style LSTM training loop on ``fastrnn.compat.cs231n``: assignment 3's captioning
model (features -> initial hidden state, word embedding, LSTM, temporal affine, masked
temporal softmax loss, Adam) on a toy task that needs no data set. Every "image" is a noisy
feature vector that encodes a short random sentence; the model learns to caption it, then
captions held-out images with the greedy ``lstm_step_forward`` loop.

The only change from a cs231n notebook is the import line:

    from fastrnn.compat.cs231n import *      # was: from cs231n.rnn_layers import *

    python examples/cs231n_lstm.py [--iters 400] [--seed 0]
"""

import argparse
import time

import numpy as np

from fastrnn.compat.cs231n import *  # noqa: F403,F405  (was: from cs231n.rnn_layers import *)

NULL, START, END = 0, 1, 2
WORDS = ["<NULL>", "<START>", "<END>", "a", "red", "green", "dog", "cat", "sits", "runs",
         "on", "under", "the", "mat"]


def make_data(n, max_len=6, noise=0.1, seed=0):
    """features (n, max_len * W) and captions (n, max_len + 2): <START> w1 .. wL <END> <NULL>.."""
    rng = np.random.default_rng(seed)
    W = len(WORDS) - 3
    lens = rng.integers(2, max_len + 1, n)
    words = rng.integers(3, len(WORDS), (n, max_len))
    captions = np.full((n, max_len + 2), NULL)
    captions[:, 0] = START
    features = noise * rng.standard_normal((n, max_len * W))
    for i, L in enumerate(lens):
        captions[i, 1:1 + L] = words[i, :L]
        captions[i, 1 + L] = END
        features[i, np.arange(L) * W + words[i, :L] - 3] += 1.0
    return features, captions


def decode(caption):
    out = []
    for w in caption:
        if w == END:
            break
        if w not in (NULL, START):
            out.append(WORDS[w])
    return " ".join(out)


class CaptioningLSTM:
    """cs231n's CaptioningRNN with cell_type='lstm'."""

    def __init__(self, input_dim, wordvec_dim=32, hidden_dim=64, vocab_size=len(WORDS), seed=0):
        rng = np.random.default_rng(seed)
        D, H, V = wordvec_dim, hidden_dim, vocab_size
        self.params = {
            "W_embed": rng.standard_normal((V, D)) / 100,
            "W_proj": rng.standard_normal((input_dim, H)) / np.sqrt(input_dim),
            "b_proj": np.zeros(H),
            "Wx": rng.standard_normal((D, 4 * H)) / np.sqrt(D),
            "Wh": rng.standard_normal((H, 4 * H)) / np.sqrt(H),
            "b": np.zeros(4 * H),
            "W_vocab": rng.standard_normal((H, V)) / np.sqrt(H),
            "b_vocab": np.zeros(V),
        }

    def loss(self, features, captions):
        p = self.params
        captions_in, captions_out = captions[:, :-1], captions[:, 1:]
        mask = captions_out != NULL
        h0 = features.dot(p["W_proj"]) + p["b_proj"]                        # (N, H)
        x, cache_embed = word_embedding_forward(captions_in, p["W_embed"])  # (N, T, D)
        h, cache_lstm = lstm_forward(x, h0, p["Wx"], p["Wh"], p["b"])       # (N, T, H)
        scores, cache_vocab = temporal_affine_forward(h, p["W_vocab"], p["b_vocab"])
        loss, dscores = temporal_softmax_loss(scores, captions_out, mask)
        grads = {}
        dh, grads["W_vocab"], grads["b_vocab"] = temporal_affine_backward(dscores, cache_vocab)
        dx, dh0, grads["Wx"], grads["Wh"], grads["b"] = lstm_backward(dh, cache_lstm)
        grads["W_embed"] = word_embedding_backward(dx, cache_embed)
        grads["W_proj"] = features.T.dot(dh0)
        grads["b_proj"] = dh0.sum(axis=0)
        return loss, grads

    def sample(self, features, max_length=8):
        p = self.params
        N = features.shape[0]
        captions = np.full((N, max_length), NULL)
        h = features.dot(p["W_proj"]) + p["b_proj"]
        c = np.zeros_like(h)
        word = np.full(N, START)
        for t in range(max_length):
            x = p["W_embed"][word]                                           # (N, D)
            h, c, _ = lstm_step_forward(x, h, c, p["Wx"], p["Wh"], p["b"])
            word = np.argmax(h.dot(p["W_vocab"]) + p["b_vocab"], axis=1)
            captions[:, t] = word
        return captions


def adam(w, dw, config):
    """cs231n's optim.adam (bias-corrected first and second moments)."""
    config.setdefault("learning_rate", 5e-3)
    config.setdefault("m", np.zeros_like(w))
    config.setdefault("v", np.zeros_like(w))
    config.setdefault("t", 0)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    config["t"] += 1
    config["m"] = beta1 * config["m"] + (1 - beta1) * dw
    config["v"] = beta2 * config["v"] + (1 - beta2) * dw ** 2
    mt = config["m"] / (1 - beta1 ** config["t"])
    vt = config["v"] / (1 - beta2 ** config["t"])
    return w - config["learning_rate"] * mt / (np.sqrt(vt) + eps), config


def train(iters=400, batch_size=50, print_every=50, seed=0, verbose=True):
    """Trains on 5000 captions, returns the word accuracy of greedy captions of 200 new
    images (every word up to and including <END>)."""
    features, captions = make_data(5000, seed=seed)
    val_features, val_captions = make_data(200, seed=seed + 1)
    model = CaptioningLSTM(features.shape[1], seed=seed)
    configs = {k: {} for k in model.params}
    rng = np.random.default_rng(seed + 2)
    t0 = time.perf_counter()
    for it in range(iters):
        idx = rng.choice(len(features), batch_size, replace=False)
        loss, grads = model.loss(features[idx], captions[idx])
        for k, w in model.params.items():
            model.params[k], configs[k] = adam(w, grads[k], configs[k])
        if verbose and (it % print_every == 0 or it == iters - 1):
            print("(Iteration %d / %d) loss: %f" % (it + 1, iters, loss))
    sampled = model.sample(val_features, max_length=val_captions.shape[1] - 1)
    truth = val_captions[:, 1:]
    counted = np.cumsum(truth == END, axis=1) - (truth == END) == 0     # up to <END>
    accuracy = float(np.mean((sampled == truth)[counted]))
    if verbose:
        print(f"{iters} iterations in {time.perf_counter() - t0:.1f} s")
        for i in range(3):
            print(f"truth:  {decode(truth[i])}\nsample: {decode(sampled[i])}")
        print(f"held-out word accuracy: {accuracy:.1%}")
    return accuracy


def main(argv=None):
    ap = argparse.ArgumentParser(description="cs231n-style LSTM captioning on fastrnn.compat")
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    train(args.iters, seed=args.seed)


if __name__ == "__main__":
    main()
