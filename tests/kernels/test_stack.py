"""The one-call stack step (sampling) and its token pick against their reference twins; the
step of every cell in fastrnn.cells is that cell's kernel module's and stays in numba's cache."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastrnn.kernels.stack as K
import fastrnn.reference.stack as R
from fastrnn import cells
from cells import rel_err


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", [label for label, _, _ in cells.variants()])
def test_stack_step_kernel_equals_reference(cell, dtype):
    rng = np.random.default_rng(0)
    L, B, H, V = 3, 2, 9, 7
    G = cells.SAMPLER_GATES[K.CELL_CODES[cell]]
    a = lambda *s: rng.uniform(-0.5, 0.5, s).astype(dtype)  # noqa: E731
    args = (a(V, G * H), a(L, G * H, H), a(L, G * H, H), a(L, G * H), a(L, G * H), a(V, H), a(V))
    h, c = a(L, B, H), a(L, B, H)
    tokens = np.array([3, 6])
    hr, cr = h.copy(), c.copy()
    out_r = R.stack_step(tokens, R.CELL_CODES[cell], *args, hr, cr)
    out_k = K.stack_step(tokens, K.CELL_CODES[cell], *args, h, c)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert out_k.dtype == dtype
    assert rel_err(out_k, out_r) < tol and rel_err(h, hr) < tol
    if cells.variants()[K.CELL_CODES[cell]][1].n_states == 2:
        assert rel_err(c, cr) < tol


def test_the_stack_steps_every_cell_with_its_kernel_modules_step_row():
    for label, cell, options in cells.variants():
        kernels = cell.module_in("kernels").KERNELS
        step, flag = K.stepper(K.CELL_CODES[label])
        assert flag == kernels.flag(**options), label
        step = getattr(step, "py_func", step)              # a dispatcher unless JIT is off
        assert step.__globals__["step_row"] is kernels.step_row, label
        assert step.__name__ == f"{cell.name}_step_into"   # numba's cache file is named so


CACHED = """
import json, numpy as np
from fastrnn import nn
from fastrnn.kernels import stack
s = nn.CharRNN(5, 3, 2, cell="gru", dtype=np.float32).sampler()
s.step([1])
s.generate(1, 3, rng=np.random.default_rng(0))
fns = stack._BY_CODE[s.cell]
print(json.dumps([sum(getattr(f.stats, k).values()) for k in ("cache_hits", "cache_misses")
                  for f in (fns.step_into, fns.generate)]))
"""


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"),
                    reason="numba's cache needs compiled code")
def test_a_second_process_loads_the_samplers_step_from_the_cache(tmp_path):
    """The per-cell copies are compiled once, not in every process (a closure over the cell's
    function would be: see kernels/_bptt.py)."""
    def run():
        env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
        out = subprocess.run([sys.executable, "-c", CACHED], env=env, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])
    cold_hits, _, cold_misses, _ = run()
    assert cold_hits == 0 and cold_misses > 0
    warm = run()
    assert warm[:2] == [1, 1] and warm[2:] == [0, 0], warm


@pytest.mark.parametrize("top_k,argmax,temperature", [(0, False, 1.0), (3, False, 0.7),
                                                      (0, True, 1.0), (0, False, 5.0)])
def test_pick_equals_reference(top_k, argmax, temperature):
    rng = np.random.default_rng(0)
    probs = np.empty(9)
    for _ in range(200):
        logits = rng.normal(size=9) * 3
        u = rng.random()
        assert K._pick(logits, temperature, top_k, argmax, u, probs) == \
            R.pick(logits, temperature, top_k, argmax, u)
