"""The ``fastrnn`` command line (argparse), nothing else: each sub-command calls a module."""

import argparse
import sys

from . import __version__


def _csv(kind):
    def parse(s):
        try:
            return tuple(kind(v) for v in s.split(",") if v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {s!r}")
    return parse


def _cells(s):
    cells = _csv(str)(s)
    bad = [c for c in cells if c not in ("lstm", "gru", "rnn")]
    if bad or not cells:
        raise argparse.ArgumentTypeError(f"cells must be among lstm,gru,rnn, got {s!r}")
    return cells


def _positive(s):
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastrnn",
        description="Train recurrent networks (RNN, LSTM, GRU) on the CPU with Numba kernels.",
    )
    parser.add_argument("--version", action="version", version=f"fastrnn {__version__}")
    sub = parser.add_subparsers(dest="command")

    b = sub.add_parser("bench", help="tokens/s of fastrnn vs the NumPy reference (and PyTorch)",
                       description="Forward + full-BPTT backward of one cell on a dense input "
                                   "(D = H), all backends measured in this process.")
    b.add_argument("--cells", type=_cells, default=("lstm", "gru", "rnn"),
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
    b.add_argument("--layers", type=_csv(int), default=(1, 2),
                   help="with --model: comma-separated layer counts (default: 1,2)")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
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
