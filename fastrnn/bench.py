"""``fastrnn bench``: tokens/s of a recurrent training step (forward + full BPTT backward of one
cell on a dense input, D = H) for the fastrnn kernels, the NumPy reference and, when installed,
PyTorch CPU at the same thread count, all measured in this process; with the GEMM floor of the
step (its matrix products, each timed alone at its own shape) and the gate-pass cost.
``--model``: the whole char-model step and sampling; ``--compat``: ``fastrnn.compat.speed``;
``--quality``: time to quality, ``fastrnn.quality``.
"""

import json
import time

import numba
import numpy as np

from . import _jit, kernels
from .cells import NAMES as CELL_NAMES
from .cells import get as get_cell
from .cells import random_problem
from .quality import QUALITY_VAL_FRACTION, run_quality, torch_baseline  # noqa: F401  (bench.X)


SETTLE = 0.3   # s of idle before each measurement: lets other thread pools stop spinning


def best_time(f, repeat, min_time=0.2):
    """Best of ``repeat`` runs of f() (each run repeated until it lasts ``min_time``)."""
    time.sleep(SETTLE)
    f()
    n = 1
    t0 = time.perf_counter()
    f()
    once = time.perf_counter() - t0
    n = max(1, int(min_time / max(once, 1e-9)))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def numpy_step(backend, cell, T, B, H, dtype, truncate=None):
    """A closure running forward + backward of ``cell`` (a name) with ``backend``'s functions
    ('kernels' or 'reference'), on a dense input D = H."""
    spec = get_cell(cell)
    x, states, params, dhs = random_problem(spec, T, B, H, H, dtype)
    fns = spec.functions(backend)
    fwd, bwd = fns.forward, fns.backward

    def step():
        out = fwd(x, *states, *params)
        bwd(dhs, out[-1], truncate=truncate)
    return step


def torch_step(cell, T, B, H, dtype):
    import torch

    cls = getattr(torch.nn, get_cell(cell).torch_class)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    m = cls(H, H).to(tdtype)
    x = torch.randn(T, B, H, dtype=tdtype, requires_grad=True)
    dhs = torch.randn(T, B, H, dtype=tdtype)

    def step():
        m.zero_grad(set_to_none=True)
        x.grad = None
        out, _ = m(x)
        out.backward(dhs)
    return step


def gemm_floor(cell, T, B, H, dtype, repeat):
    """Time of the step's matrix products, each run alone at its own shape (numpy BLAS)."""
    G = get_cell(cell).gates
    rng = np.random.default_rng(1)

    def a(*s):
        return rng.standard_normal(s).astype(dtype)

    TB = T * B
    x2, g2, w, h, gh = a(TB, H), a(TB, G * H), a(G * H, H), a(B, H), a(B, G * H)
    out_gh, out_h = np.empty((B, G * H), dtype), np.empty((B, H), dtype)
    products = {
        "input projection (T*B,D)x(D,GH)": lambda: x2 @ w.T,
        "recurrent forward T x (B,H)x(H,GH)": lambda: [np.dot(h, w.T, out_gh) for _ in range(T)],
        "recurrent backward T x (B,GH)x(GH,H)": lambda: [np.dot(gh, w, out_h) for _ in range(T)],
        "dweight_ih (GH,T*B)x(T*B,D)": lambda: g2.T @ x2,
        "dweight_hh (GH,T*B)x(T*B,H)": lambda: g2.T @ x2,
        "dx (T*B,GH)x(GH,D)": lambda: g2 @ w,
    }
    times = {k: best_time(f, repeat, 0.05) for k, f in products.items()}
    flops = 2 * TB * G * H * H * 6
    return sum(times.values()), flops, times


def sgemm_peak(repeat, n=1024):
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    t = best_time(lambda: a @ a, repeat, 0.2)
    return 2 * n ** 3 / t


def product_gflops(M, K, N, dtype=np.float32, repeat=3, steps=50):
    """GFLOP/s of the packed micro-GEMM on one thread: M rows (K, N) as in one time step,
    repeated ``steps`` times (the weights stay packed, as in a time loop)."""
    run = kernels.per_step_product(M, K, N, dtype, steps)
    _jit.set_num_threads(1)
    try:
        t = best_time(run, repeat, 0.1)
    finally:
        _jit.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return 2 * M * K * N * steps / t / 1e9


def product_report(H=128, G=4, B=50, threads=2, dtype=np.float32, repeat=3):
    """The per-step products of a G-gate cell (rows per thread = B / threads) next to the same
    product's single-core peak, measured at large M (600 rows)."""
    rows = max(1, B // threads)
    fwd = product_gflops(rows, H, G * H, dtype, repeat)
    bwd = product_gflops(rows, G * H, H, dtype, repeat)
    peak = max(product_gflops(600, 512, 512, dtype, repeat, steps=2),
               product_gflops(600, H, G * H, dtype, repeat, steps=2))
    return {"rows": rows, "H": H, "G": G, "forward_gflops": fwd, "backward_gflops": bwd,
            "peak_gflops": peak, "forward_fraction": fwd / peak, "backward_fraction": bwd / peak}


def format_product(p):
    return (f"per-step product (1 thread, {p['rows']} rows, H={p['H']}, {p['G']} gates): forward "
            f"{p['forward_gflops']:.0f} GFLOP/s ({p['forward_fraction'] * 100:.0f}% of peak), "
            f"backward {p['backward_gflops']:.0f} ({p['backward_fraction'] * 100:.0f}%); "
            f"single-core peak of the same product at M=600: {p['peak_gflops']:.0f} GFLOP/s")


def gate_pass_ns(H=256, B=50, dtype=np.float32):
    """ns per gate element of the fused LSTM forward gate pass (single thread)."""
    reps = 200
    t = best_time(kernels.lstm_gate_pass(H, B, dtype, reps), 3, 0.1)
    return t / (reps * B * 4 * H) * 1e9


def run(cells=CELL_NAMES, hidden=(128, 256, 512), batch=50, seq=50, threads=None,
        use_torch=False, dtype="float32", repeat=3, reference=True, progress=print):
    dtype = np.dtype(dtype).type
    threads = threads or numba.config.NUMBA_NUM_THREADS
    _jit.set_num_threads(threads)
    from threadpoolctl import threadpool_limits
    torch = None
    if use_torch:
        import torch
        torch.set_num_threads(threads)
    rows = []
    with threadpool_limits(threads, user_api="blas"):
        peak = sgemm_peak(repeat)
        for cell in cells:
            for H in hidden:
                floor, flops, _ = gemm_floor(cell, seq, batch, H, dtype, repeat)
                t_k = best_time(numpy_step("kernels", cell, seq, batch, H, dtype), repeat)
                row = {"cell": cell, "H": H, "B": batch, "T": seq, "threads": threads,
                       "dtype": np.dtype(dtype).name,
                       "fastrnn_tok_s": seq * batch / t_k, "step_ms": t_k * 1e3,
                       "gemm_floor_ms": floor * 1e3, "step_over_floor": t_k / floor,
                       "gflops": flops / t_k / 1e9, "peak_fraction": flops / t_k / peak}
                if reference:
                    t_r = best_time(numpy_step("reference", cell, seq, batch, H, dtype), repeat)
                    row["reference_tok_s"] = seq * batch / t_r
                    row["vs_reference"] = t_r / t_k
                if torch is not None:
                    t_t = best_time(torch_step(cell, seq, batch, H, dtype), repeat)
                    row["torch_tok_s"] = seq * batch / t_t
                    row["vs_torch"] = t_t / t_k
                rows.append(row)
                if progress:
                    progress(format_row(row))
    return {"sgemm_gflops": peak / 1e9, "gate_pass_ns": gate_pass_ns(),
            "product": product_report(B=batch, threads=threads, dtype=dtype, repeat=repeat),
            "rows": rows}


def format_row(r):
    s = (f"{r['cell']:5s} H={r['H']:4d} B={r['B']:3d}  fastrnn {r['fastrnn_tok_s'] / 1e3:8.1f}k tok/s"
         f"  step {r['step_ms']:7.2f} ms = {r['step_over_floor']:.2f} x GEMM floor"
         f" ({r['peak_fraction'] * 100:4.0f}% of SGEMM peak)")
    if "reference_tok_s" in r:
        s += f"  reference {r['reference_tok_s'] / 1e3:7.1f}k (x{r['vs_reference']:.1f})"
    if "torch_tok_s" in r:
        s += f"  torch {r['torch_tok_s'] / 1e3:7.1f}k (x{r['vs_torch']:.2f})"
    return s


def main(args):
    if getattr(args, "quality", False):
        res = run_quality(seconds=args.time, use_torch=args.torch, threads=args.threads,
                          progress=None if args.json else print)
        if args.json:
            print(json.dumps(res, indent=1))
        return 0
    if args.compat:
        from .compat import speed

        rows = speed.run(rounds=args.repeat, out=(lambda line: None) if args.json else print)
        if args.json:
            print(json.dumps(rows, indent=1))
        return 0
    if args.model:
        res = run_models(cells=args.cells, hidden=args.hidden, layers=args.layers,
                         batch=args.batch, seq=args.seq, threads=args.threads,
                         use_torch=args.torch, repeat=args.repeat,
                         progress=None if args.json else print)
        if args.json:
            print(json.dumps(res, indent=1))
        return 0
    res = run(cells=args.cells, hidden=args.hidden, batch=args.batch, seq=args.seq,
              threads=args.threads, use_torch=args.torch, dtype=args.dtype,
              repeat=args.repeat, reference=not args.no_reference,
              progress=None if args.json else print)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print(f"SGEMM 1024^3: {res['sgemm_gflops']:.0f} GFLOP/s; "
              f"LSTM gate pass: {res['gate_pass_ns']:.2f} ns per gate element (1 thread)")
        print(format_product(res["product"]))
    return 0


# ---------------------------------------------------------------- char-model training step

def fastrnn_char_step(cell, layers, T, B, H, V=65, lr=2e-3, clip=5.0):
    """One training step of the char model: tokens -> stacked cell -> linear(V) -> cross-entropy
    -> backward -> global-norm clipping -> Adam."""
    from . import nn, optim
    model = nn.CharRNN(V, H, layers, cell)
    opt = optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, V, (T, B))
    y = rng.integers(0, V, (T, B))
    params = model.parameters()

    def step():
        model.zero_grad()
        model.loss_and_grad(ids, y)
        optim.clip_grad_norm_(params, clip)
        opt.step()
    return step


def torch_char_step(cell, layers, T, B, H, V=65, lr=2e-3, clip=5.0):
    """The same step in PyTorch: nn.Embedding(V, H) -> nn.LSTM/GRU/RNN -> nn.Linear(H, V)."""
    import torch
    cls = getattr(torch.nn, get_cell(cell).torch_class)
    emb, rnn, dec = torch.nn.Embedding(V, H), cls(H, H, layers), torch.nn.Linear(H, V)
    params = list(emb.parameters()) + list(rnn.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    ids = torch.randint(0, V, (T, B))
    y = torch.randint(0, V, (T * B,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        out, _ = rnn(emb(ids))
        loss = loss_fn(dec(out).reshape(T * B, V), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
    return step


def torch_sampling(cell, layers, H, V=65, n=200):
    import torch
    cls = getattr(torch.nn, get_cell(cell).torch_class)
    emb, rnn, dec = torch.nn.Embedding(V, H), cls(H, H, layers), torch.nn.Linear(H, V)

    def run():
        with torch.no_grad():
            tok, state = torch.zeros(1, 1, dtype=torch.long), None
            for _ in range(n):
                out, state = rnn(emb(tok), state)
                p = torch.softmax(dec(out[0, 0]), -1)
                tok = torch.multinomial(p, 1).view(1, 1)
    return run


def fastrnn_sampling(cell, layers, H, V=65, n=200):
    from . import nn
    model = nn.CharRNN(V, H, layers, cell)
    rng = np.random.default_rng(0)

    def run():
        model.sampler().generate(0, n, temperature=1.0, rng=rng)
    return run


def run_models(cells=CELL_NAMES, hidden=(128, 256, 512), layers=(1, 2), batch=50,
               seq=50, threads=None, use_torch=False, repeat=3, progress=print):
    threads = threads or numba.config.NUMBA_NUM_THREADS
    _jit.set_num_threads(threads)
    if use_torch:
        import torch
        torch.set_num_threads(threads)
    rows = []
    peak = sgemm_peak(repeat)
    for cell in cells:
        for L in layers:
            for H in hidden:
                t_f = best_time(fastrnn_char_step(cell, L, seq, batch, H), repeat)
                flops = char_step_flops(cell, L, seq, batch, H)
                row = {"cell": cell, "layers": L, "H": H, "B": batch, "T": seq,
                       "threads": threads, "fastrnn_tok_s": seq * batch / t_f,
                       "gflops": flops / t_f / 1e9, "peak_fraction": flops / t_f / peak}
                if use_torch:
                    t_t = best_time(torch_char_step(cell, L, seq, batch, H), repeat)
                    row["torch_tok_s"] = seq * batch / t_t
                    row["vs_torch"] = t_t / t_f
                rows.append(row)
                if progress:
                    s = (f"char step {cell:4s} {L} layer(s) H={H:4d}  fastrnn "
                         f"{row['fastrnn_tok_s'] / 1e3:7.1f}k tok/s "
                         f"({row['peak_fraction'] * 100:3.0f}% of SGEMM peak)")
                    if use_torch:
                        s += f"  torch {row['torch_tok_s'] / 1e3:7.1f}k  x{row['vs_torch']:.2f}"
                    progress(s)
    samp = []
    for cell in cells:
        n = 200
        t_f = best_time(fastrnn_sampling(cell, 2, 128, n=n), repeat)
        row = {"cell": cell, "layers": 2, "H": 128, "fastrnn_chars_s": n / t_f}
        if use_torch:
            t_t = best_time(torch_sampling(cell, 2, 128, n=n), repeat)
            row["torch_chars_s"] = n / t_t
            row["vs_torch"] = t_t / t_f
        samp.append(row)
        if progress:
            s = f"sampling {cell:4s} 2x128 B=1  fastrnn {row['fastrnn_chars_s'] / 1e3:6.1f}k chars/s"
            if use_torch:
                s += f"  torch {row['torch_chars_s'] / 1e3:6.1f}k  x{row['vs_torch']:.1f}"
            progress(s)
    return {"sgemm_gflops": peak / 1e9, "char_steps": rows, "sampling": samp}


def char_step_flops(cell, layers, T, B, H, V=65):
    """Matrix-product FLOPs of one char-model training step: per layer the recurrent product
    forward, its data gradient and its weight gradient; the input products of the upper
    layers likewise (layer 0 reads a token table: no product); the decoder (H -> V) likewise."""
    G = get_cell(cell).gates
    n = T * B
    return 3 * 2 * n * (G * H * H * (2 * layers - 1) + H * V)
