"""What every module shares: ``Parameter``, ``Module`` (parameter bookkeeping, state dicts),
the initialisers, the two backends (``fastrnn.kernels`` and ``fastrnn.reference``) and the
conversion of any module to and from PyTorch (``fastrnn.torch_interop``)."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .. import kernels as _kernels
from .. import reference as _reference
from ..kernels import linalg as _kernels_linalg
from ..reference import linalg as _reference_linalg

# A recurrent state: h (num_layers, B, H), or (h, c) for the LSTM.
State = Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]
BACKENDS = {"kernels": _kernels, "reference": _reference}
LINALG = {"kernels": _kernels_linalg, "reference": _reference_linalg}


def _backend(name):
    if name not in BACKENDS:
        raise ValueError(f"backend must be 'kernels' or 'reference', got {name!r}")
    return BACKENDS[name]


class Parameter:
    """A parameter array ``data`` and its gradient ``grad`` (same shape and dtype)."""

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.grad = np.zeros_like(data)

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Parameter bookkeeping shared by every module."""

    def named_parameters(self, prefix: str = "") -> Iterator[Tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value.named_parameters(prefix + name + ".")

    def parameters(self) -> List[Parameter]:
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad[...] = 0

    def state_dict(self) -> Dict[str, np.ndarray]:
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: Dict[str, ArrayLike]) -> None:
        own = dict(self.named_parameters())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f"state dict does not match the model: missing {missing}, "
                             f"unexpected {unexpected}")
        for name, p in own.items():
            value = np.asarray(state[name])
            if value.shape != p.data.shape:
                raise ValueError(f"{name}: expected shape {p.data.shape}, got {value.shape}")
            if not np.issubdtype(value.dtype, np.floating):
                raise TypeError(f"{name}: expected a float array, got {value.dtype}")
            p.data[...] = value


# ---------------------------------------------------------------- initialisation

def init_uniform(rng, shape, bound, dtype):
    return rng.uniform(-bound, bound, shape).astype(dtype)


def init_orthogonal(rng, rows, cols, dtype):
    """A (rows, cols) matrix with orthonormal rows or columns (QR of a Gaussian)."""
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    return (q if rows >= cols else q.T).astype(dtype)


INITS = ("pytorch", "uniform", "xavier", "orthogonal")


# ---------------------------------------------------------------- PyTorch interchange

def from_torch(module: Any, dtype: DTypeLike = None, backend: str = "kernels") -> Module:
    """A fastrnn module with the exact weights of a torch module (see
    ``fastrnn.torch_interop.from_torch``: nn.RNN/LSTM/GRU/Linear/Embedding, TorchCharRNN)."""
    from .. import torch_interop
    return torch_interop.from_torch(module, dtype=dtype, backend=backend)


def to_torch(module: Module) -> Any:
    """The equivalent torch module with the same weights (see
    ``fastrnn.torch_interop.to_torch``: Recurrent, Linear, Embedding, CharRNN)."""
    from .. import torch_interop
    return torch_interop.to_torch(module)
