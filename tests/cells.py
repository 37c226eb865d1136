"""One uniform view of every cell of a backend module (``fastrnn.reference`` or
``fastrnn.kernels``), so each test is written once and runs for RNN(tanh/relu), LSTM, GRU.

States are tuples: ``(h,)`` or ``(h, c)``; parameters are ``(weight_ih, weight_hh, bias_ih,
bias_hh)``.
"""

import numpy as np

import fastrnn.kernels
from fastrnn import cells

VARIANTS = {label: (cell, options) for label, cell, options in cells.variants()}
CELL_NAMES = list(VARIANTS)                     # rnn_tanh, rnn_relu, lstm, gru


class Cell:
    def __init__(self, name, mod):
        """name: a label of ``CELL_NAMES``; mod: ``fastrnn.reference`` or ``fastrnn.kernels``."""
        self.name = name
        spec, self.kw = VARIANTS[name]
        self.kind, self.gates, self.n_states = spec.name, spec.gates, spec.n_states
        self.fns = spec.functions("kernels" if mod is fastrnn.kernels else "reference")

    # ------------------------------------------------------------ data
    def params(self, rng, D, H, dtype=np.float64, scale=0.5):
        G = self.gates
        return tuple(rng.uniform(-scale, scale, s).astype(dtype)
                     for s in ((G * H, D), (G * H, H), (G * H,), (G * H,)))

    def states(self, rng, B, H, dtype=np.float64):
        return tuple(rng.uniform(-0.5, 0.5, (B, H)).astype(dtype) for _ in range(self.n_states))

    # ------------------------------------------------------------ sequence
    def forward(self, x, states, params):
        """-> hs (T, B, H), final states tuple, cache"""
        out = self.fns.forward(x, *states, *params, **self.kw)
        if self.n_states == 2:
            hs, c_n, cache = out
            return hs, (hs[-1], c_n), cache
        hs, cache = out
        return hs, (hs[-1],), cache

    def backward(self, dhs, cache, dfinals=None, truncate=None):
        """-> dx, dstates tuple, dparams tuple"""
        dfinals = dfinals if dfinals is not None else (None,) * self.n_states
        out = self.fns.backward(dhs, cache, *dfinals, truncate=truncate)
        ns = self.n_states
        return out[0], tuple(out[1:1 + ns]), tuple(out[1 + ns:])

    def forward_proj(self, xw, states, weight_hh, bias_hh):
        out = self.fns.forward_proj(xw, *states, weight_hh, bias_hh, **self.kw)
        if self.n_states == 2:
            hs, c_n, cache = out
            return hs, (hs[-1], c_n), cache
        hs, cache = out
        return hs, (hs[-1],), cache

    def backward_proj(self, dhs, cache, dfinals=None, truncate=None):
        """-> dxw, dstates tuple, (dweight_hh, dbias_hh)"""
        dfinals = dfinals if dfinals is not None else (None,) * self.n_states
        out = self.fns.backward_proj(dhs, cache, *dfinals, truncate=truncate)
        ns = self.n_states
        return out[0], tuple(out[1:1 + ns]), tuple(out[1 + ns:])

    # ------------------------------------------------------------ one step
    def step_forward(self, x, states, params):
        """-> next states tuple, cache"""
        out = self.fns.step_forward(x, *states, *params, **self.kw)
        return tuple(out[:-1]), out[-1]

    def step_backward(self, dstates, cache):
        """-> dx, dstates_prev tuple, dparams tuple"""
        out = self.fns.step_backward(*dstates, cache)
        ns = self.n_states
        return out[0], tuple(out[1:1 + ns]), tuple(out[1 + ns:])


def rel_err(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    denom = max(np.abs(a).max(initial=0), np.abs(b).max(initial=0), 1e-300)
    return np.abs(a - b).max(initial=0) / denom


def random_cell(mod, name, T=3, B=2, D=4, H=5, dtype=np.float64):
    """A small random problem for one cell of a backend (``fastrnn.cells.random_problem``,
    weights in +-0.5): cell, x, states, params."""
    cell = Cell(name, mod)
    spec = VARIANTS[name][0]
    x, states, params, _ = cells.random_problem(spec, T, B, D, H, dtype, seed=0, scale=0.5)
    return cell, x, states, params
