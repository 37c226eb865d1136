"""The one place that knows numba's options. Kernels import ``njit`` and ``prange`` from here.

- ``cache=True``: compiled kernels are stored next to the package (or in ``NUMBA_CACHE_DIR``);
  ``fastrnn.warmup()`` compiles every signature once.
- ``fastmath`` with only the flags that keep NaN/Inf semantics (no ``nnan``, ``ninf``), so a
  diverging run shows up as NaN instead of being optimised away, and without ``reassoc``, so
  that a kernel computes the same bits whether this process compiled it or loaded it from
  numba's cache. (numba compiles a ``prange`` body as a function of its own, then links a copy
  into the kernel and optimises the kernel again; the compiling process runs the first, every
  later process the cached copy, and LLVM's second pass over the copy may reassociate
  floating-point sums. With ``reassoc`` a training run that compiled the kernels ended at
  round-off from the runs that loaded them (issue 19); without it they are bit-identical,
  and the char model's step time did not change measurably: tests/reliability and README,
  "Reproducible".)
- ``error_model='numpy'``: no zero-division branch on every float division, which would stop
  LLVM from vectorising the gate loops.
- Threading layer ``threadsafe``: TBB (a core dependency on x86-64), else OpenMP; never
  workqueue, which aborts the process when two Python threads call a parallel kernel at once.
  TBB is preferred because the time loops open one parallel region per step, and OpenMP's
  workers spin at each region's barrier: next to another busy process on the same cores a
  2-thread kernel lost far more than its share (LSTM H=256 B=50 forward + backward: 1.4-1.8x
  slower than under TBB; one forward next to a numba test run: 408 ms vs 30 ms alone), while
  on idle cores the two are within a few percent (README, "Threads").
  A venv's ``lib/`` is not on the loader path, so ``_preload_tbb`` loads pip's libtbb by path
  before numba looks for it by name.
- BLAS inside kernels (numba's ``np.dot`` calls scipy's BLAS) runs single-threaded: the kernels
  split work over numba's threads themselves, so exactly one thread pool owns the cores while a
  kernel runs. ``blas_single_threaded()`` enforces that around kernel calls and restores the
  previous setting afterwards.
"""

import contextlib
import ctypes
import functools
import glob
import os
import sys
import threading
import types

import numba
from numba import prange  # noqa: F401  (re-exported for the kernels)


def _preload_tbb():
    """Load the libtbb that ``pip install tbb`` put in ``<prefix>/lib`` (RTLD_GLOBAL), so
    numba's ``CDLL("libtbb.so.12")`` finds it by soname; no-op when it is not installed."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libtbb.so.12")
        return
    except OSError:
        pass
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        for path in sorted(glob.glob(os.path.join(prefix, "lib", "libtbb.so.12*"))):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                return
            except OSError:
                continue


if numba.config.THREADING_LAYER in ("default", "workqueue", "threadsafe"):
    numba.config.THREADING_LAYER = "threadsafe"
    _preload_tbb()

FASTMATH = {"contract", "arcp", "nsz", "afn"}
OPTIONS = dict(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)

DISABLED = bool(int(os.environ.get("NUMBA_DISABLE_JIT", "0") or 0))


def njit(*args, parallel=False, **kwargs):
    """``numba.njit`` with fastrnn's options; ``parallel=True`` for kernels that use prange."""
    opts = dict(OPTIONS, parallel=parallel, **kwargs)
    opts["fastmath"] = set(opts["fastmath"])
    if args and callable(args[0]):
        return numba.njit(**opts)(args[0])
    return numba.njit(*args, **opts)


def parallel_or_serial(serial_when):
    """Decorator: compile ``fn`` twice, with a parallel region (``prange`` over threads) and
    without one, and run the serial copy when ``serial_when(*args)`` is true (one thread: a
    region would only add its launch and the workers' wake-up). The serial copy gets a name of
    its own, so numba's cache keeps the two apart."""
    def wrap(fn):
        serial = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial",
                                    fn.__defaults__, fn.__closure__)
        serial.__qualname__ = fn.__qualname__ + "_serial"
        run_parallel = njit(parallel=True)(fn)
        run_serial = njit(serial)

        @functools.wraps(fn)
        def run(*args):
            return (run_serial if serial_when(*args) else run_parallel)(*args)

        run.parallel, run.serial = run_parallel, run_serial
        return run
    return wrap


def set_num_threads(n):
    """Number of threads the kernels use (1 <= n <= NUMBA_NUM_THREADS, default: all cores)."""
    n = int(n)
    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"n must be between 1 and NUMBA_NUM_THREADS="
                         f"{numba.config.NUMBA_NUM_THREADS}, got {n} (set NUMBA_NUM_THREADS "
                         "before importing fastrnn to allow more)")
    numba.set_num_threads(n)


def get_num_threads():
    return numba.get_num_threads()


# ---------------------------------------------------------------- BLAS used inside kernels

_blas_lock = threading.Lock()
_blas_state = {"controllers": None, "depth": 0, "saved": []}


def _kernel_blas_controllers():
    """threadpoolctl controllers of the BLAS that numba's np.dot calls (scipy's)."""
    from threadpoolctl import ThreadpoolController

    import scipy.linalg  # noqa: F401  (loads scipy's BLAS)

    libs = ThreadpoolController().select(user_api="blas").lib_controllers
    scipy_libs = [c for c in libs if "scipy" in os.path.basename(os.path.dirname(c.filepath))
                  and "numpy" not in c.filepath]
    return scipy_libs or libs


@contextlib.contextmanager
def blas_single_threaded():
    """Run the enclosed kernel calls with scipy's BLAS on one thread (re-entrant)."""
    with _blas_lock:
        st = _blas_state
        if st["controllers"] is None:
            st["controllers"] = _kernel_blas_controllers()
        if st["depth"] == 0:
            st["saved"] = [c.num_threads for c in st["controllers"]]
            for c in st["controllers"]:
                if c.num_threads != 1:
                    c.set_num_threads(1)
        st["depth"] += 1
    try:
        yield
    finally:
        with _blas_lock:
            st["depth"] -= 1
            if st["depth"] == 0:
                for c, n in zip(st["controllers"], st["saved"]):
                    if n != 1:
                        c.set_num_threads(n)
