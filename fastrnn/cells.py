"""The cells fastrnn knows, each described once. nn, train, cli, bench, the warm-up, the tests
and the asv benchmarks read these descriptions instead of re-stating them.

A cell is its name, its gate blocks in PyTorch's order (the row blocks of ``weight_ih`` and
``weight_hh``), its states, its options and its functions: the same six, with the same
signatures, in ``fastrnn.reference.<module>`` (plain NumPy) and ``fastrnn.kernels.<module>``
(compiled), each module listing them in its ``FUNCTIONS`` table.

This module imports neither backend when it is imported (both import it for their gate
counts); ``Cell.functions`` imports the one asked for.
"""

from typing import Callable, NamedTuple

import numpy as np


class CellFunctions(NamedTuple):
    """One backend's functions of a cell (see ``fastrnn.reference`` for the conventions)."""
    step_forward: Callable
    step_backward: Callable
    forward: Callable
    backward: Callable
    forward_proj: Callable
    backward_proj: Callable


class Cell(NamedTuple):
    name: str                 # as in nn.Recurrent(cell=...) and fastrnn train --cell
    gate_names: tuple         # row blocks of weight_ih / weight_hh, in order
    state_names: tuple        # ("h",) or ("h", "c"): what forward returns after hs
    options: dict             # keyword -> allowed values, the first is the default
    module: str               # fastrnn.reference.<module> and fastrnn.kernels.<module>

    @property
    def gates(self):
        return len(self.gate_names)

    @property
    def n_states(self):
        return len(self.state_names)

    def functions(self, backend="kernels"):
        """The cell's ``CellFunctions`` in ``fastrnn.kernels`` or ``fastrnn.reference``."""
        if backend == "kernels":
            from . import kernels as package
        elif backend == "reference":
            from . import reference as package
        else:
            raise ValueError(f"backend must be 'kernels' or 'reference', got {backend!r}")
        return getattr(package, self.module).FUNCTIONS


RNN = Cell("rnn", ("h",), ("h",), {"nonlinearity": ("tanh", "relu")}, "rnn")
LSTM = Cell("lstm", ("i", "f", "g", "o"), ("h", "c"), {}, "lstm")
GRU = Cell("gru", ("r", "z", "n"), ("h",), {}, "gru")

CELLS = {c.name: c for c in (RNN, LSTM, GRU)}
NAMES = tuple(CELLS)


def get(name):
    """The description of the cell called ``name``; a ValueError lists the known ones."""
    try:
        return CELLS[name]
    except (KeyError, TypeError):
        raise ValueError(f"cell must be one of {list(NAMES)}, got {name!r}") from None


def label(cell, options):
    """A cell with the values of its options as one name: ``rnn_tanh``, ``lstm``."""
    return "_".join([cell.name] + [str(options[k]) for k in cell.options])


def variants():
    """Every cell with each combination of its options: ``(label, cell, options)``, e.g.
    ``("rnn_tanh", RNN, {"nonlinearity": "tanh"})``, ``("lstm", LSTM, {})``."""
    out = []
    for cell in CELLS.values():
        combos = [{}]
        for key, values in cell.options.items():
            combos = [dict(c, **{key: v}) for c in combos for v in values]
        out.extend((label(cell, c), cell, c) for c in combos)
    return out


def random_problem(cell, T, B, D, H, dtype, seed=0, scale=None):
    """A random sequence problem for ``cell`` (benchmarks, the warm-up, tests):
    -> x (T, B, D), states (one (B, H) array per state), params (weight_ih (G*H, D),
    weight_hh (G*H, H), bias_ih, bias_hh), dhs (T, B, H). Weights are uniform in
    +-scale (default 1/sqrt(H), PyTorch's initialisation), states uniform in +-0.5."""
    rng = np.random.default_rng(seed)
    G = cell.gates
    s = 1 / np.sqrt(H) if scale is None else scale
    x = rng.normal(size=(T, B, D)).astype(dtype)                             # (T, B, D)
    states = tuple(rng.uniform(-0.5, 0.5, (B, H)).astype(dtype)
                   for _ in range(cell.n_states))                           # (B, H) each
    params = tuple(rng.uniform(-s, s, shape).astype(dtype)
                   for shape in ((G * H, D), (G * H, H), (G * H,), (G * H,)))
    dhs = rng.normal(size=(T, B, H)).astype(dtype)                           # (T, B, H)
    return x, states, params, dhs


# The sampler's compiled stack step (kernels/stack.py) takes the variant as an integer code.
SAMPLER_CODES = {label: code for code, (label, _, _) in enumerate(variants())}
SAMPLER_GATES = {code: cell.gates for code, (_, cell, _) in enumerate(variants())}
