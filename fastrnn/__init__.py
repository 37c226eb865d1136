"""fastrnn: recurrent networks (RNN, LSTM, GRU) trained on the CPU with Numba kernels.

- ``fastrnn.reference``: pure-NumPy reference implementations (readable, the oracle);
- ``fastrnn.kernels``: their compiled twins (same names, signatures and results);
- ``set_num_threads(n)`` / ``get_num_threads()``: threads used by the kernels;
- ``warmup()``: compile (or load from the on-disk cache) every kernel signature.
"""

__version__ = "0.1.0"

from ._jit import get_num_threads, set_num_threads  # noqa: E402


def warmup(dtypes=("float32", "float64")):
    """Compile every kernel for the given dtypes (loaded from numba's cache after the first
    time, in any process). Returns the number of kernel calls made."""
    from ._warmup import warmup as _warmup

    return _warmup(dtypes)


__all__ = ["get_num_threads", "set_num_threads", "warmup", "__version__"]
