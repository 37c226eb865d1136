"""The one place that knows numba's options. Kernels import ``njit`` and ``prange`` from here.

- ``cache=True``: compiled kernels are stored next to the package (or in ``NUMBA_CACHE_DIR``);
  ``fastrnn.warmup()`` compiles every signature once. numba keeps a cached kernel while the
  file that defines it is unchanged, even when a function or constant it uses from another
  module changed (numba/numba#1833, #9483; its docs: "Cache invalidation fails to recognize
  changes in functions defined in a different file"), and the kernels use ``_math``, ``_gemm``,
  ``_bptt``'s factories and ``fastrnn.kernels`` across files: after an edit or a ``git pull``
  of such a module an editable install would run the old code. So every kernel's cache index
  also records ``sources_stamp()``, a hash of the sources compiled code can reach
  (``COMPILED_SOURCES``), and an index written under another stamp counts as stale: numba
  compiles again and overwrites it, with its own atomic writes, in whichever cache directory
  it picked (nothing is deleted, a read-only install works as before, and a process still
  running the old sources at worst makes the next one compile again). numba offers no option
  for this (its dependency tracking, numba/numba#8396 and #9563, is unmerged;
  ``NUMBA_CACHE_LOCATOR_CLASSES`` would change every package's caching), so ``_StampedCache``
  sets two private attributes, ``Dispatcher._cache`` and the index's ``_source_stamp``, and
  warns if a numba version lacks the latter (tests/kernels/test_cache.py fails then too).
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
- glibc's malloc is told to keep freed memory for reuse when this module loads, i.e. when
  fastrnn first loads its kernels (``MALLOC_TUNED``; Linux with glibc only): blocks up to
  ``MMAP_THRESHOLD`` (32 MB) come from the heap, and freed memory is given back to the system
  only when ``TRIM_THRESHOLD`` (256 MB) of it is free at the heap's top.
  A training step allocates tens of MB of arrays (time-major projections, states, gate caches,
  their gradients) and frees them before the next one; under glibc's default (blocks of a few
  MB mmap-ed, or trimmed when freed) every step got them as new pages, each 4 kB page a page
  fault on first touch: 1,700-3,000 faults per step of the 2x128 LSTM char model (B=T=50),
  6,000-8,300 for the 2x256; without them the step takes 0.81x the time (median of six
  interleaved rounds, README "Performance"). PyTorch's allocator caches its blocks the same
  way. ``FASTRNN_MALLOC=system`` (read at import) keeps
  glibc's defaults, as do ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` or malloc
  tunables set by the user.
- BLAS inside kernels (numba's ``np.dot`` calls scipy's BLAS) runs single-threaded: the kernels
  split work over numba's threads themselves, so exactly one thread pool owns the cores while a
  kernel runs. ``blas_single_threaded()`` enforces that around kernel calls and restores the
  previous setting afterwards.
"""

import contextlib
import ctypes
import functools
import glob
import hashlib
import os
import sys
import threading
import types
import warnings

import numba
from numba import prange  # noqa: F401  (re-exported for the kernels)
from numba.core.caching import FunctionCache


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

MMAP_THRESHOLD = 32 << 20         # glibc's own ceiling for its adaptive threshold
TRIM_THRESHOLD = 256 << 20


def _keep_freed_memory():
    """-> True when glibc's ``mallopt`` took MMAP_THRESHOLD and TRIM_THRESHOLD (see above)."""
    env = os.environ
    if (env.get("FASTRNN_MALLOC") == "system" or not sys.platform.startswith("linux")
            or "MALLOC_MMAP_THRESHOLD_" in env or "MALLOC_TRIM_THRESHOLD_" in env
            or "glibc.malloc" in env.get("GLIBC_TUNABLES", "")):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):             # not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


MALLOC_TUNED = _keep_freed_memory()

FASTMATH = {"contract", "arcp", "nsz", "afn"}
OPTIONS = dict(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)

DISABLED = bool(int(os.environ.get("NUMBA_DISABLE_JIT", "0") or 0))


# The sources whose code or constants compiled code can reach (relative to the package): the
# modules that define compiled functions and every fastrnn module they import (a test checks
# this against the imports). Editing another module (train.py, cli.py, nn/ ...) keeps the cache.
COMPILED_SOURCES = ("__init__.py", "_jit.py", "_checks.py", "cells.py",
                    "kernels/", "compat/", "reference/")


@functools.cache
def sources_stamp():
    """sha256 of the paths and contents of ``COMPILED_SOURCES``' .py files, computed once per
    process (~1.5 ms): the stamp a kernel's cache index must carry to be loaded. A file or
    folder that cannot be read counts as absent (no error: at worst a needless compile)."""
    root = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for name in COMPILED_SOURCES:
        try:
            files = (sorted(name + f for f in os.listdir(os.path.join(root, name))
                            if f.endswith(".py")) if name.endswith("/") else [name])
        except OSError:
            files = []
        for file in files:
            try:
                with open(os.path.join(root, file), "rb") as f:
                    data = f.read()
            except OSError:
                data = None
            size = "-" if data is None else len(data)
            digest.update(f"{file}\0{size}\0".encode())
            digest.update(data or b"")
    return digest.hexdigest()


class _StampedCache(FunctionCache):
    """numba's on-disk cache of one kernel, valid only for the sources it was compiled from:
    the index's source stamp (numba's hash of the defining file) becomes (that hash,
    ``sources_stamp()``), so an index written by other sources is stale to numba."""

    def __init__(self, py_func):
        super().__init__(py_func)
        index = getattr(self, "_cache_file", None)
        if not hasattr(index, "_source_stamp"):
            _warn_unstamped()
            return
        index._source_stamp = (index._source_stamp, sources_stamp())


@functools.cache
def _warn_unstamped():
    warnings.warn(f"numba {numba.__version__} stores its cache differently: fastrnn cannot tie "
                  "its kernels' cache to all their sources; after editing fastrnn's modules, "
                  "delete the *.nbi and *.nbc files in its __pycache__ folders",
                  RuntimeWarning, stacklevel=4)


def njit(fn=None, *, parallel=False, **kwargs):
    """``numba.njit`` with fastrnn's options (lazy compilation: no signatures); ``parallel=True``
    for kernels that use prange. With ``cache=True`` (the default) the on-disk cache is the
    stamped one (``_StampedCache``)."""
    opts = dict(OPTIONS, parallel=parallel, **kwargs)
    opts["fastmath"] = set(opts["fastmath"])
    cache = opts.pop("cache")

    def wrap(fn):
        dispatcher = numba.njit(**opts)(fn)
        if cache and hasattr(dispatcher, "py_func"):    # (NUMBA_DISABLE_JIT=1 returns fn)
            dispatcher._cache = _StampedCache(dispatcher.py_func)
        return dispatcher

    return wrap if fn is None else wrap(fn)


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
