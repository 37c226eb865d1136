"""Softmax cross-entropy over a sequence of logits, in plain NumPy.

    p = softmax(logits[t, b])                  (V,)
    loss = mean over counted (t, b) of -log p[targets[t, b]]
    dlogits[t, b] = (p - onehot(targets[t, b])) * mask[t, b] / count

Stable for any finite logits (the row maximum is subtracted before ``exp``, so logits of 1e4
neither overflow nor lose the answer). The kernel twin is ``fastrnn.kernels.loss``.
"""

import numpy as np

from .._checks import check_loss_inputs


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
