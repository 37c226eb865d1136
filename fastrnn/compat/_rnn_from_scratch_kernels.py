"""The compiled loops of ``fastrnn.compat.rnn_from_scratch``, serial, on arrays the drop-in has
checked and gathered: ``forward`` (``full_forward_prop``'s whole sequence into the
buffers its ``memory`` views) and ``backprop`` (``rnn_backprop``). The layouts and the
tutorial's equations are in that module's docstring; none of these names is the tutorial's.
"""

import numpy as np

from .._jit import njit
from ..kernels import MR_MAX, exp, fmax, gemm_packed, gemm_rows, pack_panels_T, tanh


@njit
def forward(X, U, W, V, h0, hs3, Wf3, Uf3, S3, Z3, Y3):
    """The forward over the sequence.
    X (T, D) embeddings; U (H, D), W (H, H), V (O, H); h0 (H,) = prev_memory.
    Writes hs[0] = h0, hs[t+1] = h[t] = tanh(S[t]), Wf[t] = W h[t-1], Uf[t] = U x[t],
    S[t] = Wf[t] + Uf[t], Z[t] = V h[t] and Y[t] = softmax(Z[t]) into the (T(+1), n, 1)
    arrays hs3 .. Y3, whose rows are the tutorial's (n, 1) vectors. The products are the
    kernels' register-blocked micro-GEMM: U x[t] and V h[t] for all steps at once, each
    reading U or V in its own layout with the few vectors x[t] / h[t] packed as the panel
    (a dot product per output element would be a chain of dependent multiply-adds); only
    W h[t-1] is step by step, over W^T packed once here."""
    T, D = X.shape
    H = W.shape[0]
    O = V.shape[0]
    hs, S = hs3.reshape((T + 1, H)), S3.reshape((T, H))
    Wf, Uf = Wf3.reshape((T, H)), Uf3.reshape((T, H))
    Z, Y = Z3.reshape((T, O)), Y3.reshape((T, O))
    hs[0] = h0
    UfT = np.empty((H, T), X.dtype)                        # (H, T) = U X^T
    gemm_packed(U, pack_panels_T(X), UfT)
    wp = pack_panels_T(W)                                  # W^T: h @ W^T = W h
    tile = np.empty((MR_MAX, wp.shape[0] * wp.shape[2]), X.dtype)
    for t in range(T):
        gemm_rows(hs, t, 1, wp, tile)                      # W h[t-1]
        a = tile[0]
        h = hs[t + 1]
        wf, uf, st = Wf[t], Uf[t], S[t]
        for u in range(H):
            wf[u] = a[u]
            uf[u] = UfT[u, t]
            st[u] = a[u] + UfT[u, t]
            h[u] = tanh(st[u])
    ZT = np.empty((O, T), X.dtype)                         # (O, T) = V h^T
    gemm_packed(V, pack_panels_T(hs[1:]), ZT)
    for t in range(T):
        z = Z[t]                                           # (O,)
        for o in range(O):
            z[o] = ZT[o, t]
        m = z[0]
        for o in range(O):
            m = fmax(m, z[o])
        y = Y[t]
        s = 0.0
        for o in range(O):
            y[o] = exp(z[o] - m)
            s += y[o]
        for o in range(O):
            y[o] /= s


@njit
def _add_outer(G, A, B):
    """G += A^T B for G (R, C), A (K, R), B (K, C): each row of G stays in registers/L1 while
    up to 4 terms of the sum over K are added to it (one load and store of G per 4 products:
    the weight gradients are sums of only T = 4 outer products here)."""
    K, R = A.shape
    C = B.shape[1]
    for r in range(R):
        g = G[r]
        k = 0
        while k + 4 <= K:
            a0, a1, a2, a3 = A[k, r], A[k + 1, r], A[k + 2, r], A[k + 3, r]
            b0, b1, b2, b3 = B[k], B[k + 1], B[k + 2], B[k + 3]
            for c in range(C):
                g[c] += (a0 * b0[c] + a1 * b1[c]) + (a2 * b2[c] + a3 * b3[c])
            k += 4
        while k < K:
            a = A[k, r]
            b = B[k]
            for c in range(C):
                g[c] += a * b[c]
            k += 1


@njit
def backprop(X, hs, S, Y, tgt, W, V, k, dU, dW, dV):
    """Truncated BPTT of sum_t -log Y[t][target t] into dU (H, D), dW (H, H), dV (O, H) (+=).
    X (T, D) embeddings, hs (T+1, H) states with hs[0] the state before step 0, S (T, H) the
    pre-activations, Y (T, O) the predictions, tgt (T, O) the targets (dLo = Y - [tgt == 1],
    as delta_cross_entropy); the loss at step t reaches steps t, t-1, .., max(t-k, 0).
    Each weight is read row by row in its own layout; every product is a sum of outer
    products (_add_outer)."""
    T, D = X.shape
    H = W.shape[0]
    O = V.shape[0]
    dLo = np.empty((T, O), Y.dtype)                        # y_hat - y
    dLoT = np.empty((O, T), Y.dtype)
    for t in range(T):
        for o in range(O):
            d = Y[t, o] - 1 if tgt[t, o] == 1 else Y[t, o]
            dLo[t, o] = d
            dLoT[o, t] = d
    dsv = np.zeros((T, H), Y.dtype)                        # V^T dLo[t], every t
    _add_outer(dsv, dLoT, V)
    _add_outer(dV, dLo, hs[1:])                            # dV += sum_t dLo[t] h[t]^T
    dtanh = np.empty((T, H), Y.dtype)                      # 1 - tanh(sum_s)^2
    for i in range(T):
        for u in range(H):
            g = tanh(S[i, u])
            dtanh[i, u] = 1.0 - g * g
    dA = np.zeros((T, H), Y.dtype)                         # summed dLoss/dsum_s of each step
    ds = np.empty((1, H), Y.dtype)
    dadd = np.empty((H, 1), Y.dtype)
    for t in range(T):
        ds[0] = dsv[t]
        stop = max(t - k, 0)
        for i in range(t, stop - 1, -1):
            for u in range(H):
                dadd[u, 0] = dtanh[i, u] * ds[0, u]
                dA[i, u] += dadd[u, 0]
            if i > stop:                                   # W^T dadd: into step i-1
                ds[0] = 0
                _add_outer(ds, dadd, W)
    _add_outer(dW, dA, hs[:T])                             # dW += sum_t dA[t] h[t-1]^T
    _add_outer(dU, dA, X)                                  # dU += sum_t dA[t] x[t]^T
