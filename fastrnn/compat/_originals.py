"""The plain-NumPy code that ``fastrnn.compat`` replaces, transcribed from the published
tutorials: the baselines ``fastrnn.compat.speed`` (``fastrnn bench --compat``) and the asv
suite's ``bench_compat`` time the drop-ins against. Each keeps the tutorial's names, loops and
arithmetic (the "RNN from scratch" code with the fixes its drop-in lists, see there), so both
sides compute the same thing: ``speed.run`` reports their largest relative difference on every
case, and the tests require it to be tiny.

- cs231n's ``rnn_layers.py``: ``np_sigmoid``, ``np_rnn_forward`` / ``np_rnn_backward``,
  ``np_lstm_forward`` / ``np_lstm_backward``;
- Karpathy's min-char-rnn: ``np_lossFun``;
- the "U, V, W" tutorial: ``np_softmax``, ``np_bptt``;
- "RNN from scratch": ``np_rfs_forward``, ``np_rfs_backprop``;
- the binary-addition RNN: ``np_RecurrentStateUnfold``, ``np_RnnBinaryAdder`` and one step of
  its training loop, ``np_rmsprop_nesterov_step``.
"""

import itertools

import numpy as np


def np_sigmoid(x):
    pos_mask = (x >= 0)
    neg_mask = (x < 0)
    z = np.zeros_like(x)
    z[pos_mask] = np.exp(-x[pos_mask])
    z[neg_mask] = np.exp(x[neg_mask])
    top = np.ones_like(x)
    top[neg_mask] = z[neg_mask]
    return top / (1 + z)


def np_rnn_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]))
    prev_h, caches = h0, []
    for t in range(T):
        next_h = np.tanh(x[:, t, :].dot(Wx) + prev_h.dot(Wh) + b)
        caches.append((x[:, t, :], prev_h, next_h))
        h[:, t, :] = prev_h = next_h
    return h, (caches, Wx, Wh)


def np_rnn_backward(dh, cache):
    caches, Wx, Wh = cache
    N, T, H = dh.shape
    dx = np.zeros((N, T, Wx.shape[0]))
    dprev_h, dWx, dWh, db = np.zeros((N, H)), np.zeros_like(Wx), np.zeros_like(Wh), 0
    for t in reversed(range(T)):
        x, prev_h, next_h = caches[t]
        da = (dh[:, t, :] + dprev_h) * (1 - next_h ** 2)
        dx[:, t, :] = da.dot(Wx.T)
        dprev_h = da.dot(Wh.T)
        dWx += x.T.dot(da)
        dWh += prev_h.T.dot(da)
        db = db + da.sum(axis=0)
    return dx, dprev_h, dWx, dWh, db


def np_lstm_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    H = h0.shape[1]
    h = np.zeros((N, T, H))
    prev_h, prev_c, caches = h0, np.zeros_like(h0), []
    for t in range(T):
        a = x[:, t, :].dot(Wx) + prev_h.dot(Wh) + b
        i, f, o = np_sigmoid(a[:, :H]), np_sigmoid(a[:, H:2 * H]), np_sigmoid(a[:, 2 * H:3 * H])
        g = np.tanh(a[:, 3 * H:])
        next_c = f * prev_c + i * g
        next_h = o * np.tanh(next_c)
        caches.append((x[:, t, :], prev_h, prev_c, i, f, o, g, next_c))
        h[:, t, :] = prev_h = next_h
        prev_c = next_c
    return h, (caches, Wx, Wh)


def np_lstm_backward(dh, cache):
    caches, Wx, Wh = cache
    N, T, H = dh.shape
    dx = np.zeros((N, T, Wx.shape[0]))
    dprev_h, dprev_c = np.zeros((N, H)), np.zeros((N, H))
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), 0
    for t in reversed(range(T)):
        x, prev_h, prev_c, i, f, o, g, next_c = caches[t]
        dnext_h = dh[:, t, :] + dprev_h
        tc = np.tanh(next_c)
        do = dnext_h * tc
        dc = dprev_c + dnext_h * o * (1 - tc ** 2)
        da = np.hstack([dc * g * i * (1 - i), dc * prev_c * f * (1 - f), do * o * (1 - o),
                        dc * i * (1 - g ** 2)])
        dprev_c = dc * f
        dx[:, t, :] = da.dot(Wx.T)
        dprev_h = da.dot(Wh.T)
        dWx += x.T.dot(da)
        dWh += prev_h.T.dot(da)
        db = db + da.sum(axis=0)
    return dx, dprev_h, dWx, dWh, db


def np_lossFun(inputs, targets, hprev, Wxh, Whh, Why, bh, by):
    vocab_size = Wxh.shape[1]
    xs, hs, ps = {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1))
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


def np_softmax(x):
    xt = np.exp(x - np.max(x))
    return xt / np.sum(xt)


def np_bptt(U, V, W, bptt_truncate, x, y):
    hidden_dim, word_dim = U.shape
    T = len(y)
    s = np.zeros((T + 1, hidden_dim))
    o = np.zeros((T, word_dim))
    for t in np.arange(T):
        s[t] = np.tanh(U[:, x[t]] + W.dot(s[t - 1]))
        o[t] = np_softmax(V.dot(s[t]))
    dLdU, dLdV, dLdW = np.zeros(U.shape), np.zeros(V.shape), np.zeros(W.shape)
    delta_o = o
    delta_o[np.arange(len(y)), y] -= 1.
    for t in np.arange(T)[::-1]:
        dLdV += np.outer(delta_o[t], s[t].T)
        delta_t = V.T.dot(delta_o[t]) * (1 - (s[t] ** 2))
        for bptt_step in np.arange(max(0, t - bptt_truncate), t + 1)[::-1]:
            dLdW += np.outer(delta_t, s[bptt_step - 1])
            dLdU[:, x[bptt_step]] += delta_t
            delta_t = W.T.dot(delta_t) * (1 - s[bptt_step - 1] ** 2)
    return [dLdU, dLdV, dLdW]


# "RNN from scratch" (shared/seeds/000): the printed code with the fixes fastrnn.compat.
# rnn_from_scratch lists (true previous states, each look-back step's own embedding, no
# globals); multiplication_backward without np.asmatrix (deprecated; np.dot is faster too).


def np_rfs_forward(T, embeddings, U, W, prev_memory, V):
    def tanh_activation(Z):
        return (np.exp(Z) - np.exp(-Z)) / (np.exp(Z) + np.exp(-Z))

    def softmax_activation(Z):
        e_x = np.exp(Z - np.max(Z))
        return e_x / e_x.sum(axis=0)

    outputs, memory, prev = [], {"ht-1": prev_memory}, prev_memory
    for t in range(T):
        W_frd = np.dot(W, prev)
        U_frd = np.dot(U, embeddings[t])
        sum_s = W_frd + U_frd
        ht_activated = tanh_activation(sum_s)
        yt_unactivated = np.asarray(np.dot(V, tanh_activation(sum_s)))
        yt_activated = softmax_activation(yt_unactivated)
        outputs.append(yt_activated)
        memory["ht" + str(t)] = ht_activated
        memory["yt" + str(t)] = yt_activated
        memory["params" + str(t)] = [[W_frd, U_frd, sum_s, yt_unactivated]]
        prev = ht_activated
    return outputs, memory


def np_rfs_backprop(embeddings, memory, output_t, dU, dV, dW, bptt_truncate, U, V, W):
    def delta_cross_entropy(predicted_output, original_t_output):
        grad = predicted_output.copy()
        for i, l in enumerate(original_t_output):
            if l == 1:
                grad[i] -= 1
        return grad

    def multiplication_backward(weights, x, dz):
        return np.dot(dz, np.transpose(x)), np.dot(np.transpose(weights), dz)

    def single_backprop(X, ht_activated, dLo, forward_params_t, diff_s, prev_s):
        W_frd, U_frd, ht_unactivated, _ = forward_params_t[0]
        dV, dsv = multiplication_backward(V, ht_activated, dLo)
        ds = np.add(dsv, diff_s)
        dadd = (1.0 - np.square(np.tanh(ht_unactivated))) * ds
        dmulw, dmulu = dadd * np.ones_like(U_frd), dadd * np.ones_like(W_frd)
        dW, dprev_s = multiplication_backward(W, prev_s, dmulw)
        dU, dx = multiplication_backward(U, X, dmulu)
        return (dprev_s, dU, dW, dV)

    hidden_dim, output_dim = W.shape[0], V.shape[0]
    T = sum(1 for key in memory if key.startswith("yt"))
    for t in range(T):
        dLo = delta_cross_entropy(memory["yt" + str(t)], output_t[t])
        dprev_s, dU_t, dW_t, dV_t = single_backprop(
            embeddings[t], memory["ht" + str(t)], dLo, memory["params" + str(t)],
            np.zeros((hidden_dim, 1)), memory["ht" + str(t - 1)])
        dLo = np.zeros((output_dim, 1))
        for i in range(t - 1, max(-1, t - bptt_truncate), -1):
            dprev_s, dU_i, dW_i, dV_i = single_backprop(
                embeddings[i], memory["ht" + str(i)], dLo, memory["params" + str(i)], dprev_s,
                memory["ht" + str(i - 1)])
            dU_t += dU_i
            dW_t += dW_i
        dV += dV_t
        dU += dU_t
        dW += dW_t
    return (dU, dW, dV)


# The binary-addition RNN (shared/seeds/003): its RecurrentStateUnfold and RnnBinaryAdder as
# printed, over the module's TensorLinear / LogisticClassifier / RecurrentStateUpdate (the
# printed NumPy code, unchanged there).


class np_RecurrentStateUnfold:
    def __init__(self, W, b, S0, nbTimesteps):
        from fastrnn.compat.binary_adder import RecurrentStateUpdate

        self.W, self.b, self.S0, self.nbTimesteps = W, b, S0, nbTimesteps
        self.stateUpdate = RecurrentStateUpdate(W.shape[0], W, b)

    def forward(self, X):
        S = np.zeros((X.shape[0], X.shape[1] + 1, self.W.shape[0]))
        S[:, 0, :] = self.S0
        for k in range(self.nbTimesteps):
            S[:, k + 1, :] = self.stateUpdate.forward(X[:, k, :], S[:, k, :])
        return S

    def backward(self, X, S, gY):
        gSk = np.zeros_like(gY[:, self.nbTimesteps - 1, :])
        gZ = np.zeros_like(X)
        gWSum = np.zeros_like(self.W)
        gBSum = np.zeros_like(self.b)
        for k in range(self.nbTimesteps - 1, -1, -1):
            gSk += gY[:, k, :]
            gZ[:, k, :], gSk, gW, gB = self.stateUpdate.backward(S[:, k, :], S[:, k + 1, :], gSk)
            gWSum += gW
            gBSum += gB
        return gZ, gWSum, gBSum, np.sum(gSk, axis=0)


class np_RnnBinaryAdder:
    """The printed RnnBinaryAdder with copies of ``model``'s parameters."""

    def __init__(self, model):
        from fastrnn.compat.binary_adder import LogisticClassifier, TensorLinear

        c = np.copy
        self.sequence_len = model.sequence_len
        Win, Wout = c(model.tensorInput.W), c(model.tensorOutput.W)
        self.tensorInput = TensorLinear(*Win.shape, 3, Win, c(model.tensorInput.b))
        u = model.rnnUnfold
        self.rnnUnfold = np_RecurrentStateUnfold(c(u.W), c(u.b), c(u.S0), u.nbTimesteps)
        self.tensorOutput = TensorLinear(*Wout.shape, 3, Wout, c(model.tensorOutput.b))
        self.classifier = LogisticClassifier()

    def forward(self, X):
        recIn = self.tensorInput.forward(X)
        S = self.rnnUnfold.forward(recIn)
        Z = self.tensorOutput.forward(S[:, 1:self.sequence_len + 1, :])
        return recIn, S, Z, self.classifier.forward(Z)

    def backward(self, X, Y, recIn, S, T):
        gZ = self.classifier.backward(Y, T)
        gRecOut, gWout, gBout = self.tensorOutput.backward(S[:, 1:self.sequence_len + 1, :], gZ)
        gRnnIn, gWrec, gBrec, gS0 = self.rnnUnfold.backward(recIn, S, gRecOut)
        gX, gWin, gBin = self.tensorInput.backward(X, gRnnIn)
        return gWout, gBout, gWrec, gBrec, gWin, gBin, gS0

    def getOutput(self, X):
        return self.forward(X)[3]

    def getParamGrads(self, X, T):
        recIn, S, Z, Y = self.forward(X)
        gWout, gBout, gWrec, gBrec, gWin, gBin, gS0 = self.backward(X, Y, recIn, S, T)
        return [g for g in itertools.chain(
            np.nditer(gS0), np.nditer(gWin), np.nditer(gBin), np.nditer(gWrec),
            np.nditer(gBrec), np.nditer(gWout), np.nditer(gBout))]

    def loss(self, Y, T):
        return self.classifier.loss(Y, T)

    def get_params_iter(self):
        u = self.rnnUnfold
        return itertools.chain(*(np.nditer(a, op_flags=['readwrite']) for a in (
            u.S0, self.tensorInput.W, self.tensorInput.b, u.W, u.b, self.tensorOutput.W,
            self.tensorOutput.b)))


def np_rmsprop_nesterov_step(RNN, X_mb, T_mb, maSquare, Vs, lmbd=0.5, learning_rate=0.05,
                             momentum_term=0.80, eps=1e-6):
    """The body of the binary-addition tutorial's training loop, as printed."""
    V_tmp = [v * momentum_term for v in Vs]
    for pIdx, P in enumerate(RNN.get_params_iter()):
        P += V_tmp[pIdx]
    backprop_grads = RNN.getParamGrads(X_mb, T_mb)
    for pIdx, P in enumerate(RNN.get_params_iter()):
        maSquare[pIdx] = lmbd * maSquare[pIdx] + (1 - lmbd) * backprop_grads[pIdx]**2
        pGradNorm = ((learning_rate * backprop_grads[pIdx]) / np.sqrt(maSquare[pIdx]) + eps)
        Vs[pIdx] = V_tmp[pIdx] - pGradNorm
        P -= pGradNorm
    return RNN.loss(RNN.getOutput(X_mb), T_mb)
