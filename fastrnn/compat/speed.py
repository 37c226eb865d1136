"""Speed-up of ``fastrnn.compat`` over the plain-NumPy code it replaces, measured in one run.

Each row times one compat entry point and its original (a plain-NumPy transcription of the
published code, below) on the same inputs, checks that they agree, and prints the ratio of
the best per-call times:

    fastrnn bench --compat
    python -m fastrnn.compat.speed [--min-time 0.3] [--rounds 5] [--settle 0.3]

The originals below are the baselines of ``fastrnn bench --compat`` and of the asv suite's
``bench_compat``; the tests compare the compat modules with their own transcriptions in
``tests/compat``.

The targets (issue 7): >= 2x for cs231n's lstm_forward + lstm_backward at N=50, T=50, D=H=128
(there the original is already BLAS-bound), >= 10x at N=1 and N=8, >= 10x for min-char-rnn's
lossFun (T=25, H=100, V=65) and for the U,V,W tutorial's bptt (bptt_truncate=4, T=20, H=100,
word_dim 8000).
"""

import argparse
import time

import numpy as np

# ================================================================ the originals, in NumPy


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


# ================================================================ cases


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b).max(initial=0) / max(np.abs(a).max(initial=0),
                                              np.abs(b).max(initial=0), 1e-300)


def cs231n_case(cell, N, T=50, D=128, H=128, seed=0):
    from fastrnn.compat import cs231n as C

    G = 4 if cell == "lstm" else 1
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D)) * 0.5
    h0 = rng.standard_normal((N, H)) * 0.5
    Wx = rng.standard_normal((D, G * H)) / np.sqrt(D)
    Wh = rng.standard_normal((H, G * H)) / np.sqrt(H)
    b = rng.standard_normal(G * H) * 0.1
    dh = rng.standard_normal((N, T, H))
    fwd, bwd = getattr(C, f"{cell}_forward"), getattr(C, f"{cell}_backward")
    np_fwd, np_bwd = {"lstm": (np_lstm_forward, np_lstm_backward),
                      "rnn": (np_rnn_forward, np_rnn_backward)}[cell]

    def compat():
        h, cache = fwd(x, h0, Wx, Wh, b)
        return (h,) + bwd(dh, cache)

    def original():
        h, cache = np_fwd(x, h0, Wx, Wh, b)
        return (h,) + np_bwd(dh, cache)

    name = f"cs231n {cell}_forward + {cell}_backward"
    return name, f"N={N}, T={T}, D=H={H}", compat, original


def lossfun_case(T=25, H=100, V=65, seed=0):
    from fastrnn.compat import minchar

    rng = np.random.default_rng(seed)
    params = [rng.standard_normal((H, V)) * 0.01, rng.standard_normal((H, H)) * 0.01,
              rng.standard_normal((V, H)) * 0.01, np.zeros((H, 1)), np.zeros((V, 1))]
    model = minchar.MinCharRNN(V, H, rng=np.random.RandomState(seed))
    model.Wxh, model.Whh, model.Why, model.bh, model.by = params
    inputs = [int(i) for i in rng.integers(0, V, T)]
    targets = [int(i) for i in rng.integers(0, V, T)]
    hprev = np.zeros((H, 1))
    return ("min-char-rnn lossFun", f"T={T}, H={H}, V={V}",
            lambda: model.lossFun(inputs, targets, hprev),
            lambda: np_lossFun(inputs, targets, hprev, *params))


def bptt_case(T=20, H=100, word_dim=8000, truncate=4, seed=0):
    from fastrnn.compat.numpy_rnn import RNNNumpy

    rng = np.random.default_rng(seed)
    state = np.random.get_state()
    np.random.seed(seed)
    model = RNNNumpy(word_dim, H, truncate)
    np.random.set_state(state)
    x = [int(i) for i in rng.integers(0, word_dim, T)]
    y = [int(i) for i in rng.integers(0, word_dim, T)]
    return ("U,V,W RNNNumpy.bptt", f"T={T}, H={H}, word_dim={word_dim}, bptt_truncate={truncate}",
            lambda: model.bptt(x, y),
            lambda: np_bptt(model.U, model.V, model.W, truncate, x, y))


CASES = [  # (factory, kwargs, target speed-up)
    (cs231n_case, dict(cell="lstm", N=50), 2),
    (cs231n_case, dict(cell="lstm", N=8), 10),
    (cs231n_case, dict(cell="lstm", N=1), 10),
    (cs231n_case, dict(cell="rnn", N=8), None),
    (lossfun_case, {}, 10),
    (bptt_case, {}, 10),
]


# ================================================================ timing


def per_call(fn, min_time):
    """Best over rounds is taken by the caller; this is one round: the mean time per call
    over as many calls as fill ``min_time`` seconds."""
    n = 0
    t0 = time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            return elapsed / n


def measure(compat, original, min_time=0.3, rounds=5, settle=0.3):
    """-> best seconds per call of (compat, original), rounds interleaved. Each round starts
    after ``settle`` idle seconds, so the thread pools of the side just measured (numba's,
    NumPy's BLAS) have stopped spinning when the other side starts (as ``fastrnn bench``)."""
    compat()
    original()                                      # warm up (and compile, for compat)
    best_c = best_o = float("inf")
    for _ in range(rounds):
        time.sleep(settle)
        best_c = min(best_c, per_call(compat, min_time))
        time.sleep(settle)
        best_o = min(best_o, per_call(original, min_time))
    return best_c, best_o


def run(min_time=0.3, rounds=5, settle=0.3, out=print):
    """Measures every case of CASES; prints the table through ``out`` and returns its rows."""
    rows = []
    out(f"{'entry point':40s} {'shape':45s} {'NumPy ms':>9s} {'fastrnn ms':>10s} "
        f"{'speed-up':>8s} {'target':>6s} {'max rel err':>11s}")
    for factory, kw, target in CASES:
        name, shape, compat, original = factory(**kw)
        err = max(rel_err(a, b) for a, b in zip(compat(), original()))
        tc, to = measure(compat, original, min_time, rounds, settle)
        rows.append(dict(name=name, shape=shape, numpy_s=to, fastrnn_s=tc, speedup=to / tc,
                         target=target, max_rel_err=err))
        tgt = f">={target}x" if target else ""
        out(f"{name:40s} {shape:45s} {to * 1e3:9.3f} {tc * 1e3:10.3f} {to / tc:7.1f}x "
            f"{tgt:>6s} {err:11.1e}")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-time", type=float, default=0.3,
                    help="seconds per timing round and entry point (default 0.3)")
    ap.add_argument("--rounds", type=int, default=5, help="timing rounds, best kept (default 5)")
    ap.add_argument("--settle", type=float, default=0.3,
                    help="idle seconds before each timing round (default 0.3)")
    args = ap.parse_args(argv)
    import fastrnn

    print(f"fastrnn {fastrnn.__version__}, numpy {np.__version__}, "
          f"{fastrnn.get_num_threads()} kernel threads; times are the best of {args.rounds} "
          "rounds")
    run(args.min_time, args.rounds, args.settle)


if __name__ == "__main__":
    main()
