"""fastrnn: recurrent networks (RNN, LSTM, GRU) trained on the CPU with Numba kernels.

- ``fastrnn.reference``: pure-NumPy reference implementations (readable, the oracle);
- ``fastrnn.kernels``: their compiled twins (same names, signatures and results);
- ``set_num_threads(n)`` / ``get_num_threads()``: threads used by the kernels;
- ``warmup()``: compile (or load from the on-disk cache) every kernel signature.
"""

__version__ = "0.1.0"

# numba is imported on first use, not here: ``fastrnn`` starts in milliseconds, so the CLI is
# inside ``main`` (which turns Ctrl-C into one line and exit 130) almost at once.


def get_num_threads():
    """Threads the kernels use (numba's)."""
    from ._jit import get_num_threads as _get

    return _get()


def set_num_threads(n):
    """Threads the kernels use, at most ``NUMBA_NUM_THREADS``."""
    from ._jit import set_num_threads as _set

    return _set(n)


def warmup(dtypes=("float32", "float64")):
    """Compile every kernel for the given dtypes (loaded from numba's cache after the first
    time, in any process). Returns the number of kernel calls made."""
    from .compat import warmup as _compat_warmup
    from .kernels import warmup as _warmup

    return _warmup(dtypes) + _compat_warmup(dtypes)


__all__ = ["get_num_threads", "set_num_threads", "warmup", "__version__"]
