"""The layers around the recurrent stack: ``Embedding``, ``Linear`` and the ``CrossEntropy``
loss."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from numpy.typing import DTypeLike

from .. import _checks as ck
from .._checks import check_ids
from .module import LINALG, Module, Parameter, _backend, init_uniform


class Embedding(Module):
    """Token ids (T, B) -> vectors (T, B, D): rows of ``weight`` (num_embeddings, D), drawn
    from N(0, 1) with ``seed``; ``dtype`` float32 or float64; ``backend`` ``"kernels"`` or
    ``"reference"`` for the backward's scatter-add."""

    def __init__(self, num_embeddings: int, embedding_dim: int,
                 dtype: DTypeLike = np.float32, seed: int = 0, backend: str = "kernels"
                 ) -> None:
        _backend(backend)
        self.linalg = LINALG[backend]
        rng = np.random.default_rng(seed)
        self.weight = Parameter(rng.standard_normal((num_embeddings, embedding_dim))
                                .astype(ck.check_float_dtype(dtype)))

    def forward(self, ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        ids = check_ids(ids, self.weight.data.shape[0])
        return self.weight.data[ids], ids                       # (T, B, D), cache

    def backward(self, dout: np.ndarray, ids: np.ndarray) -> None:
        D = self.weight.data.shape[1]
        ck.check_grad("dout", dout, ids.shape + (D,), self.weight.data.dtype)
        self.linalg.scatter_add(ids, dout, self.weight.grad)  # rows checked: no stray index
        return None


class Linear(Module):
    """y = x @ weight.T + bias over all leading dimensions: ONE product for all (T*B) rows.

    ``init``: ``"pytorch"`` draws weight and bias from U(-1/sqrt(in_features), +...), any
    other value (``"uniform"``, char-rnn's) from U(-0.08, 0.08); ``seed`` seeds the draw;
    ``backend``: ``"kernels"`` or ``"reference"`` (NumPy) for the products.
    ``forward(x)`` returns ``y, cache``; ``backward(dy, cache)`` returns ``dx`` and accumulates
    the gradients of weight and bias."""

    def __init__(self, in_features: int, out_features: int, dtype: DTypeLike = np.float32,
                 seed: int = 0, init: str = "pytorch", backend: str = "kernels") -> None:
        _backend(backend)
        self.linalg = LINALG[backend]
        rng = np.random.default_rng(seed)
        dt = ck.check_float_dtype(dtype)
        bound = 1 / np.sqrt(in_features) if init == "pytorch" else 0.08
        self.weight = Parameter(init_uniform(rng, (out_features, in_features), bound, dt))
        self.bias = Parameter(init_uniform(rng, (out_features,), bound, dt))

    def forward(self, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        n_out, n_in = self.weight.data.shape
        if not isinstance(x, np.ndarray):
            raise TypeError(f"Linear expects a numpy array, got {type(x).__name__}")
        if x.ndim < 1 or x.shape[-1] != n_in or x.dtype != self.weight.data.dtype:
            raise ValueError(f"Linear expects input (..., {n_in}) of dtype "
                             f"{self.weight.data.dtype}, got {x.shape} {x.dtype}")
        x2 = np.ascontiguousarray(x).reshape(-1, n_in)
        out = self.linalg.linear_forward(x2, self.weight.data, self.bias.data)
        return out.reshape(x.shape[:-1] + (n_out,)), x2

    def backward(self, dout: np.ndarray, x2: np.ndarray) -> np.ndarray:
        n_out, n_in = self.weight.data.shape
        if not isinstance(dout, np.ndarray) or dout.size != x2.shape[0] * n_out:
            raise ValueError(f"dout must have shape (..., {n_out}) with the forward input's "
                             f"{x2.shape[0]} rows, got {getattr(dout, 'shape', dout)!r}")
        ck.check_grad("dout", dout, dout.shape[:-1] + (n_out,), self.weight.data.dtype)
        d2 = np.ascontiguousarray(dout).reshape(-1, n_out)
        dx, dW, db = self.linalg.linear_backward(d2, x2, self.weight.data)
        self.weight.grad += dW
        self.bias.grad += db
        return dx.reshape(dout.shape[:-1] + (n_in,))


class CrossEntropy:
    """Fused softmax cross-entropy over (T, B, V) logits: ``loss, dlogits = ce(logits, y)``."""

    def __init__(self, backend: str = "kernels") -> None:
        self.ops = _backend(backend)

    def __call__(self, logits: np.ndarray, targets: np.ndarray,
                 mask: Optional[np.ndarray] = None) -> Tuple[float, np.ndarray]:
        return self.ops.softmax_cross_entropy(logits, targets, mask)
