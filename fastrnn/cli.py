"""The ``fastrnn`` command line (argparse), nothing else: each sub-command is run by
``fastrnn.commands`` (``fastrnn bench`` by ``fastrnn.bench``)."""

import argparse
import sys

from . import __version__

# fastrnn.cells (it imports numpy) is imported inside the functions: until ``main`` runs,
# a Ctrl-C could only end in a traceback, so the module itself imports almost nothing


def _cell_names():
    from .cells import NAMES
    return NAMES


def _csv(kind):
    def parse(s):
        try:
            return tuple(kind(v) for v in s.split(",") if v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {s!r}")
    return parse


def _cells(s):
    cells = _csv(str)(s)
    bad = [c for c in cells if c not in _cell_names()]
    if bad or not cells:
        raise argparse.ArgumentTypeError(f"cells must be among {','.join(_cell_names())}, "
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


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows each option's default, except where there is none to show (None,
    a flag's False) or the help text already says it."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False \
                or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _parser(sub, name, **kw):
    """A sub-command parser: no abbreviated options, defaults shown in --help."""
    return sub.add_parser(name, allow_abbrev=False, formatter_class=_Help, **kw)


def _add_train(sub):
    t = _parser(sub, "train", help="train a character-level language model",
                description="Train a char-level RNN/LSTM/GRU language model. With no CORPUS, "
                            "trains on the embedded default corpus. With --resume, every "
                            "setting not given on the command line comes from the checkpoint.")
    t.add_argument("corpus", nargs="?", help="text file (default: the embedded corpus)")
    t.add_argument("--byte", action="store_true",
                   help="byte-level tokens instead of UTF-8 characters")
    t.add_argument("--cell", choices=_cell_names(), default="lstm", help="cell type")
    t.add_argument("--hidden", type=_positive, default=128, help="hidden units per layer")
    t.add_argument("--layers", type=_positive, default=2, help="number of stacked layers")
    t.add_argument("--seq", type=_positive, default=50, help="window length T (BPTT chunk)")
    t.add_argument("--batch", type=_positive, default=50, help="number of streams B")
    t.add_argument("--dropout", type=_fraction, default=0.0,
                   help="dropout between layers, in [0, 1)")
    t.add_argument("--truncate", type=_nonneg_int, default=None,
                   help="windowed truncated BPTT inside each window (default: full BPTT)")
    t.add_argument("--optimizer", choices=("adam", "rmsprop"), default="rmsprop",
                   help="rmsprop is char-rnn's (alpha 0.95)")
    t.add_argument("--lr", type=_positive_finite, default=8e-3,
                   help="peak learning rate")
    t.add_argument("--clip", type=_positive_float, default=5.0,
                   help="clip the global gradient norm")
    t.add_argument("--schedule", choices=("cosine", "linear", "none", "step"), default="cosine",
                   help="learning rate: warm-up then cosine (or linear) decay to 0 at the end "
                        "of the budget, re-estimated as a --time run goes; "
                        "none: constant; step: x0.97 every 10 epochs")
    t.add_argument("--warmup", type=_fraction, default=0.02,
                   help="warm-up, as a fraction of the budget")
    t.add_argument("--steps", type=_positive, default=None,
                   help="stop at step N (counted from the run's start, also on --resume)")
    t.add_argument("--epochs", type=_positive_float, default=None,
                   help="stop after N epochs (counted from the run's start; default: 10 "
                        "when no budget is given)")
    t.add_argument("--time", type=_positive_float, default=None,
                   help="stop after N seconds of this invocation")
    t.add_argument("--val-fraction", type=_val_fraction, default=0.05,
                   help="fraction of the corpus held out for validation, in [0, 0.5)")
    t.add_argument("--val-split", choices=("tail", "streams"), default="tail",
                   help="tail: hold out the corpus's last --val-fraction, never "
                        "trained on; streams: the last --val-fraction of each of the --batch "
                        "streams (char-rnn's split, reads optimistic)")
    t.add_argument("--val-file", default=None, metavar="FILE",
                   help="validate on this text file instead (the whole corpus trains)")
    t.add_argument("--eval-every", type=_positive, default=None,
                   help="evaluate every N steps (default None: by wall time, at most ~2%% of "
                        "the run; and once on every held-out window at the end)")
    t.add_argument("--eval-batches", type=_positive, default=20,
                   help="validation windows per periodic evaluation (B*T tokens each)")
    t.add_argument("--log-every", type=_positive, default=10,
                   help="write a log.jsonl record (train loss averaged over these steps, "
                        "wall time) every N steps")
    t.add_argument("--checkpoint-every", type=_positive, default=500,
                   help="write the checkpoint every N steps (and at the end)")
    t.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating-point type of weights and computation")
    t.add_argument("--seed", type=_nonneg_int, default=0,
                   help="seed of the initial weights and of dropout")
    t.add_argument("--threads", type=_positive, default=None,
                   help="kernel threads (default: all cores, or NUMBA_NUM_THREADS)")
    t.add_argument("--out", default=None, help="run directory (default: runs/<time>-<model>)")
    t.add_argument("--resume", default=None, metavar="CHECKPOINT",
                   help="continue a run from its checkpoint (file or run directory)")
    t.add_argument("--overwrite", action="store_true",
                   help="start a new run in an --out directory that holds a checkpoint, "
                        "replacing it (and its log)")
    t.add_argument("--plot", action="store_true", help="write loss.png (needs the plot extra)")
    t.add_argument("--no-progress", action="store_true",
                   help="no progress bar (messages are still printed)")
    t.add_argument("--on-nan", choices=("stop", "skip", "rollback"), default="stop",
                   help="when the loss or gradient becomes NaN/Inf: stop, skip that "
                        "update, or roll back to the last good state and halve the learning "
                        "rate")
    t.add_argument("--nan-retries", type=_positive, default=3,
                   help="with --on-nan skip/rollback: give up after this many tries in a row")
    return t


def _add_sample(sub):
    s = _parser(sub, "sample", help="generate text from a checkpoint",
                description="Generate text from a trained model. The --prime text is printed "
                            "first, then the generated continuation.")
    s.add_argument("checkpoint", help="checkpoint file or run directory (e.g. runs/latest)")
    s.add_argument("-n", "--length", type=_nonneg_int, default=500,
                   help="tokens to generate (0: stream until interrupted)")
    s.add_argument("--temperature", type=_positive_finite, default=None,
                   help="below 1: more conservative, above 1: more random (default: 0.8)")
    s.add_argument("--top-k", type=_positive, default=None,
                   help="sample among the k likeliest tokens only")
    s.add_argument("--prime", default="", help="text to start from")
    s.add_argument("--seed", type=_nonneg_int, default=None,
                   help="random seed (default: a different text each time)")
    s.add_argument("--argmax", action="store_true", help="always take the likeliest token")
    s.add_argument("--last", action="store_true",
                   help="use a run's last checkpoint (default: its best, by held-out loss)")
    s.add_argument("--beam", type=_positive, default=None, metavar="K",
                   help="beam search with K hypotheses: the likeliest continuation of -n "
                        "tokens it finds (deterministic; no --temperature, --top-k, --argmax)")
    return s


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastrnn", allow_abbrev=False, formatter_class=_Help,
        description="Train recurrent networks (RNN, LSTM, GRU) on the CPU with Numba kernels.",
    )
    parser.add_argument("--version", action="version", version=f"fastrnn {__version__}")
    sub = parser.add_subparsers(dest="command")
    parser.train_parser = _add_train(sub)     # usage errors of `train` show its usage
    _add_sample(sub)
    i = _parser(sub, "info", help="describe a checkpoint")
    i.add_argument("checkpoint", help="checkpoint file or run directory")
    e = _parser(sub, "eval", help="loss (nats and bits per char) of a model on a text file")
    e.add_argument("checkpoint", help="checkpoint file or run directory")
    e.add_argument("file", help="text file to evaluate")
    how = e.add_mutually_exclusive_group()
    how.add_argument("--streams", type=_positive, default=None,
                   help="cut the file into B streams evaluated side by side, the state carried "
                        "within each (default: one per 10,000 tokens, at most 50)")
    how.add_argument("--exact", action="store_true",
                   help="one stream, the state carried across the whole file (slower; same as "
                        "--streams 1)")

    x = _parser(sub, "export", help="write a checkpoint's model for PyTorch, safetensors or "
                                    "NumPy",
                description="Write the model of a checkpoint as a torch file (torch.save of "
                            "the state dict, config and vocabulary; load it with "
                            "fastrnn.torch_interop.TorchCharRNN), a safetensors file or a "
                            "plain .npz. Every format holds the same state-dict keys.")
    x.add_argument("checkpoint", help="checkpoint file or run directory")
    x.add_argument("out", help="file to write (.pt, .safetensors or .npz)")
    x.add_argument("--format", choices=("torch", "safetensors", "npz"), default=None,
                   help="output format (default: from OUT's suffix)")

    b = _parser(sub, "bench", help="tokens/s of fastrnn vs the NumPy reference (and PyTorch)",
                description="Forward + full-BPTT backward of one cell on a dense input (D = H), "
                            "all backends measured in this process.")
    b.add_argument("--cells", type=_cells, default=_cell_names(),
                   help=f"comma-separated among {','.join(_cell_names())} (default: all)")
    b.add_argument("--hidden", type=_csv(int), default=(128, 256, 512),
                   help="comma-separated hidden sizes (default: 128,256,512)")
    b.add_argument("--batch", type=_positive, default=50, help="batch size B")
    b.add_argument("--seq", type=_positive, default=50, help="sequence length T")
    b.add_argument("--threads", type=_positive, default=None,
                   help="threads for fastrnn, BLAS and PyTorch (default: all cores)")
    b.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating-point type")
    b.add_argument("--repeat", type=_positive, default=3,
                   help="timing rounds per measurement (the best is kept)")
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
    b.add_argument("--quality", action="store_true",
                   help="time to quality: train fastrnn's defaults (and, with --torch, the "
                        "PyTorch script of issue 15) for --time seconds each on the embedded "
                        "corpus's first 90%%, and print both losses on the last 10%%")
    b.add_argument("--time", type=_positive_finite, default=60.0,
                   help="with --quality: seconds of training for each")
    b.add_argument("--layers", type=_csv(int), default=(1, 2),
                   help="with --model: comma-separated layer counts (default: 1,2)")
    return parser


def _given_options(parser, args, argv):
    """The train options given on the command line, decided by argparse itself: the command
    line parsed again with no defaults, so an option is present only if it was given (in any
    form argparse accepts), never by matching argv text."""
    absent = object()
    probe = build_parser()
    probe.train_parser.set_defaults(**{k: absent for k in vars(args)})
    given = probe.parse_args(argv)
    return {k for k, v in vars(given).items() if v is not absent}


def main(argv=None):
    try:
        return _main(argv)
    except KeyboardInterrupt:              # Ctrl-C before a command took over: one line
        print("fastrnn: interrupted", file=sys.stderr)
        return 130


def _main(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("train", "sample", "info", "eval", "export"):
        from . import commands
        from .checkpoint import CheckpointError
        try:
            if args.command == "train":
                return commands.run_train(args, lambda: _given_options(parser, args, argv))
            return {"sample": commands.run_sample, "info": commands.run_info,
                    "eval": commands.run_eval, "export": commands.run_export}[args.command](args)
        except (CheckpointError, ValueError, OSError, ImportError) as e:
            print(f"fastrnn {args.command}: error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:          # Ctrl-C outside training's own handling: one line
            if args.command == "sample":
                sys.stdout.write("\n")
            print(f"fastrnn {args.command}: interrupted", file=sys.stderr)
            return 130
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
