"""Speed-up of ``fastrnn.compat`` over the plain-NumPy code it replaces, measured in one run.

Each row times one compat entry point and its original (a plain-NumPy transcription of the
published code, in ``fastrnn.compat._originals``) on the same inputs, checks that they agree,
and prints the ratio of the best per-call times:

    fastrnn bench --compat
    python -m fastrnn.compat.speed [--min-time 0.3] [--rounds 5] [--settle 0.3]

The cases below (``CASES``) are those of ``fastrnn bench --compat`` and of the asv suite's
``bench_compat``; the tests compare the compat modules with their own transcriptions in
``tests/compat``.

The targets (issue 7): >= 2x for cs231n's lstm_forward + lstm_backward at N=50, T=50, D=H=128
(there the original is already BLAS-bound), >= 10x at N=1 and N=8, >= 10x for min-char-rnn's
lossFun (T=25, H=100, V=65) and for the U,V,W tutorial's bptt (bptt_truncate=4, T=20, H=100,
word_dim 8000); issue 17: >= 10x for the "RNN from scratch" tutorial's full_forward_prop +
rnn_backprop (T=4, hidden 100, output 80, bptt_truncate=2) and the binary adder's
getParamGrads (a minibatch of 100, 7 steps, 3 states), at the tutorials' own sizes. The last
row, one step of the binary adder's training loop as printed, shows what is left when the
loop's own per-parameter Python arithmetic (unchanged) is counted too: it has no target.
"""

import argparse
import time

import numpy as np

from ._originals import (np_bptt, np_lossFun, np_lstm_backward, np_lstm_forward,
                         np_rfs_backprop, np_rfs_forward, np_rmsprop_nesterov_step,
                         np_rnn_backward, np_rnn_forward, np_RnnBinaryAdder)

# ================================================================ cases


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b).max(initial=0) / max(np.abs(a).max(initial=0),
                                              np.abs(b).max(initial=0), 1e-300)


def cs231n_case(cell, N, T=50, D=128, H=128, seed=0):
    from fastrnn.compat import cs231n as C

    fwd, bwd, G = C._SEQUENCE_FUNCTIONS[cell]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D)) * 0.5
    h0 = rng.standard_normal((N, H)) * 0.5
    Wx = rng.standard_normal((D, G * H)) / np.sqrt(D)
    Wh = rng.standard_normal((H, G * H)) / np.sqrt(H)
    b = rng.standard_normal(G * H) * 0.1
    dh = rng.standard_normal((N, T, H))
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


def rnn_from_scratch_case(T=4, H=100, O=80, bptt_truncate=2, seed=0):
    from fastrnn.compat import rnn_from_scratch as F

    rng = np.random.default_rng(seed)
    U, W = rng.uniform(0, 1, (H, H)), rng.uniform(0, 1, (H, H))   # the tutorial's init
    V = rng.uniform(0, 1, (O, H))
    emb = [rng.standard_normal((H, 1)) for _ in range(T)]
    out = [np.eye(O)[:, [int(i)]] for i in rng.integers(0, O, T)]   # one-hot (O, 1)
    prev = np.zeros((H, 1))
    grads = [np.zeros_like(U), np.zeros_like(V), np.zeros_like(W)]  # dU, dV, dW

    def compat():
        for g in grads:
            g.fill(0)
        ys, memory = F.full_forward_prop(T, emb, U, W, prev, V)
        return tuple(ys) + F.rnn_backprop(emb, memory, out, *grads, bptt_truncate, U, V, W)

    def original():
        for g in grads:
            g.fill(0)
        ys, memory = np_rfs_forward(T, emb, U, W, prev, V)
        return tuple(ys) + np_rfs_backprop(emb, memory, out, *grads, bptt_truncate, U, V, W)

    return ("RNN from scratch forward + rnn_backprop",
            f"T={T}, hidden={H}, output={O}, bptt_truncate={bptt_truncate}", compat, original)


def _adder_pair(N, T, states, seed):
    from fastrnn.compat import binary_adder as A

    state = np.random.get_state()
    np.random.seed(seed)
    X, Tg = A.create_dataset(N, T)
    model = A.RnnBinaryAdder(2, 1, states, T)
    np.random.set_state(state)
    rng = np.random.default_rng(seed)
    model.rnnUnfold.S0[...] = rng.uniform(-0.5, 0.5, states)   # every gradient nonzero
    return model, np_RnnBinaryAdder(model), X, Tg


def binary_adder_case(N=100, T=7, states=3, seed=1):
    model, orig, X, Tg = _adder_pair(N, T, states, seed)
    return ("binary adder getParamGrads", f"N={N} (mb_size), T={T}, "
            f"states={states}", lambda: (np.array(model.getParamGrads(X, Tg)),),
            lambda: (np.array(orig.getParamGrads(X, Tg)),))


def binary_adder_loop_case(N=100, T=7, states=3, seed=1):
    """One iteration of the tutorial's RMSprop + Nesterov loop, as printed (its Python
    per-parameter updates included), on each side's own network; the parameters are put back
    after each call (7 array copies, the same on both sides), so every call does the same."""
    model, orig, X, Tg = _adder_pair(N, T, states, seed)
    n = sum(1 for _ in model.get_params_iter())

    def step(net):
        arrays = [net.rnnUnfold.S0, net.tensorInput.W, net.tensorInput.b, net.rnnUnfold.W,
                  net.rnnUnfold.b, net.tensorOutput.W, net.tensorOutput.b]
        saved = [a.copy() for a in arrays]
        loss = np_rmsprop_nesterov_step(net, X, Tg, [0.0] * n, [0.0] * n)
        after = np.concatenate([a.ravel() for a in arrays])
        for a, v in zip(arrays, saved):
            a[...] = v
        return np.array([loss]), after

    return ("binary adder, tutorial's loop step", f"N={N} (mb_size), T={T}, "
            f"states={states}", lambda: step(model), lambda: step(orig))


CASES = [  # (factory, kwargs, target speed-up)
    (cs231n_case, dict(cell="lstm", N=50), 2),
    (cs231n_case, dict(cell="lstm", N=8), 10),
    (cs231n_case, dict(cell="lstm", N=1), 10),
    (cs231n_case, dict(cell="rnn", N=8), None),
    (lossfun_case, {}, 10),
    (bptt_case, {}, 10),
    (rnn_from_scratch_case, {}, 10),
    (binary_adder_case, {}, 10),
    (binary_adder_loop_case, {}, None),
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
