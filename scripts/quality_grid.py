"""Time-to-quality grid (issue 15): held-out loss of training configurations at equal budgets.

The machine these numbers come from is shared, so wall-time budgets are not comparable between
runs. A budget of S seconds is therefore converted into a step count for each configuration:

    steps(config, S) = S * ANCHOR_TOK_S / (B * T) * speed(config) / speed(default)

where ANCHOR_TOK_S is the default model's training speed on a quiet machine (2x128 LSTM, B=T=50:
62k tokens/s, the figure issue 15 measured in a 600 s run) and ``speed(config) / speed(default)``
is measured here by ``--time-steps``: one training step of each configuration, interleaved in one
process, median of several rounds. The results are then a function of the step count only
(no wall time), i.e. reproducible, and they stay valid when the kernels get faster: a kernel
1.5x faster turns the "S=60" budget into S=40.

Held-out loss: the corpus's last ``--val-fraction`` (10%) is held out whole (the model never
sees it), cut into 50 streams read in windows of 50 with the state carried inside a stream, and
every window is evaluated (``fastrnn.train.heldout_loss`` does the same). The schedule is
warm-up (2% of the steps) then cosine decay to 0 at the last step, unless ``sched`` says
otherwise.

    python scripts/quality_grid.py --time-steps GRID > speeds.json
    python scripts/quality_grid.py --run GRID --budget 60 --corpus FILE --speeds speeds.json \\
        --out results.jsonl

Each run appends one JSON line to ``--out``.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np

ANCHOR_TOK_S = 62_000.0          # default model, quiet machine (issue 15's 600 s run)

BASE = dict(cell="lstm", hidden=128, layers=2, batch=50, seq=50, dropout=0.0,
            optimizer="rmsprop", lr=2e-3, sched="cosine", warmup=0.02)

GRIDS = {
    "s60": {
        "base": {},
        "const": dict(sched="const", warmup=0.0),
        "linear": dict(sched="linear"),
        "adam": dict(optimizer="adam"),
        "adam_lr5e-3": dict(optimizer="adam", lr=5e-3),
        "lr4e-3": dict(lr=4e-3),
        "lr1e-3": dict(lr=1e-3),
        "lr8e-3": dict(lr=8e-3),
        "lr1.6e-2": dict(lr=1.6e-2),
        "h256_lr8e-3": dict(hidden=256, lr=8e-3),
        "gru_lr8e-3": dict(cell="gru", lr=8e-3),
        "b25_lr8e-3": dict(batch=25, lr=8e-3),
        "const_lr4e-3": dict(sched="const", warmup=0.0, lr=4e-3),
        "h256": dict(hidden=256),
        "1x256": dict(hidden=256, layers=1),
        "gru": dict(cell="gru"),
        "b25": dict(batch=25),
        "t100": dict(seq=100),
        # the same questions around the better optimizer (Adam, peak LR 5e-3)
        "adam_lr1e-2": dict(optimizer="adam", lr=1e-2),
        "adam_const": dict(optimizer="adam", lr=5e-3, sched="const", warmup=0.0),
        "h256_adam": dict(hidden=256, optimizer="adam", lr=5e-3),
        "1x256_adam": dict(hidden=256, layers=1, optimizer="adam", lr=5e-3),
        "gru_adam": dict(cell="gru", optimizer="adam", lr=5e-3),
        "b25_adam": dict(batch=25, optimizer="adam", lr=5e-3),
        "t100_adam": dict(seq=100, optimizer="adam", lr=5e-3),
        "d0.1_adam": dict(dropout=0.1, optimizer="adam", lr=5e-3),
    },
    "s600": {                     # around the S=60 winner (RMSprop, peak 8e-3, cosine)
        "lr8e-3": dict(lr=8e-3),
        "d0.2_lr8e-3": dict(dropout=0.2, lr=8e-3),
        "1x256_lr8e-3": dict(hidden=256, layers=1, lr=8e-3),
        "h256_d0.2_lr8e-3": dict(hidden=256, dropout=0.2, lr=8e-3),
        "h256_d0.4_lr8e-3": dict(hidden=256, dropout=0.4, lr=8e-3),
        "h256_d0.5_lr8e-3": dict(hidden=256, dropout=0.5, lr=8e-3),
    },
    "s3600": {                    # the S=600 pick against more dropout / a bigger model
        "h256_d0.2_lr8e-3": dict(hidden=256, dropout=0.2, lr=8e-3),
        "h256_d0.4_lr8e-3": dict(hidden=256, dropout=0.4, lr=8e-3),
        # 2x512: fan-in twice as large, so the same RMSprop step moves a pre-activation ~1.4x
        # as far; 6e-3 keeps it near the 2x256's 8e-3
        "h512_d0.5_lr6e-3": dict(hidden=512, dropout=0.5, lr=6e-3),
    },
}


def config(name, grid):
    c = dict(BASE)
    c.update(GRIDS[grid][name])
    return c


def lr_at(c, t, total):
    """Learning rate of step t (0-based) of ``total``."""
    u = t / total
    w = c["warmup"]
    if u < w:
        return c["lr"] * (t + 1) / max(1, round(w * total))
    if c["sched"] == "const":
        return c["lr"]
    p = (u - w) / (1 - w)
    if c["sched"] == "linear":
        return c["lr"] * (1 - p)
    return c["lr"] * 0.5 * (1 + math.cos(math.pi * p))


def make(c, vocab_size, seed=0):
    from fastrnn import nn, optim
    model = nn.CharRNN(vocab_size, c["hidden"], c["layers"], c["cell"], dropout=c["dropout"],
                       seed=seed)
    params = model.parameters()
    if c["optimizer"] == "adam":
        opt = optim.Adam(params, lr=c["lr"])
    else:
        opt = optim.RMSprop(params, lr=c["lr"], alpha=0.95, eps=1e-8)
    return model, params, opt


def step(model, params, opt, x, y, state, clip=5.0):
    from fastrnn import optim
    model.zero_grad()
    loss, state = model.loss_and_grad(x, y, state)
    optim.clip_grad_norm_(params, clip)
    opt.step()
    return loss, state


def split(corpus_path, val_fraction):
    from fastrnn import data
    corpus = data.load_corpus(corpus_path, progress=False)
    ids = corpus.ids
    cut = len(ids) - int(round(len(ids) * val_fraction))
    return corpus.vocab, ids[:cut], ids[cut:]


def heldout(model, val_ids, streams=50, seq=50):
    from fastrnn import data
    b = data.StreamBatcher(val_ids, streams, seq, "train", val_fraction=0.0)
    state, total, n = None, 0.0, 0
    for x, y in b:
        loss, state = model.loss(x, y, state)
        total += loss * x.size
        n += x.size
    return total / n


SHAPE = ("cell", "hidden", "layers", "batch", "seq")


def shape_of(c):
    return tuple(c[k] for k in SHAPE)


def time_steps(grid, rounds=15, n=3):
    """Seconds per training step of each distinct model shape of the grid, interleaved (random
    data, V=100), the best of ``rounds`` rounds (on a loaded machine the minimum is the
    estimate least disturbed by other processes). Configurations of one shape (optimizer, LR,
    schedule, dropout) get its speed: their cost per step differs by a few percent at most."""
    rng = np.random.default_rng(0)
    setups = {}
    for c in [dict(BASE)] + [config(name, grid) for name in GRIDS[grid]]:
        if shape_of(c) in setups:
            continue
        model, params, opt = make(c, 100)
        ids = rng.integers(0, 100, (c["seq"] + 1, c["batch"]))
        setups[shape_of(c)] = (model, params, opt, ids[:-1].copy(), ids[1:].copy())
        step(*setups[shape_of(c)], None)                   # compile / warm
    times = {k: [] for k in setups}
    for _ in range(rounds):
        for key, (model, params, opt, x, y) in setups.items():
            t0 = time.perf_counter()
            for _ in range(n):
                step(model, params, opt, x, y, None)
            times[key].append((time.perf_counter() - t0) / n)
    best = {k: min(v) for k, v in times.items()}
    base = best[shape_of(BASE)]
    return {name: {"s_per_step": best[shape_of(config(name, grid))],
                   "speed_vs_base": base / best[shape_of(config(name, grid))]}
            for name in GRIDS[grid]}


def budget_steps(c, seconds, speed_vs_base):
    base_steps_per_s = ANCHOR_TOK_S / (BASE["batch"] * BASE["seq"])
    return max(1, int(round(seconds * base_steps_per_s * speed_vs_base)))


def run_one(name, grid, c, steps, vocab, train_ids, val_ids, seed=0):
    from fastrnn import data
    model, params, opt = make(c, vocab.size, seed)
    b = data.StreamBatcher(train_ids, c["batch"], c["seq"], "train", val_fraction=0.0)
    state, losses = None, []
    t0 = time.perf_counter()
    for t in range(steps):
        opt.lr = lr_at(c, t, steps)
        x, y = b.next_batch()
        if b.new_epoch:
            state = None
        loss, state = step(model, params, opt, x, y, state)
        if not math.isfinite(loss):
            return {"diverged_at": t}
        losses.append(loss)
    train_time = time.perf_counter() - t0
    val = heldout(model, val_ids)
    return {"steps": steps, "tokens": steps * c["batch"] * c["seq"],
            "epochs": steps / b.batches_per_epoch,
            "train_loss_last100": float(np.mean(losses[-100:])), "heldout": val,
            "wall_s": train_time}


def pop(queue):
    import fcntl
    with open(queue, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        lines = [ln for ln in f.read().splitlines() if ln.strip()]
        if not lines:
            return None
        f.seek(0)
        f.truncate()
        f.write("".join(ln + "\n" for ln in lines[1:]))
        return lines[0].split()


def run_queue(a):
    from fastrnn import data
    speeds = json.load(open(a.speeds)) if a.speeds else {}
    splits = {}
    while True:
        item = pop(a.queue)
        if item is None:
            return
        grid, name, budget = item[0], item[1], float(item[2])
        corpus = item[3] if len(item) > 3 else data.default_corpus_path()
        if corpus not in splits:
            splits[corpus] = split(corpus, a.val_fraction)
        vocab, tr, va = splits[corpus]
        c = config(name, grid)
        sp = speeds.get(name, {}).get("speed_vs_base", 1.0)
        steps = budget_steps(c, budget, sp)
        res = run_one(name, grid, c, steps, vocab, tr, va)
        rec = {"grid": grid, "name": name, "budget_s": budget, "speed_vs_base": sp,
               "corpus": os.path.basename(corpus), "config": c, **res}
        with open(a.out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)


def describe(c):
    base = c["cell"] + f" {c['layers']}x{c['hidden']}"
    sched = {"cosine": "cosine", "linear": "linear", "const": "constant"}[c["sched"]]
    return (f"{base}, B={c['batch']} T={c['seq']}, {c['optimizer']} {c['lr']:g}, {sched}"
            + (f", dropout {c['dropout']:g}" if c["dropout"] else ""))


def print_table(path):
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    corpora = sorted({r["corpus"] for r in rows})
    keys = []
    for r in rows:
        if (r["budget_s"], describe(r["config"])) not in keys:
            keys.append((r["budget_s"], describe(r["config"])))
    print("| budget | configuration | steps | " + " | ".join(corpora) + " |")
    print("|---|---|---|" + "---|" * len(corpora))
    for budget, d in keys:
        cells, steps = [], ""
        for c in corpora:
            hit = [r for r in rows if r["corpus"] == c and r["budget_s"] == budget
                   and describe(r["config"]) == d]
            cells.append(f"{hit[-1]['heldout']:.3f}" if hit else "")
            steps = steps or (f"{hit[-1]['steps']:,}" if hit else "")
        print(f"| S={budget:g} | {d} | {steps} | " + " | ".join(cells) + " |")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--time-steps", metavar="GRID")
    p.add_argument("--run", metavar="GRID")
    p.add_argument("--only", default=None, help="comma-separated config names")
    p.add_argument("--budget", type=float, default=60)
    p.add_argument("--corpus", default=None)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--speeds", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="grid.jsonl")
    p.add_argument("--table", default=None, metavar="JSONL",
                   help="print the results in JSONL as a markdown table and exit")
    p.add_argument("--queue", default=None,
                   help="a file of 'GRID NAME BUDGET CORPUS' lines: run them one by one, "
                        "taking each from the top under a lock (several workers may share it)")
    a = p.parse_args()
    if a.threads:
        import fastrnn
        fastrnn.set_num_threads(a.threads)
    if a.time_steps:
        json.dump(time_steps(a.time_steps), sys.stdout, indent=1)
        return
    if a.table:
        return print_table(a.table)
    from fastrnn import data
    if a.queue:
        return run_queue(a)
    corpus = a.corpus or data.default_corpus_path()
    vocab, tr, va = split(corpus, a.val_fraction)
    speeds = json.load(open(a.speeds)) if a.speeds else {}
    names = a.only.split(",") if a.only else list(GRIDS[a.run])
    for name in names:
        c = config(name, a.run)
        sp = speeds.get(name, {}).get("speed_vs_base", 1.0)
        steps = budget_steps(c, a.budget, sp)
        res = run_one(name, a.run, c, steps, vocab, tr, va)
        rec = {"grid": a.run, "name": name, "budget_s": a.budget, "speed_vs_base": sp,
               "corpus": os.path.basename(corpus), "config": c, **res}
        with open(a.out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
