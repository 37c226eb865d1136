"""The cells fastrnn knows, each described once. nn, train, cli, bench, the warm-up, the tests
and the asv benchmarks read these descriptions instead of re-stating them.

A cell is its name, its gate blocks in PyTorch's order (the row blocks of ``weight_ih`` and
``weight_hh``), its states, its options and its functions: the same six, with the same
signatures, in ``fastrnn.reference.<module>`` (plain NumPy) and ``fastrnn.kernels.<module>``
(compiled), each module listing them in its ``FUNCTIONS`` table (the kernel module lists
what the rest of ``kernels/`` runs, its time loops and the sampler's step, in ``KERNELS``).

This module imports neither backend when it is imported (both import it for their gate
counts); ``Cell.module_in`` and ``Cell.functions`` import the one asked for.
"""

import importlib
from typing import Callable, NamedTuple, Optional

import numpy as np


class CellFunctions(NamedTuple):
    """One backend's functions of a cell (see ``fastrnn.reference`` for the conventions)."""
    step_forward: Callable
    step_backward: Callable
    forward: Callable
    backward: Callable
    forward_proj: Callable
    backward_proj: Callable


class CellKernels(NamedTuple):
    """What the rest of ``fastrnn.kernels`` runs of a cell's kernel module (its ``KERNELS``):
    ``kernels._loops.TIME_LOOPS`` and the sampler's stack step (``kernels.stack``)."""
    forward: Callable         # the forward time loop (``kernels._bptt.make_forward``)
    backward: Callable        # the full-BPTT time loop (``kernels._bptt.make_backward``)
    step_row: Callable        # njit (gx, gh, work, h, c, flag): one step of one batch row
    flag: Callable            # flag(**options) -> the ``flag`` the row functions take


class Cell(NamedTuple):
    name: str                 # as in nn.Recurrent(cell=...) and fastrnn train --cell
    gate_names: tuple         # row blocks of weight_ih / weight_hh, in order
    state_names: tuple        # ("h",) or ("h", "c"): what forward returns after hs
    options: dict             # keyword -> allowed values, the first is the default
    module: str               # fastrnn.reference.<module> and fastrnn.kernels.<module>
    torch_class: Optional[str] = None   # torch.nn.<torch_class>, which takes the options as
                                        # keyword arguments of the same names (torch_interop)

    @property
    def gates(self):
        return len(self.gate_names)

    @property
    def n_states(self):
        return len(self.state_names)

    @property
    def defaults(self):
        """The default value of every option: ``{"nonlinearity": "tanh"}``, ``{}``."""
        return {key: values[0] for key, values in self.options.items()}

    def module_in(self, backend="kernels"):
        """The cell's module in ``fastrnn.kernels`` or ``fastrnn.reference``."""
        if backend not in ("kernels", "reference"):
            raise ValueError(f"backend must be 'kernels' or 'reference', got {backend!r}")
        return importlib.import_module(f"{__package__}.{backend}.{self.module}")

    def functions(self, backend="kernels"):
        """The cell's ``CellFunctions`` in ``fastrnn.kernels`` or ``fastrnn.reference``."""
        return self.module_in(backend).FUNCTIONS


RNN = Cell("rnn", ("h",), ("h",), {"nonlinearity": ("tanh", "relu")}, "rnn", "RNN")
LSTM = Cell("lstm", ("i", "f", "g", "o"), ("h", "c"), {}, "lstm", "LSTM")
GRU = Cell("gru", ("r", "z", "n"), ("h",), {}, "gru", "GRU")

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
