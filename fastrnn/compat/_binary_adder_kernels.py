"""The compiled loops of ``fastrnn.compat.binary_adder``, serial, on arrays the drop-in has
checked: ``RecurrentStateUnfold``'s forward and backward (``unfold_forward``,
``unfold_backward``), and ``RnnBinaryAdder``'s whole forward, backward and both at once
(``adder_forward``, ``adder_backward``, ``adder_grads``). The layouts and equations are in that
module's docstring; none of these names is the tutorial's.
"""

import numpy as np

from .._jit import njit
from ..kernels import exp, tanh


@njit
def unfold_forward(X, W, b, S0, nsteps):
    """S (N, T+1, H): S[:, 0] = S0, S[:, k+1] = tanh(X[:, k] + (S[:, k] @ W + b)) for k <
    nsteps, the rest 0 (as the original's np.zeros)."""
    N, T, H = X.shape
    S = np.zeros((N, T + 1, H), X.dtype)
    for n in range(N):
        for j in range(H):
            S[n, 0, j] = S0[j]
        for k in range(nsteps):
            for j in range(H):
                a = 0.0
                for i in range(H):
                    a += S[n, k, i] * W[i, j]
                S[n, k + 1, j] = tanh(X[n, k, j] + (a + b[j]))
    return S


@njit
def unfold_backward(S, gY, W, nsteps, gZ):
    """Back through unfold_forward: writes gZ[:, :nsteps] (the gradient at the recurrent
    inputs) -> gW (H, H), gB (H,), gS0 (H,)."""
    N = gY.shape[0]
    H = W.shape[0]
    gW = np.zeros((H, H), gY.dtype)
    gB = np.zeros(H, gY.dtype)
    gS0 = np.zeros(H, gY.dtype)
    gS = np.empty(H, gY.dtype)
    for n in range(N):
        gS[:] = 0
        for k in range(nsteps - 1, -1, -1):
            for j in range(H):
                gS[j] += gY[n, k, j]
                gZ[n, k, j] = (1.0 - S[n, k + 1, j] ** 2) * gS[j]
                gB[j] += gZ[n, k, j]
            for i in range(H):
                a = 0.0
                s = S[n, k, i]
                for j in range(H):
                    gW[i, j] += s * gZ[n, k, j]
                    a += gZ[n, k, j] * W[i, j]
                gS[i] = a
        for j in range(H):
            gS0[j] += gS[j]
    return gW, gB, gS0


@njit
def _batch_last(A):
    """(N, T, M) -> a C-contiguous (T, M, N) copy: the batch becomes the inner dimension, so
    every loop below runs over the N samples at once (SIMD over samples; the tutorial's
    state and input sizes are 2 or 3, too short for anything else to vectorise)."""
    N, T, M = A.shape
    a = np.ascontiguousarray(A).reshape((N, T * M))
    out = np.empty((T * M, N), A.dtype)
    for n in range(N):
        for c in range(T * M):
            out[c, n] = a[n, c]
    return out.reshape((T, M, N))


@njit
def _batch_first(AT):
    """The inverse of _batch_last: (T, M, N) -> (N, T, M)."""
    T, M, N = AT.shape
    a = AT.reshape((T * M, N))
    out = np.empty((N, T * M), AT.dtype)
    for n in range(N):
        for c in range(T * M):
            out[n, c] = a[c, n]
    return out.reshape((N, T, M))


@njit
def _forward_bl(XT, Win, bin_, Wrec, brec, S0, Wout, bout):
    """The whole forward of RnnBinaryAdder in the batch-last layout (see _batch_last):
    XT (T, I, N) -> recIn (T, H, N), S (T+1, H, N), Z (T, O, N), Y (T, O, N)."""
    T, I, N = XT.shape
    H = Wrec.shape[0]
    O = Wout.shape[1]
    RT = np.empty((T, H, N), XT.dtype)                      # recIn
    ST = np.empty((T + 1, H, N), XT.dtype)                  # S
    ZT = np.empty((T, O, N), XT.dtype)
    YT = np.empty((T, O, N), XT.dtype)
    a = np.empty(N, XT.dtype)
    for j in range(H):
        for n in range(N):
            ST[0, j, n] = S0[j]
    for k in range(T):
        for j in range(H):
            r = RT[k, j]
            r[:] = 0
            for i in range(I):
                w = Win[i, j]
                x = XT[k, i]
                for n in range(N):
                    r[n] += x[n] * w
            a[:] = 0
            for i in range(H):
                w = Wrec[i, j]
                sp = ST[k, i]
                for n in range(N):
                    a[n] += sp[n] * w
            s = ST[k + 1, j]
            bi, br = bin_[j], brec[j]
            for n in range(N):
                r[n] += bi
                s[n] = tanh(r[n] + (a[n] + br))
        for o in range(O):
            z = ZT[k, o]
            z[:] = 0
            for i in range(H):
                w = Wout[i, o]
                sk = ST[k + 1, i]
                for n in range(N):
                    z[n] += sk[n] * w
            y = YT[k, o]
            bo = bout[o]
            for n in range(N):
                z[n] += bo
                y[n] = 1.0 / (1.0 + exp(-z[n]))
    return RT, ST, ZT, YT


@njit
def adder_forward(X, Win, bin_, Wrec, brec, S0, Wout, bout):
    """The whole forward of RnnBinaryAdder -> recIn (N, T, H), S (N, T+1, H), Z (N, T, O),
    Y (N, T, O)."""
    RT, ST, ZT, YT = _forward_bl(_batch_last(X), Win, bin_, Wrec, brec, S0, Wout, bout)
    return _batch_first(RT), _batch_first(ST), _batch_first(ZT), _batch_first(YT)


@njit
def _backward_bl(XT, YT, ST, TT, Wrec, Wout):
    """The whole backward of RnnBinaryAdder (loss: the logistic cross-entropy averaged over
    samples and steps) from the batch-last XT (T, I, N), YT, TT (T, O, N), ST (T+1, H, N)
    -> one flat array holding the gradients of S0, Win, bin, Wrec, brec, Wout, bout in that
    order (get_params_iter's), each C-ordered."""
    Tn, I, N = XT.shape
    H = Wrec.shape[0]
    O = Wout.shape[1]
    dt = YT.dtype
    flat = np.zeros(H + I * H + H + H * H + H + H * O + O, dt)
    n0 = H + I * H + H
    n1 = n0 + H * H + H
    gS0 = flat[:H]
    gWin = flat[H:H + I * H].reshape((I, H))
    gBin = flat[H + I * H:n0]
    gWrec = flat[n0:n0 + H * H].reshape((H, H))
    gBrec = flat[n0 + H * H:n1]
    gWout = flat[n1:n1 + H * O].reshape((H, O))
    gBout = flat[n1 + H * O:]
    gS = np.zeros((H, N), dt)                  # gradient at the state S[:, k+1]
    gz = np.empty((O, N), dt)                  # at the logits Z[:, k]
    gr = np.empty((H, N), dt)                  # at the recurrent input recIn[:, k]
    count = N * Tn
    for k in range(Tn - 1, -1, -1):
        for o in range(O):
            g = gz[o]
            y, t = YT[k, o], TT[k, o]
            acc = 0.0
            for n in range(N):
                g[n] = (y[n] - t[n]) / count
                acc += g[n]
            gBout[o] += acc
        for i in range(H):
            sk = ST[k + 1, i]
            gs = gS[i]
            for o in range(O):
                g = gz[o]
                acc = 0.0
                for n in range(N):
                    acc += sk[n] * g[n]
                gWout[i, o] += acc
                w = Wout[i, o]
                for n in range(N):
                    gs[n] += g[n] * w
        for j in range(H):
            sk = ST[k + 1, j]
            gs = gS[j]
            g = gr[j]
            acc = 0.0
            for n in range(N):
                g[n] = (1.0 - sk[n] ** 2) * gs[n]
                acc += g[n]
            gBrec[j] += acc
            gBin[j] += acc
            for i in range(I):
                x = XT[k, i]
                acc = 0.0
                for n in range(N):
                    acc += x[n] * g[n]
                gWin[i, j] += acc
            for i in range(H):
                sp = ST[k, i]
                acc = 0.0
                for n in range(N):
                    acc += sp[n] * g[n]
                gWrec[i, j] += acc
        for i in range(H):                     # gS = gr^T Wrec^T: into step k-1
            gs = gS[i]
            gs[:] = 0
            for j in range(H):
                w = Wrec[i, j]
                g = gr[j]
                for n in range(N):
                    gs[n] += g[n] * w
    for j in range(H):
        acc = 0.0
        for n in range(N):
            acc += gS[j, n]
        gS0[j] = acc
    return flat


@njit
def adder_backward(X, Y, S, T, Wrec, Wout):
    """RnnBinaryAdder's backward from the batch-major X, Y, S, T (see _backward_bl)."""
    return _backward_bl(_batch_last(X), _batch_last(Y), _batch_last(S), _batch_last(T), Wrec,
                        Wout)


@njit
def adder_grads(X, Win, bin_, Wrec, brec, S0, Wout, bout, T):
    """getParamGrads in one call: the forward and backward above without leaving the
    batch-last layout (the same operations, so the same numbers) -> the flat gradients."""
    XT = _batch_last(X)
    RT, ST, ZT, YT = _forward_bl(XT, Win, bin_, Wrec, brec, S0, Wout, bout)
    return _backward_bl(XT, YT, ST, _batch_last(T), Wrec, Wout)
