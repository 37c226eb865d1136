"""Pure-NumPy reference implementations: readable, exact, and the oracle for every kernel.

Every function here has a compiled twin of the same name and signature in
``fastrnn.kernels``.
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
