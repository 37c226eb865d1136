"""One step of a whole stack of layers plus the decoder (sampling), in plain NumPy.

    stack_step(tokens, cell, table, w_ih, w_hh, b_ih, b_hh, dec_w, dec_b, h, c) -> logits

``tokens`` (B,) ids; layer 0 reads the (V, G*H) token table ``W_ih0^T + b_ih0``; layers l >= 1
use ``w_ih[l]`` (G*H, H) and ``b_ih[l]``; every layer ``w_hh[l]`` (G*H, H), ``b_hh[l]``;
``h``, ``c`` (L, B, H) are updated in place (``c`` is ignored unless the cell has a second
state); the return value is the decoder's logits (B, V). ``cell`` is one of CELL_CODES: the
variant ``fastrnn.cells.variants()[cell]``, whose reference ``forward_proj`` runs each layer's
step. The compiled twin (``fastrnn.kernels.stack``) does the same in one call with no
allocation.
"""

import numpy as np

from .._checks import check_stack_step
from ..cells import SAMPLER_CODES as CELL_CODES  # noqa: F401  (variants() in order)
from ..cells import variants


def stack_step(tokens, cell, table, w_ih, w_hh, b_ih, b_hh, dec_w, dec_b, h, c):
    tokens = check_stack_step(tokens, cell, table, w_ih, w_hh, b_ih, b_hh, dec_w, dec_b, h, c)
    _, spec, options = variants()[cell]
    forward_proj = spec.functions("reference").forward_proj
    states = (h, c)[:spec.n_states]                                                # (L, B, H)
    x = None
    for layer in range(h.shape[0]):
        xw = table[tokens] if layer == 0 else x @ w_ih[layer].T + b_ih[layer]    # (B, G*H)
        hs, *finals, _ = forward_proj(xw[None], *(s[layer] for s in states), w_hh[layer],
                                      b_hh[layer], **options)                      # one step
        for s, new in zip(states, (hs[0], *finals)):
            s[layer] = new
        x = h[layer]
    return x @ dec_w.T + dec_b                                                     # (B, V)


def pick(logits, temperature, top_k, argmax, u):
    """Next token from logits (V,): the argmax, or the token whose cumulative probability
    first exceeds ``u`` in [0, 1) under softmax(logits / temperature), restricted to the
    ``top_k`` largest logits when top_k > 0."""
    if argmax:
        return int(np.argmax(logits))
    z = logits.astype(np.float64)
    if 0 < top_k < z.size:
        z = np.where(z >= np.sort(z)[-top_k], z, -np.inf)
    p = np.exp((z - z.max()) / temperature)
    cdf = np.cumsum(p)
    return int(np.searchsorted(cdf, u * cdf[-1], side="right"))
