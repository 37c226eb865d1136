"""Gradient clipping, in place, like ``torch.nn.utils``: by the global L2 norm and by value."""

from __future__ import annotations

import math
from typing import Any, Iterable

from .._checks import check_grads, check_real
from .base import _backend_module


def clip_grad_norm_(params: Iterable[Any], max_norm: float, backend: str = "kernels") -> float:
    """Scales all gradients together so that their global L2 norm is at most ``max_norm``,
    like ``torch.nn.utils.clip_grad_norm_``: ``g *= max_norm / (norm + 1e-6)`` when that
    factor is below 1. The norm is accumulated in float64 over every element (grads that are
    None are skipped). Returns the norm before clipping (a float); NaN or Inf in a gradient
    gives a NaN/Inf norm and NaN gradients, as in PyTorch (check the returned norm)."""
    max_norm = check_real("max_norm", max_norm, 0, allow_inf=True)
    fn = _backend_module(backend)
    grads = check_grads(params, "clip_grad_norm_")
    total = math.sqrt(sum(fn.sum_squares(g) for g in grads))
    coef = max_norm / (total + 1e-6)
    if not coef >= 1.0:          # also scales by NaN when the norm is NaN, as PyTorch does
        for g in grads:
            fn.scale(g, coef)
    return total


def clip_grad_value_(params: Iterable[Any], clip_value: float,
                     backend: str = "kernels") -> None:
    """Clamps every gradient element to [-clip_value, clip_value] in place (NaN stays NaN),
    like ``torch.nn.utils.clip_grad_value_``."""
    clip_value = check_real("clip_value", clip_value, 0, allow_inf=True)
    fn = _backend_module(backend)
    for g in check_grads(params, "clip_grad_value_"):
        fn.clip_value(g, clip_value)
