"""The scalar functions compiled code outside ``fastrnn.kernels`` may call (``fastrnn.compat``):
``tanh``, ``sigmoid``, ``exp``, ``fmax`` that LLVM can vectorise and ``flush`` (no subnormal
numbers). Call them from ``@njit`` code like ``math.tanh``; their accuracy, NaN/Inf behaviour
and the reasons for them are in the implementation, ``fastrnn.kernels._math``.
"""

from ._math import exp, flush, fmax, sigmoid, tanh

__all__ = ["tanh", "sigmoid", "exp", "fmax", "flush"]
