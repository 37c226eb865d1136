"""Softmax cross-entropy over a sequence of logits, in plain NumPy.

    p = softmax(logits[t, b])                  (V,)
    loss = mean over counted (t, b) of -log p[targets[t, b]]
    dlogits[t, b] = (p - onehot(targets[t, b])) * mask[t, b] / count

Stable for any finite logits (the row maximum is subtracted before ``exp``, so logits of 1e4
neither overflow nor lose the answer). The kernel twin is ``fastrnn.kernels.loss``.
"""

import numpy as np

from .. import _checks as ck


def check_loss_inputs(logits, targets, mask):
    """Validates the arguments of ``softmax_cross_entropy``; returns (mask as logits' dtype)."""
    ck.check_float_array("logits", logits, 3)
    T, B, V = logits.shape
    if T == 0 or B == 0 or V == 0:
        raise ValueError(f"logits must have shape (T, B, V) with T, B, V >= 1, "
                         f"got {logits.shape}")
    if not isinstance(targets, np.ndarray) or not np.issubdtype(targets.dtype, np.integer):
        raise TypeError("targets must be an integer numpy array of shape (T, B), got "
                        f"{getattr(targets, 'dtype', type(targets).__name__)}")
    ck.check_shape("targets", targets, (T, B), "(T, B)")
    if targets.min() < 0 or targets.max() >= V:
        raise ValueError(f"targets must lie in [0, V) = [0, {V}), got values in "
                         f"[{targets.min()}, {targets.max()}]")
    if mask is None:
        return np.ones((T, B), logits.dtype)
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a numpy array of shape (T, B), got {type(mask).__name__}")
    ck.check_shape("mask", mask, (T, B), "(T, B)")
    mask = mask.astype(logits.dtype)
    if not np.all(np.isfinite(mask)) or mask.min() < 0:
        raise ValueError("mask must hold finite non-negative weights (0/1 or bool)")
    if mask.sum() == 0:
        raise ValueError("mask selects no token: the mean loss over zero tokens is undefined")
    return mask


def softmax_cross_entropy(logits, targets, mask=None):
    """logits (T, B, V), targets int (T, B), mask (T, B) or None -> loss (float), dlogits."""
    mask = check_loss_inputs(logits, targets, mask)
    count = mask.sum()
    shifted = logits - logits.max(axis=2, keepdims=True)                 # (T, B, V)
    e = np.exp(shifted)                                                   # (T, B, V)
    s = e.sum(axis=2, keepdims=True)                                      # (T, B, 1)
    t_idx, b_idx = np.indices(targets.shape)                              # (T, B) each
    logp_target = shifted[t_idx, b_idx, targets] - np.log(s[..., 0])    # (T, B)
    loss = -(logp_target * mask).sum() / count
    dlogits = e / s                                                       # (T, B, V)
    dlogits[t_idx, b_idx, targets] -= 1
    dlogits *= (mask / count)[..., None]
    return float(loss), dlogits
