"""Modules users program against: explicit forward/backward, no autograd.

Every module has ``forward(...)`` returning its outputs and a cache, ``backward(dout, cache)``
returning input gradients and **accumulating** parameter gradients into ``.grad``,
``parameters()`` / ``named_parameters()``, ``zero_grad()``, ``state_dict()`` /
``load_state_dict()``. The modules own no math: each array operation of a forward or backward
is a kernel call (``fastrnn.kernels``, or ``fastrnn.reference`` with ``backend='reference'``)
or a single NumPy call, and nothing loops over time steps in Python.

Names, shapes and gate orders are PyTorch's (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
``bias_hh_l0``; LSTM i, f, g, o; GRU r, z, n), so ``state_dict()`` moves to and from
``torch.nn.LSTM`` etc. without reordering (see ``from_torch`` / ``to_torch``).

The package: ``module`` (Parameter, Module, initialisers, backends, PyTorch conversion),
``layers`` (Embedding, Linear, CrossEntropy), ``recurrent`` (Recurrent), ``charrnn``
(CharRNN); ``Sampler`` is ``fastrnn.sampler``'s.
"""

from .._checks import check_ids
from ..sampler import Sampler
from .charrnn import CharRNN
from .layers import CrossEntropy, Embedding, Linear
from .module import (BACKENDS, INITS, LINALG, Module, Parameter, State, from_torch,
                     init_orthogonal, init_uniform, to_torch)
from .recurrent import Recurrent

__all__ = ["Parameter", "Module", "Embedding", "Linear", "Recurrent", "CrossEntropy", "CharRNN",
           "Sampler", "check_ids", "from_torch", "to_torch", "State", "BACKENDS", "LINALG",
           "INITS", "init_uniform", "init_orthogonal"]
