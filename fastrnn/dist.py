"""Data-parallel training over MPI (mpi4py): the one module of fastrnn that talks to MPI.

``mpiexec -n N fastrnn train ...`` (or ``srun`` under Slurm) starts N processes (ranks) that
each build the same model from the same seed and read the same corpus. The B streams of the
batch are cut into N contiguous slices, rank r holding streams ``lo .. hi`` (``shard``), and one
training step is::

    rank r: forward + backward on its (T, B_r) window    -> mean-loss gradient g_r, loss l_r
            scale by its token share w_r = B_r / B        -> w_r g_r, w_r l_r
    all:    one Allreduce (sum) over one flat buffer      -> g = sum_r w_r g_r, the gradient of
                                                             the mean loss over all B*T tokens
    all:    clip by the global norm of g, optimizer step -> the same update on every rank

so every rank holds the same weights, and the loss curve and weights are those of one process
with B streams (to round-off: the sums are grouped differently). The gradients live in the
buffer (each ``Parameter.grad`` is a view of it), so the backward writes straight into the
message and there is nothing to pack. Dropout masks are drawn for all B streams and sliced
(``nn.Recurrent.dropout_streams``), so they do not depend on the rank count either.

Rank 0 alone writes checkpoints, ``log.jsonl``, ``runs/latest``, the progress bar and
messages; the carried hidden state of all B streams is gathered into its checkpoint, so a run
written by N ranks resumes on M ranks (each takes its slice). The validation loss, the
divergence test (on the reduced loss), the time budget and Ctrl-C / SIGTERM are decided
collectively, so every rank takes the same branch at the same step.

Without a launcher in the environment (``PMI_SIZE``, ``OMPI_COMM_WORLD_SIZE``, ...) or with a
world of one process, mpi4py is not even imported: a single process runs exactly as before.
``FASTRNN_MPI=0`` forces a single process, ``FASTRNN_MPI=1`` forces MPI.

Faults: an exception on one rank prints its message and calls ``MPI_Abort``, which ends every
rank (MPICH's ``mpiexec`` and ``srun`` kill the others); a rank killed by a signal is noticed
by the launcher, which ends the others. A check that every rank makes on the same gathered
values (different config or corpus between ranks, B smaller than the number of ranks) raises
``RanksDisagree`` on every rank, and all ranks exit together with one message from rank 0.
"""

import contextlib
import hashlib
import json
import os
import sys
import time
import traceback

import numpy as np

# Set by every common launcher in each process it starts: MPICH/Intel MPI (hydra) and
# Slurm's pmi2 (PMI_SIZE), Open MPI (OMPI_COMM_WORLD_SIZE), MVAPICH (MV2_COMM_WORLD_SIZE),
# PMIx launchers such as srun --mpi=pmix (PMIX_RANK, no size variable).
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_RANK_VARS = ("PMIX_RANK",)


class RanksDisagree(ValueError):
    """A start-up check failed identically on every rank (all ranks raise it together)."""


def launched_size():
    """The world size a launcher announced in the environment: an int, ``None`` if there is
    a launcher but no size variable (PMIx), 1 when there is no launcher."""
    force = os.environ.get("FASTRNN_MPI", "").strip()
    if force == "0":
        return 1
    for var in _SIZE_VARS:
        if os.environ.get(var, "").strip().isdigit():
            return int(os.environ[var])
    if force == "1" or any(var in os.environ for var in _RANK_VARS):
        return None
    return 1


class World:
    """The processes of a run: ``rank`` of ``size``; ``comm`` is None for a single process,
    where every collective below is the identity and costs nothing."""

    def __init__(self, comm=None):
        self.comm = comm
        self.rank = comm.Get_rank() if comm is not None else 0
        self.size = comm.Get_size() if comm is not None else 1

    def __repr__(self):
        return f"World(rank={self.rank}, size={self.size})"

    @property
    def distributed(self):
        return self.size > 1

    @property
    def is_root(self):
        return self.rank == 0

    # ------------------------------------------------------------ data layout
    def shard(self, n):
        """The contiguous slice ``(lo, hi)`` of ``n`` items (streams) this rank owns: the
        first ``n % size`` ranks hold one more. Raises ``RanksDisagree`` if n < size."""
        if n < self.size:
            raise RanksDisagree(f"batch={n} streams cannot be shared by {self.size} ranks: every "
                                f"rank needs at least one stream; use --batch >= {self.size} or "
                                f"fewer ranks")
        q, r = divmod(n, self.size)
        lo = self.rank * q + min(self.rank, r)
        return lo, lo + q + (1 if self.rank < r else 0)

    # ------------------------------------------------------------ collectives
    def any(self, flag):
        """True on every rank if ``flag`` is true on any rank."""
        if not self.distributed:
            return bool(flag)
        return bool(self.comm.allreduce(bool(flag), op=_mpi().LOR))

    def sum(self, value):
        """The sum of a float over all ranks (the same float on every rank)."""
        if not self.distributed:
            return value
        buf = np.array([value], np.float64)
        self.comm.Allreduce(_mpi().IN_PLACE, buf, op=_mpi().SUM)
        return float(buf[0])

    def bcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        return self.comm.bcast(obj, root=0) if self.distributed else obj

    def allgather_streams(self, a, axis=1):
        """The arrays of all ranks joined along the stream axis, in rank order (so the whole
        batch), on every rank (small: the hidden state; every rank can then restore from the
        same tree, e.g. ``on_nan="rollback"``)."""
        if not self.distributed:
            return a
        return np.concatenate(self.comm.allgather(np.ascontiguousarray(a)), axis=axis)

    def check_same(self, what, values):
        """Raises ``RanksDisagree`` on every rank unless the dict ``values`` (JSON-able) is
        the same on all ranks; the message names the first rank and keys that differ."""
        if not self.distributed:
            return
        blob = json.dumps(values, sort_keys=True, default=str)
        digest = hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()
        digests = self.comm.allgather(digest)
        bad = [r for r, d in enumerate(digests) if d != digests[0]]
        if not bad:
            return
        everyone = self.comm.allgather(values)
        r = bad[0]
        keys = sorted(k for k in set(everyone[0]) | set(everyone[r])
                      if everyone[0].get(k) != everyone[r].get(k))
        detail = ", ".join(f"{k}={everyone[r].get(k)!r} on rank {r} but "
                           f"{everyone[0].get(k)!r} on rank 0" for k in keys)
        raise RanksDisagree(f"the ranks disagree on the {what}: {detail}. Every rank must run "
                            "the same command on the same corpus")

    def check_params(self, params):
        """Raises ``RanksDisagree`` unless the weights are bit-identical on every rank (a
        checksum of their bytes, compared at every checkpoint)."""
        if not self.distributed:
            return
        h = hashlib.blake2b(digest_size=16)
        for p in params:
            h.update(np.ascontiguousarray(p.data).view(np.uint8))
        digests = self.comm.allgather(h.hexdigest())
        if len(set(digests)) > 1:
            ranks = [r for r, d in enumerate(digests) if d != digests[0]]
            raise RanksDisagree(f"the weights on ranks {ranks} differ from rank 0's: the "
                                "gradient reduction was not the same on every rank")

    @contextlib.contextmanager
    def root_first(self):
        """Rank 0 runs the block before the others (e.g. builds a cache the others reuse)."""
        if not self.distributed:
            yield
            return
        if not self.is_root:
            self.comm.Barrier()
        yield
        if self.is_root:
            self.comm.Barrier()

    @contextlib.contextmanager
    def abort_on_error(self, prog):
        """Turns an exception on one rank into the end of every rank: it prints the error
        (with the rank) and calls ``MPI_Abort``, instead of leaving the others waiting forever
        in the next collective. ``RanksDisagree`` (raised on every rank at once) is re-raised
        on rank 0 only; the other ranks exit quietly with status 2."""
        if not self.distributed:
            yield
            return
        try:
            yield
        except RanksDisagree:
            if self.is_root:
                raise
            raise SystemExit(2)
        except BaseException as e:
            if isinstance(e, SystemExit) and not e.code:
                raise
            if isinstance(e, (ValueError, OSError, ImportError, KeyboardInterrupt)):
                msg = f"{type(e).__name__}: {e}" if isinstance(e, KeyboardInterrupt) else e
            else:
                msg = traceback.format_exc()
            sys.stdout.flush()
            print(f"{prog} (rank {self.rank} of {self.size}): error: {msg}\n"
                  f"{prog}: aborting all {self.size} ranks", file=sys.stderr, flush=True)
            time.sleep(0.1)        # let the message reach the launcher before the kill
            self.comm.Abort(2)


class GradReducer:
    """Sums the gradients and the loss of all ranks with one ``Allreduce`` over a single
    flat, preallocated buffer (every gradient, then the loss).

    Rebinds each ``Parameter.grad`` to a view of the buffer (call it before creating the
    optimizer), so the backward accumulates straight into the message. ``share`` is this
    rank's fraction of the batch, B_r / B. ``seconds`` adds up the time spent in Allreduce.
    """

    def __init__(self, world, params, share):
        dtype = params[0].data.dtype
        n = sum(p.data.size for p in params)
        self.world, self.share = world, share
        self.buffer = np.zeros(n + 1, dtype)                          # (P + 1,)
        off = 0
        for p in params:
            p.grad = self.buffer[off:off + p.data.size].reshape(p.data.shape)
            off += p.data.size
        self.nbytes = self.buffer.nbytes
        self.seconds = 0.0

    def allreduce(self, loss):
        """Scales this rank's gradients by its share, sums them (and the loss) over the
        ranks; returns the loss of the whole batch, the same float on every rank."""
        buf = self.buffer
        buf[-1] = loss
        buf *= self.share
        t = time.perf_counter()
        self.world.comm.Allreduce(_mpi().IN_PLACE, buf, op=_mpi().SUM)
        self.seconds += time.perf_counter() - t
        return float(buf[-1])


_WORLD = None


def _mpi():
    from mpi4py import MPI
    return MPI


def world():
    """The ``World`` of this process, created once. Imports and initialises MPI only when a
    launcher started more than one process."""
    global _WORLD
    if _WORLD is None:
        size = launched_size()
        if size == 1:
            _WORLD = World()
        else:
            try:
                import mpi4py
            except ImportError as e:
                raise ImportError(
                    f"this process was started by an MPI launcher (world of {size or 'several'}"
                    " processes) but mpi4py is not installed: pip install -e '.[dist]' (or "
                    "run without mpiexec/srun, or set FASTRNN_MPI=0)") from e
            mpi4py.rc.thread_level = "funneled"     # only the main thread calls MPI
            comm = _mpi().COMM_WORLD
            _WORLD = World(comm if comm.Get_size() > 1 else None)
            if _WORLD.distributed:
                _install_excepthook(_WORLD)
    return _WORLD


def _install_excepthook(w):
    """An uncaught exception on one rank (Python API users) aborts every rank."""
    previous = sys.excepthook

    def hook(*exc_info):
        previous(*exc_info)
        sys.stderr.flush()
        w.comm.Abort(1)

    sys.excepthook = hook
