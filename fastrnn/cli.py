"""The ``fastrnn`` command line (argparse). Sub-commands arrive with the trainer."""

import argparse
import sys

from . import __version__


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastrnn",
        description="Train recurrent networks (RNN, LSTM, GRU) on the CPU with Numba kernels.",
    )
    parser.add_argument("--version", action="version", version=f"fastrnn {__version__}")
    return parser


def main(argv=None):
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
