"""The time loops and the micro-GEMM, exported by ``fastrnn.kernels`` for callers that run them
directly on buffers they manage (``fastrnn.compat``: one serial compiled call per small
sequence, weights packed once and kept). Everything here is the kernels' own code; see
``_bptt`` and ``_gemm``.

- ``TIME_LOOPS[cell]``: ``(forward, backward)`` of every cell in ``fastrnn.cells.CELLS`` (its
  kernel module's ``KERNELS.forward``, ``KERNELS.backward``):
  ``forward(xw, bias_hh, wp, split, hs, cs, saved, flag)`` and full BPTT
  ``backward(dhs, dh_n, ds0, hs, cs, saved, wp, split, dxw, dhw, dh0, flag)`` (``_bptt``'s
  module docstring); each runs serially when ``split`` has one chunk.
- ``split_rows(B, macs)``, ``pack_forward(weight_hh)``, ``pack_backward(weight_hh)``.
- ``pack_panels(W)``, ``pack_into(W, Wp)`` (compiled, Wp zeroed), ``pack_panels_T(A)``
  (compiled, allocates: the panels of A.T), ``panel_width(dtype)``,
  ``gemm_rows(a, r0, m, Wp, c)`` (njit, up to ``MR_MAX`` rows), ``gemm_packed(a, Wp, out)``
  (a whole serial product), ``gemm_packed_cols(a, Wp, out, threads)`` (the same split over
  threads by columns, the same bits) and ``matmul_tn_colsum(a, b, out, colsum, threads)``.
- ``split_small_problems()``: a context in which every problem takes the loops' and products'
  parallel copies (for a warm-up that compiles both).
"""

import contextlib

from .. import cells
from . import _blocks
from ._blocks import matmul_tn_colsum  # noqa: F401
from ._bptt import pack_backward, pack_forward, split_rows  # noqa: F401
from ._gemm import MR_MAX, gemm_packed, gemm_rows, pack_panels, panel_width  # noqa: F401
from ._gemm import gemm_packed_cols, pack_panels_T  # noqa: F401
from ._gemm import _pack_into as pack_into  # noqa: F401



def _time_loops(cell):
    kernels = cell.module_in("kernels").KERNELS
    return kernels.forward, kernels.backward


TIME_LOOPS = {name: _time_loops(cell) for name, cell in cells.CELLS.items()}


@contextlib.contextmanager
def split_small_problems():
    rule = _blocks.MIN_MACS_PER_THREAD
    _blocks.MIN_MACS_PER_THREAD = 1
    try:
        yield
    finally:
        _blocks.MIN_MACS_PER_THREAD = rule
