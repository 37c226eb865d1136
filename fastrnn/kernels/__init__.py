"""Numba kernels: compiled twins of every function in ``fastrnn.reference``, with the same
names, signatures and results (float64 to round-off, float32 to ~1e-6 relative).

The time loops of forward, full and truncated BPTT run entirely in compiled code; see
``fastrnn.kernels.lstm`` for the structure they share.
"""

from .gru import (gru_backward, gru_backward_proj, gru_forward, gru_forward_proj,
                  gru_step_backward, gru_step_forward)
from .loss import softmax_cross_entropy
from .lstm import (lstm_backward, lstm_backward_proj, lstm_forward, lstm_forward_proj,
                   lstm_step_backward, lstm_step_forward)
from .rnn import (rnn_backward, rnn_backward_proj, rnn_forward, rnn_forward_proj,
                  rnn_step_backward, rnn_step_forward)

__all__ = [
    "rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward",
    "rnn_forward_proj", "rnn_backward_proj",
    "lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward",
    "lstm_forward_proj", "lstm_backward_proj",
    "gru_step_forward", "gru_step_backward", "gru_forward", "gru_backward",
    "gru_forward_proj", "gru_backward_proj",
    "softmax_cross_entropy",
]
