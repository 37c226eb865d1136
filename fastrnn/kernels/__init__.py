"""Numba kernels: compiled twins of every function in ``fastrnn.reference``, with the same
names, signatures and results (float64 to round-off, float32 to ~1e-6 relative).

The time loops of forward, full and truncated BPTT run entirely in compiled code; see
``fastrnn.kernels.lstm`` for the structure they share.

``__all__`` lists the twins of ``fastrnn.reference``'s functions, and each public module here
is the twin of the reference module of the same name. Code outside ``kernels/`` uses those
and, besides them, only these names, each from a private module (a name starting with ``_``
stays inside ``kernels/``):

- the time loops and the micro-GEMM, for callers that run them on buffers they manage
  (``fastrnn.compat``): ``TIME_LOOPS``, ``split_rows``, ``pack_forward``, ``pack_backward``,
  ``pack_panels``, ``pack_panels_T``, ``pack_into``, ``panel_width``, ``MR_MAX``,
  ``gemm_rows``, ``gemm_packed``, ``gemm_packed_cols``, ``matmul_tn_colsum``,
  ``split_small_problems`` (``_loops``);
- the scalar functions compiled code elsewhere may call like ``math.tanh``: ``tanh``,
  ``sigmoid``, ``exp``, ``fmax``, ``flush`` (``_math``);
- what ``fastrnn bench`` times: ``per_step_product``, ``lstm_gate_pass`` (``_probes``);
- ``warmup``, which ``fastrnn.warmup()`` calls (``_warmup``).
"""

from .gru import (gru_backward, gru_backward_proj, gru_forward, gru_forward_proj,
                  gru_step_backward, gru_step_forward)
from .loss import softmax_cross_entropy
from .lstm import (lstm_backward, lstm_backward_proj, lstm_forward, lstm_forward_proj,
                   lstm_step_backward, lstm_step_forward)
from .rnn import (rnn_backward, rnn_backward_proj, rnn_forward, rnn_forward_proj,
                  rnn_step_backward, rnn_step_forward)

# the public surface for callers outside kernels/ (see above), not twins
from ._loops import (MR_MAX, TIME_LOOPS, gemm_packed, gemm_packed_cols,  # noqa: F401
                     gemm_rows, matmul_tn_colsum, pack_backward, pack_forward, pack_into,
                     pack_panels, pack_panels_T, panel_width, split_rows, split_small_problems)
from ._math import exp, flush, fmax, sigmoid, tanh  # noqa: F401
from ._probes import lstm_gate_pass, per_step_product  # noqa: F401
from ._warmup import warmup  # noqa: F401

__all__ = [
    "rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward",
    "rnn_forward_proj", "rnn_backward_proj",
    "lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward",
    "lstm_forward_proj", "lstm_backward_proj",
    "gru_step_forward", "gru_step_backward", "gru_forward", "gru_backward",
    "gru_forward_proj", "gru_backward_proj",
    "softmax_cross_entropy",
]
