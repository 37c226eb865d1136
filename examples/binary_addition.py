"""Binary addition with a tiny RNN, after Peter Roelants' "How to implement a recurrent neural
network" (part 2): two 7-bit numbers enter least significant bit first, the network emits the
bits of their sum. 2000 training samples, 3 hidden units with tanh and a learnable initial
state, logistic output, cross-entropy, RMSprop with Nesterov momentum (lmbd 0.5, learning
rate 0.05, momentum 0.8), mini-batches of 100, 5 epochs.

    python examples/binary_addition.py
"""

import numpy as np

from fastrnn import nn, optim


def create_dataset(n, bits=7, seed=0):
    """Pairs (a, b) with a + b < 2**bits: X (n, bits, 2) and T (n, bits, 1), LSB first."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2 ** (bits - 1), n)
    b = rng.integers(0, 2 ** (bits - 1), n)
    to_bits = lambda v: (v[:, None] >> np.arange(bits)) & 1  # noqa: E731
    X = np.stack([to_bits(a), to_bits(b)], axis=2).astype(np.float64)
    T = to_bits(a + b)[:, :, None].astype(np.float64)
    return X, T


class AdderRNN:
    def __init__(self, hidden=3, seed=1):
        self.rnn = nn.Recurrent("rnn", 2, hidden, learn_initial_state=True, batch_first=True,
                                init="xavier", dtype=np.float64, seed=seed)
        self.out = nn.Linear(hidden, 1, dtype=np.float64, seed=seed + 1, init="pytorch")
        self.params = self.rnn.parameters() + self.out.parameters()

    def forward(self, X):
        hs, _, c1 = self.rnn.forward(X)
        z, c2 = self.out.forward(hs)
        return 0.5 * np.tanh(0.5 * z) + 0.5, (c1, c2)           # (N, T, 1) probabilities

    def loss_and_grad(self, X, T):
        for p in self.params:
            p.grad[...] = 0
        Y, (c1, c2) = self.forward(X)
        eps = 1e-12
        loss = -np.mean(T * np.log(Y + eps) + (1 - T) * np.log(1 - Y + eps))
        dz = (Y - T) / Y.size                                    # through the logistic
        self.rnn.backward(self.out.backward(dz, c2), c1)
        return loss


def train(epochs=5, batch=100, seed=1, verbose=True):
    X, T = create_dataset(2000, seed=seed)
    model = AdderRNN(seed=seed)
    opt = optim.RMSpropNesterov(model.params, learning_rate=0.05, lmbd=0.5, momentum_term=0.8,
                                eps=1e-6)
    for epoch in range(epochs):
        for i in range(0, len(X), batch):
            opt.lookahead()
            loss = model.loss_and_grad(X[i:i + batch], T[i:i + batch])
            opt.step()
        if verbose:
            print(f"epoch {epoch + 1}: loss {loss:.4f}")
    Xt, Tt = create_dataset(100, seed=seed + 100)
    Yt = model.forward(Xt)[0] > 0.5
    accuracy = float(np.mean(np.all(Yt == (Tt > 0.5), axis=(1, 2))))
    if verbose:
        for k in range(5):
            bits = lambda v: "".join(str(int(b)) for b in v)  # noqa: E731
            val = lambda v: int(sum(int(b) << i for i, b in enumerate(v)))  # noqa: E731
            a, b, y, t = Xt[k, :, 0], Xt[k, :, 1], Yt[k, :, 0], Tt[k, :, 0]
            print(f"x1:   {bits(a)} {val(a):4d}\nx2: + {bits(b)} {val(b):4d}\n"
                  f"      -------   --\n"
                  f"y:  = {bits(y)} {val(y):4d}\nt:  = {bits(t)} {val(t):4d}\n")
        print(f"test accuracy: {accuracy:.0%} of 100 sums exactly right")
    return accuracy


if __name__ == "__main__":
    train()
