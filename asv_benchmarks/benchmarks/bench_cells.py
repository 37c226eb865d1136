"""Sequence kernels of every cell (``fastrnn.kernels``): forward, full BPTT backward and
truncated backward (``truncate=5``), T=50, D=H, over H, B and dtype; the NumPy reference
(``fastrnn.reference``, same signatures) is the baseline backend at the smaller sizes.

    asv run --python=same --bench "bench_cells.Forward.*lstm.*" ...
"""

from fastrnn import cells

from .common import TIMEOUT, TIMER, cell_problem

T = 50
TRUNCATE = 5
# The reference is plain NumPy with a Python loop over time steps: run it as the baseline at
# the sizes where that is quick, and skip the rest (asv records NotImplementedError in setup
# as "skipped").
REFERENCE_MAX_H, REFERENCE_MAX_B = 128, 32


class _Cell:
    params = (list(cells.NAMES), [64, 128, 256, 512], [1, 32, 128],
              ["float32", "float64"], ["kernels", "reference"])
    param_names = ["cell", "H", "B", "dtype", "backend"]
    timer = TIMER
    timeout = TIMEOUT

    def _prepare(self, cell, H, B, dtype, backend):
        if backend == "reference" and (H > REFERENCE_MAX_H or B > REFERENCE_MAX_B):
            raise NotImplementedError("the NumPy reference runs at the smaller sizes only")
        fns = cells.get(cell).functions(backend)
        self.forward, self.backward = fns.forward, fns.backward
        x, states, params, self.dhs = cell_problem(cell, T, B, H, dtype)
        self.args = (x, *states, *params)
        # The first call compiles the kernel (or loads it from numba's cache): never timed.
        self.out = self.forward(*self.args)           # (hs, [c_n,] cache)


class Forward(_Cell):
    def setup(self, *params):
        self._prepare(*params)

    def time_forward(self, cell, H, B, dtype, backend):
        self.forward(*self.args)


class Backward(_Cell):
    """Backward of a whole sequence from the forward's cache, full or ``truncate=5``."""
    params = _Cell.params + (["full", TRUNCATE],)
    param_names = _Cell.param_names + ["truncate"]

    def setup(self, *params):
        self._prepare(*params[:-1])
        self.truncate = None if params[-1] == "full" else params[-1]
        self.backward(self.dhs, self.out[-1], truncate=self.truncate)      # warm-up

    def time_backward(self, cell, H, B, dtype, backend, truncate):
        self.backward(self.dhs, self.out[-1], truncate=self.truncate)
