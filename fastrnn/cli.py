"""The ``fastrnn`` command line (argparse), nothing else: each sub-command calls a module."""

import argparse
import os
import sys

from . import __version__
from .cells import NAMES as CELL_NAMES


def _csv(kind):
    def parse(s):
        try:
            return tuple(kind(v) for v in s.split(",") if v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {s!r}")
    return parse


def _cells(s):
    cells = _csv(str)(s)
    bad = [c for c in cells if c not in CELL_NAMES]
    if bad or not cells:
        raise argparse.ArgumentTypeError(f"cells must be among {','.join(CELL_NAMES)}, "
                                         f"got {s!r}")
    return cells


def _positive(s):
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _nonneg_int(s):
    v = int(s)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def _positive_float(s):
    v = float(s)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {s}")
    return v


def _positive_finite(s):
    v = _positive_float(s)
    if v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {s}")
    return v


def _fraction(s):
    v = float(s)
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {s}")
    return v


def _val_fraction(s):
    v = float(s)
    if not 0 <= v < 0.5:
        raise argparse.ArgumentTypeError(f"must be in [0, 0.5), got {s}")
    return v


# exit codes of `fastrnn train` by the trainer's status ("done": 0; bad arguments: 2)
EXIT_CODES = {"diverged": 1, "save_failed": 1, "interrupted": 130, "aborted": 130}


def _add_train(sub):
    t = sub.add_parser("train", help="train a character-level language model",
                       description="Train a char-level RNN/LSTM/GRU language model. With no "
                                   "CORPUS, trains on the embedded default corpus.")
    t.add_argument("corpus", nargs="?", help="text file (default: the embedded corpus)")
    t.add_argument("--byte", action="store_true",
                   help="byte-level tokens instead of UTF-8 characters")
    t.add_argument("--cell", choices=CELL_NAMES, default="lstm")
    t.add_argument("--hidden", type=_positive, default=128)
    t.add_argument("--layers", type=_positive, default=2)
    t.add_argument("--seq", type=_positive, default=50, help="window length T (BPTT chunk)")
    t.add_argument("--batch", type=_positive, default=50, help="number of streams B")
    t.add_argument("--dropout", type=_fraction, default=0.0)
    t.add_argument("--truncate", type=_nonneg_int, default=None,
                   help="windowed truncated BPTT inside each window (default: full BPTT)")
    t.add_argument("--optimizer", choices=("adam", "rmsprop"), default="rmsprop")
    t.add_argument("--lr", type=_positive_finite, default=2e-3)
    t.add_argument("--clip", type=_positive_float, default=5.0,
                   help="clip the global gradient norm")
    t.add_argument("--schedule", choices=("none", "cosine", "step"), default="none")
    t.add_argument("--steps", type=_positive, default=None, help="stop after N steps")
    t.add_argument("--epochs", type=_positive_float, default=None)
    t.add_argument("--time", type=_positive_float, default=None, help="stop after N seconds")
    t.add_argument("--val-fraction", type=_val_fraction, default=0.05,
                   help="fraction of each stream kept for validation, in [0, 0.5)")
    t.add_argument("--eval-every", type=_positive, default=200)
    t.add_argument("--eval-batches", type=_positive, default=100,
                   help="validation windows per evaluation (default: 100, i.e. B*T*100 tokens)")
    t.add_argument("--checkpoint-every", type=_positive, default=500)
    t.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    t.add_argument("--seed", type=_nonneg_int, default=0)
    t.add_argument("--threads", type=_positive, default=None)
    t.add_argument("--out", default=None, help="run directory (default: runs/<time>-<model>)")
    t.add_argument("--resume", default=None, metavar="CHECKPOINT",
                   help="continue a run from its checkpoint (file or run directory)")
    t.add_argument("--plot", action="store_true", help="write loss.png (needs the plot extra)")
    t.add_argument("--no-progress", action="store_true")
    t.add_argument("--on-nan", choices=("stop", "skip", "rollback"), default="stop",
                   help="when the loss or gradient becomes NaN/Inf: stop (default), skip that "
                        "update, or roll back to the last good state and halve the learning "
                        "rate")
    t.add_argument("--nan-retries", type=_positive, default=3,
                   help="with --on-nan skip/rollback: give up after this many tries in a row")
    return t


def _add_sample(sub):
    s = sub.add_parser("sample", help="generate text from a checkpoint")
    s.add_argument("checkpoint", help="checkpoint file or run directory (e.g. runs/latest)")
    s.add_argument("-n", "--length", type=_nonneg_int, default=500)
    s.add_argument("--temperature", type=_positive_finite, default=0.8)
    s.add_argument("--top-k", type=_positive, default=None)
    s.add_argument("--prime", default="", help="text to start from")
    s.add_argument("--seed", type=_nonneg_int, default=None)
    s.add_argument("--argmax", action="store_true", help="always take the likeliest token")
    return s


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastrnn",
        description="Train recurrent networks (RNN, LSTM, GRU) on the CPU with Numba kernels.",
    )
    parser.add_argument("--version", action="version", version=f"fastrnn {__version__}")
    sub = parser.add_subparsers(dest="command")
    parser.train_parser = _add_train(sub)     # usage errors of `train` show its usage
    _add_sample(sub)
    i = sub.add_parser("info", help="describe a checkpoint")
    i.add_argument("checkpoint")
    e = sub.add_parser("eval", help="loss (nats and bits per char) of a model on a text file")
    e.add_argument("checkpoint")
    e.add_argument("file")

    b = sub.add_parser("bench", help="tokens/s of fastrnn vs the NumPy reference (and PyTorch)",
                       description="Forward + full-BPTT backward of one cell on a dense input "
                                   "(D = H), all backends measured in this process.")
    b.add_argument("--cells", type=_cells, default=CELL_NAMES,
                   help="comma-separated among lstm,gru,rnn (default: all)")
    b.add_argument("--hidden", type=_csv(int), default=(128, 256, 512),
                   help="comma-separated hidden sizes (default: 128,256,512)")
    b.add_argument("--batch", type=_positive, default=50)
    b.add_argument("--seq", type=_positive, default=50)
    b.add_argument("--threads", type=_positive, default=None,
                   help="threads for fastrnn, BLAS and PyTorch (default: all cores)")
    b.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    b.add_argument("--repeat", type=_positive, default=3)
    b.add_argument("--torch", action="store_true", help="also measure PyTorch CPU")
    b.add_argument("--no-reference", action="store_true", help="skip the NumPy reference")
    b.add_argument("--json", action="store_true", help="print the results as JSON")
    b.add_argument("--model", action="store_true",
                   help="measure the whole char-model training step (tokens -> cell(s) -> "
                        "linear(65) -> cross-entropy -> backward -> clip -> Adam) and sampling "
                        "instead of the bare cell")
    b.add_argument("--compat", action="store_true",
                   help="measure the drop-in fastrnn.compat entry points against the NumPy "
                        "tutorial code they replace")
    b.add_argument("--layers", type=_csv(int), default=(1, 2),
                   help="with --model: comma-separated layer counts (default: 1,2)")
    return parser


def _train(parser, args, argv):
    from . import train
    if args.steps is None and args.epochs is None and args.time is None:
        args.epochs = 10.0
    if args.schedule == "cosine" and args.steps is None:
        parser.train_parser.error("--schedule cosine needs --steps")
    if args.threads:
        from . import set_num_threads
        set_num_threads(args.threads)
    fields = dict(
        corpus=args.corpus, mode="byte" if args.byte else "char", cell=args.cell,
        hidden=args.hidden, layers=args.layers, seq=args.seq, batch=args.batch,
        dropout=args.dropout, truncate=args.truncate, optimizer=args.optimizer, lr=args.lr,
        clip=args.clip, schedule=args.schedule, steps=args.steps, epochs=args.epochs,
        time=args.time, val_fraction=args.val_fraction, eval_every=args.eval_every,
        eval_batches=args.eval_batches, on_nan=args.on_nan, nan_retries=args.nan_retries,
        checkpoint_every=args.checkpoint_every, dtype=args.dtype, seed=args.seed,
        out=args.out)
    if args.resume:
        # settings not given on the command line come from the checkpoint being resumed
        from .checkpoint import load_run
        from .sample import resolve
        args.resume = resolve(args.resume)
        saved = load_run(args.resume)["config"]
        given = {a.split("=")[0] for a in (argv if argv is not None else sys.argv[1:])}
        for key in fields:
            if key in ("steps", "epochs", "time", "out"):          # budgets are per run
                continue
            if key == "corpus":
                inherit = args.corpus is None
            else:
                inherit = ("--byte" if key == "mode" else "--" + key.replace("_", "-")) \
                    not in given
            if inherit:
                fields[key] = saved.get(key, fields[key])
        if args.out is None:
            fields["out"] = os.path.dirname(os.path.abspath(args.resume))
    cfg = train.TrainConfig(**fields)
    from .dist import world
    with world().abort_on_error("fastrnn train"):  # under MPI: an error on one rank ends all
        trainer = train.Trainer(cfg, resume=args.resume, progress=not args.no_progress)
        status = trainer.run()
    if not trainer.world.is_root:                  # rank 0 alone reports
        return EXIT_CODES.get(status, 0)
    print(f"{status} after {trainer.step} steps; checkpoint: {trainer.checkpoint_path}"
          + (f"; best validation {trainer.best_val:.4f} nats/char = "
             f"{trainer.best_val / 0.6931471805599453:.3f} bits/char"
             if trainer.best_val is not None else ""))
    if args.plot:
        png = train.plot_log(os.path.join(trainer.out, "log.jsonl"),
                             os.path.join(trainer.out, "loss.png"))
        print(f"loss curves: {png}")
    return EXIT_CODES.get(status, 0)


def _sample(args):
    from .sample import generate, load_model
    model, vocab, _ = load_model(args.checkpoint)
    generate(model, vocab, args.length, args.temperature, args.top_k, args.prime, args.seed,
             args.argmax, write=lambda s: (sys.stdout.write(s), sys.stdout.flush()))
    sys.stdout.write("\n")
    return 0


def _info(args):
    from .sample import load_model
    model, vocab, tree = load_model(args.checkpoint)
    cfg = tree["config"]
    n = sum(p.data.size for p in model.parameters())
    print(f"{cfg['cell']} {cfg['layers']} x {cfg['hidden']}, {cfg['dtype']}, {n:,} parameters")
    print(f"vocabulary: {vocab.size} {vocab.mode} tokens")
    print(f"trained {tree['step']} steps, {tree['tokens']:,} tokens, {tree['elapsed']:.0f} s")
    if tree["best_val"] is not None:
        print(f"best validation loss: {tree['best_val']:.4f} nats/char "
              f"({tree['best_val'] / 0.6931471805599453:.3f} bits/char)")
    print(f"corpus: {cfg['corpus'] or '(embedded default)'}")
    return 0


def _eval(args):
    from .sample import bits, evaluate_file, load_model
    model, vocab, _ = load_model(args.checkpoint)
    nats, n = evaluate_file(model, vocab, args.file)
    print(f"{args.file}: {n:,} tokens, {nats:.4f} nats/char, {bits(nats):.4f} bits/char")
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("train", "sample", "info", "eval"):
        from .checkpoint import CheckpointError
        try:
            return {"train": lambda: _train(parser, args, argv), "sample": lambda: _sample(args),
                    "info": lambda: _info(args), "eval": lambda: _eval(args)}[args.command]()
        except (CheckpointError, ValueError, OSError, ImportError) as e:
            print(f"fastrnn {args.command}: error: {e}", file=sys.stderr)
            return 2
    if args.command == "bench":
        if args.torch:
            try:
                import torch  # noqa: F401
            except ImportError:
                parser.error("--torch needs PyTorch: pip install -e '.[torch]'")
        from . import bench
        return bench.main(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
