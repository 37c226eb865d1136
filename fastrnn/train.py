"""Training a character-level language model: the loop behind ``fastrnn train``.

- Data: ``fastrnn.data`` encodes the corpus once (memmap, cached) and cuts it char-rnn style
  into B contiguous streams read in windows of T tokens.
- Stateful, chunked truncated BPTT: the hidden state is carried from one window to the next of
  the same stream (reset at each epoch), full BPTT inside each window; ``truncate=k``
  additionally applies windowed truncation inside the window.
- Gradient clipping by global norm, Adam or RMSprop, optional learning-rate schedule.
- Every ``eval_every`` steps: validation loss (nats/char) and bits/char over the validation
  part of every stream; every ``checkpoint_every`` steps and at the end: an atomic checkpoint
  holding weights, optimizer and schedule state, RNG state, data position, carried state,
  vocabulary and config, so ``resume`` continues bit-identically. Ctrl-C / SIGTERM save one.
- A non-finite loss (or gradient) stops training with a message naming the step and the last
  good checkpoint (which is kept); ``on_nan="skip"`` drops that update instead, and
  ``"rollback"`` restores the last good state (kept in memory) and halves the learning rate,
  at most ``nan_retries`` times in a row. Weights that are not finite are never checkpointed.
- Reliability: a lock file (``flock``) in the run directory keeps a second trainer out; a
  checkpoint that cannot be written (disk full, permission denied) is reported, the previous
  one stays intact and training goes on, retrying at the next checkpoint; the first Ctrl-C or
  SIGTERM finishes the current step, saves and stops (a second Ctrl-C aborts at once).
- Under ``mpiexec -n N`` (or ``srun``) the N processes share the B streams and sum their
  gradients (data parallelism, ``fastrnn.dist``): the same results as one process.
"""

import copy
import dataclasses
import glob
import json
import math
import os
import signal
import time

import numpy as np

from . import checkpoint as ckpt
from . import data as data_mod
from . import cells, dist, nn, optim

CHECKPOINT = "checkpoint.npz"


@dataclasses.dataclass
class TrainConfig:
    corpus: str = None              # None: the embedded default corpus
    mode: str = "char"              # "char" (UTF-8 characters) or "byte"
    cell: str = "lstm"
    hidden: int = 128
    layers: int = 2
    seq: int = 50
    batch: int = 50
    dropout: float = 0.0
    truncate: int = None
    optimizer: str = "rmsprop"      # char-rnn's RMSprop (alpha 0.95); measured better than Adam
    lr: float = 2e-3
    clip: float = 5.0
    schedule: str = "none"          # "none", "cosine" (over the step budget), "step"
    lr_decay: float = 0.97          # "step": multiply by this every decay_every epochs
    decay_every: int = 10
    steps: int = None               # stop after this many steps (any of the three budgets)
    epochs: float = None
    time: float = None              # seconds
    val_fraction: float = 0.05
    eval_every: int = 200
    eval_batches: int = 100         # validation windows per evaluation (None: all of them)
    checkpoint_every: int = 500
    init: str = "pytorch"
    dtype: str = "float32"
    seed: int = 0
    out: str = None
    on_nan: str = "stop"            # non-finite loss: "stop", "skip" the update, "rollback"
    nan_retries: int = 3            # skips in a row / rollbacks to one good state, at most
    log_every: int = 10             # a log.jsonl record (smoothed train loss) every N steps

    def validate(self):
        pos = ("hidden", "layers", "seq", "batch", "eval_every", "checkpoint_every", "log_every")
        if self.eval_batches is not None and (not isinstance(self.eval_batches, int)
                                              or self.eval_batches < 1):
            raise ValueError(f"eval_batches must be None or an int >= 1, got "
                             f"{self.eval_batches!r}")
        for name in pos:
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        cells.get(self.cell)                    # a ValueError names the known cells
        if self.mode not in ("char", "byte"):
            raise ValueError(f"mode must be 'char' or 'byte', got {self.mode!r}")
        if self.optimizer not in ("adam", "rmsprop"):
            raise ValueError(f"optimizer must be adam or rmsprop, got {self.optimizer!r}")
        if self.schedule not in ("none", "cosine", "step"):
            raise ValueError(f"schedule must be none, cosine or step, got {self.schedule!r}")
        if not self.lr > 0 or not self.clip > 0:
            raise ValueError("lr and clip must be > 0")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("steps", "epochs", "time"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be > 0, got {v}")
        if self.steps is None and self.epochs is None and self.time is None:
            raise ValueError("give a budget: steps, epochs or time")
        if self.schedule == "cosine" and self.steps is None:
            raise ValueError("schedule 'cosine' needs a step budget (steps)")
        if self.truncate is not None and self.truncate < 0:
            raise ValueError(f"truncate must be >= 0, got {self.truncate}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.on_nan not in ("stop", "skip", "rollback"):
            raise ValueError(f"on_nan must be stop, skip or rollback, got {self.on_nan!r}")
        if not isinstance(self.nan_retries, int) or self.nan_retries < 1:
            raise ValueError(f"nan_retries must be an integer >= 1, got {self.nan_retries!r}")


# The parts of the config that fix the model; a resumed run must agree on these.
MODEL_KEYS = ("mode", "cell", "hidden", "layers", "dtype")


LOCK = ".lock"


class RunLockedError(OSError):
    """The run directory is in use by another trainer (its lock file is held)."""


def lock_run_dir(out):
    """Takes the exclusive lock of run directory ``out`` (``flock`` on ``out/.lock``, released
    by the OS when the process ends, so a crashed run never leaves a stale lock) and returns
    the open lock file; close it to release. Raises ``RunLockedError`` if another process
    holds it, ``OSError`` naming the directory if it cannot be written."""
    try:
        import fcntl
    except ImportError:                        # not POSIX: no lock
        return None
    path = os.path.join(out, LOCK)
    try:
        f = open(path, "a+")
    except OSError as e:
        raise type(e)(e.errno, f"cannot write to the run directory {out} ({e.strerror}); "
                      "choose another --out or fix its permissions") from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise RunLockedError(f"the run directory {out} is in use by another fastrnn train "
                             f"(pid {holder}); wait for it to finish or choose another --out")
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def build_model(cfg, vocab_size):
    return nn.CharRNN(vocab_size, cfg.hidden, cfg.layers, cfg.cell, dropout=cfg.dropout,
                      truncate=cfg.truncate, init=cfg.init, dtype=np.dtype(cfg.dtype),
                      seed=cfg.seed)


def build_optimizer(cfg, params):
    if cfg.optimizer == "adam":
        return optim.Adam(params, lr=cfg.lr)
    return optim.RMSprop(params, lr=cfg.lr, alpha=0.95, eps=1e-8)


def _state_list(state):
    return list(state) if isinstance(state, tuple) else [state]


def _state_from_list(cell, arrays):
    return tuple(arrays) if cells.get(cell).n_states == 2 else arrays[0]


def evaluate(model, batcher, max_batches=None):
    """Mean loss (nats/token) over the first ``max_batches`` windows (default: all) of one
    pass of ``batcher``, state carried across windows."""
    batcher.reset()
    state, total, n = None, 0.0, 0
    for i, (x, y) in enumerate(batcher):
        if max_batches is not None and i >= max_batches:
            break
        loss, state = model.loss(x, y, state)
        total += loss * x.size
        n += x.size
    return total / max(n, 1)


class Trainer:
    """Holds everything a training run consists of; ``run()`` trains within the budget."""

    def __init__(self, cfg, resume=None, progress=True, log=print):
        cfg.validate()
        # MPI data parallelism: this rank owns streams lo..hi of the batch (all of them alone)
        self.world = dist.world()
        self.streams = self.world.shard(cfg.batch)
        self.share = (self.streams[1] - self.streams[0]) / cfg.batch     # its token share
        if not self.world.is_root:                 # rank 0 alone reports
            progress, log = False, (lambda *args, **kw: None)
        self.cfg, self.progress, self.log = cfg, progress, log
        resumed = ckpt.load_run(resume) if resume else None
        if resumed is not None:
            old = resumed["config"]
            diff = {k: (old[k], getattr(cfg, k)) for k in MODEL_KEYS if old[k] != getattr(cfg, k)}
            if diff:
                raise ckpt.CheckpointError(
                    f"{resume} holds a different model: " + ", ".join(
                        f"{k}={a!r} in the checkpoint vs {b!r} now" for k, (a, b) in diff.items())
                    + "; pass the same settings or start a new run")
        corpus_path = cfg.corpus or data_mod.default_corpus_path()
        with self.world.root_first():              # rank 0 builds the cache, the others reuse it
            self.corpus = data_mod.load_corpus(corpus_path, mode=cfg.mode, progress=progress)
        self.vocab = self.corpus.vocab
        self.world.check_same("config and corpus", {
            **{k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("corpus", "out")},
            "corpus_tokens": len(self.corpus.ids), "corpus_hash": self.corpus.meta.get("blake2b"),
            "vocab": self.vocab.to_json(), "resume_step": resumed and resumed["step"]})
        if resumed is not None and resumed["vocab"] != self.vocab.to_json():
            raise ckpt.CheckpointError(f"{resume} was trained on a different vocabulary than "
                                       f"{corpus_path}; resume on the same corpus")
        self.train_data = data_mod.StreamBatcher(self.corpus.ids, cfg.batch, cfg.seq, "train",
                                                 cfg.val_fraction, streams=self.streams)
        self.val_data = data_mod.StreamBatcher(self.corpus.ids, cfg.batch, cfg.seq, "val",
                                               cfg.val_fraction, streams=self.streams) \
            if cfg.val_fraction > 0 else None
        self.model = build_model(cfg, self.vocab.size)
        self.params = self.model.parameters()
        self.reducer = None
        if self.world.distributed:                 # before the optimizer: grads become views
            self.model.rnn.dropout_streams = (cfg.batch, self.streams[0])
            self.reducer = dist.GradReducer(self.world, self.params, self.share)
        self.opt = build_optimizer(cfg, self.params)
        self.sched = None
        if cfg.schedule == "cosine":
            self.sched = optim.CosineLR(self.opt, total_steps=cfg.steps)
        elif cfg.schedule == "step":
            self.sched = optim.StepLR(self.opt, step_size=cfg.decay_every
                                      * self.train_data.batches_per_epoch, gamma=cfg.lr_decay)
        self.step = 0
        self.tokens = 0
        self.elapsed = 0.0
        self.best_val = None
        self.state = None
        if resumed is not None:                    # before anything is written
            try:
                self._restore(resumed)
            except (KeyError, TypeError, ValueError) as e:
                raise ckpt.CheckpointError(f"{resume} is corrupt or not a fastrnn checkpoint: "
                                           f"its state does not fit this run ({e})") from None
        self.out = self.world.bcast(cfg.out or os.path.join(
            "runs", time.strftime("%Y%m%d-%H%M%S") + f"-{cfg.cell}{cfg.hidden}x{cfg.layers}"))
        if self.world.is_root:
            os.makedirs(self.out, exist_ok=True)
            lock = lock_run_dir(self.out)          # fail early if the run is busy (run() locks)
            if lock is not None:
                lock.close()
        self.checkpoint_path = os.path.join(self.out, CHECKPOINT)
        self.saved_step = None                     # step of the last checkpoint written
        if resumed is not None:
            if os.path.abspath(resume) == os.path.abspath(self.checkpoint_path):
                self.saved_step = self.step

    # -------------------------------------------------------------- checkpoints
    def state_tree(self):
        return {
            "config": dataclasses.asdict(self.cfg),
            "vocab": self.vocab.to_json(),
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict() if self.sched else None,
            "data": self.train_data.state_dict(),
            "dropout_rng": self.model.rnn.rng.bit_generator.state,
            "hidden": None if self.state is None else   # all B streams (a collective)
            [self.world.allgather_streams(a) for a in _state_list(self.state)],
            "step": self.step, "tokens": self.tokens, "elapsed": self._elapsed_now(),
            "best_val": self.best_val,
        }

    def _elapsed_now(self):
        """Training time of the run so far, this invocation's running time included."""
        if getattr(self, "_clock", None) is None:
            return self.elapsed
        before, t_start = self._clock
        return before + time.perf_counter() - t_start

    def _restore(self, tree):
        self.model.load_state_dict(tree["model"])
        self.opt.load_state_dict(tree["optimizer"])
        if self.sched is not None and tree["scheduler"] is not None:
            self.sched.load_state_dict(tree["scheduler"])
        self.train_data.load_state_dict(tree["data"])
        self.model.rnn.rng.bit_generator.state = tree["dropout_rng"]
        if tree["hidden"] is not None:             # this rank's streams of the saved batch
            lo, hi = self.streams
            self.state = _state_from_list(self.cfg.cell, [np.ascontiguousarray(a[:, lo:hi])
                                                          for a in tree["hidden"]])
        self.step, self.tokens = tree["step"], tree["tokens"]
        self.elapsed, self.best_val = tree["elapsed"], tree["best_val"]

    def save(self):
        tree = self.state_tree()                   # every rank takes part (hidden is gathered)
        self.world.check_params(self.params)       # and holds the same weights
        if not self.world.is_root:
            return
        ckpt.save(self.checkpoint_path, tree)
        latest = os.path.join(os.path.dirname(os.path.abspath(self.out)), "latest")
        try:                                  # runs/latest -> this run (best effort)
            tmp = latest + ".tmp"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(os.path.abspath(self.out), tmp)
            os.replace(tmp, latest)
        except OSError:
            pass

    # -------------------------------------------------------------- the loop
    def _done(self, t_start):
        cfg = self.cfg
        if cfg.steps is not None and self.step >= cfg.steps:
            return True
        if cfg.epochs is not None and self.step >= cfg.epochs * self.train_data.batches_per_epoch:
            return True
        return cfg.time is not None and self.world.any(time.perf_counter() - t_start >= cfg.time)

    def _total(self):
        cfg = self.cfg
        totals = [cfg.steps] if cfg.steps is not None else []
        if cfg.epochs is not None:
            totals.append(math.ceil(cfg.epochs * self.train_data.batches_per_epoch))
        return min(totals) if totals else None

    def _step(self, x, y):
        """Forward and backward over one window; returns the mean loss (gradients in .grad)."""
        self.model.zero_grad()
        loss, self.state = self.model.loss_and_grad(x, y, self.state)
        if self.reducer is not None:               # the whole batch's loss and gradient
            loss = self.reducer.allreduce(loss)
        return loss

    def _update(self):
        """Clip the gradients by global norm and apply one optimizer (and schedule) step;
        returns the gradient norm. A non-finite norm applies nothing (see ``run``)."""
        norm = optim.clip_grad_norm_(self.params, self.cfg.clip)
        if not math.isfinite(norm):
            return norm
        self.opt.step()
        if self.sched is not None:
            self.sched.step()
        return norm

    def _last_good(self):
        if self.saved_step is not None or os.path.exists(self.checkpoint_path):
            at = f" (step {self.saved_step})" if self.saved_step is not None else ""
            return f"The last good checkpoint is {self.checkpoint_path}{at}"
        return "No checkpoint has been written yet"

    def _report_divergence(self, loss, what="loss"):
        self.log(f"\n{what} became {loss} at step {self.step + 1}: training stopped. "
                 + self._last_good() + "; lower --lr or --clip, or try --on-nan rollback")

    def _on_nan(self, value, what, state_before):
        """A non-finite loss or gradient at step ``self.step + 1`` (nothing applied yet):
        returns True to go on (``on_nan`` skip/rollback within ``nan_retries``), False to stop
        (after reporting it)."""
        cfg, step = self.cfg, self.step + 1
        self._nan_events += 1
        if what == "weights" and cfg.on_nan == "skip":      # an applied update: no undoing it
            self.log(f"\nthe update of step {self.step} made the weights overflow, which "
                     "--on-nan skip cannot undo (--on-nan rollback can)")
            self._report_divergence(value, what)
            return False
        if cfg.on_nan == "stop" or self._nan_events > cfg.nan_retries:
            if cfg.on_nan != "stop":
                self.log(f"\n{what} became {value} at step {step} again: --on-nan "
                         f"{cfg.on_nan} gave up after {cfg.nan_retries} tries")
            self._report_divergence(value, what)
            return False
        what = f"{what} became {value}"
        if cfg.on_nan == "skip":
            self.state = state_before
            self.log(f"\n{what} at step {step}: update skipped ({self._nan_events} of at most "
                     f"{cfg.nan_retries} in a row)")
            return True
        lr = self.opt.lr
        self._restore(copy.deepcopy(self._good))
        self.opt.lr = lr / 2
        if self.sched is not None:
            self.sched.base_lr /= 2
            self.opt.lr = self.sched.lr
        self.log(f"\n{what} at step {step}: rolled back to step {self.step} (the last good "
                 f"state), learning rate halved to {self.opt.lr:g} (rollback "
                 f"{self._nan_events} of at most {cfg.nan_retries})")
        return True

    def _checkpoint(self, final=False):
        """``save()`` at a checkpoint step, guarded: weights that are not finite are not
        saved; a write that fails (disk full, permission denied) is reported and training goes
        on, the previous checkpoint intact (the next checkpoint retries). -> True if saved."""
        if not self._weights_finite():
            self.log(f"\nweights are not finite at step {self.step}: not checkpointed. "
                     + self._last_good())
            return False
        if self.cfg.on_nan == "rollback":
            self._good, self._nan_events = copy.deepcopy(self.state_tree()), 0
        try:
            self.save()
        except OSError as e:
            if final:
                self.log(f"\nerror: step {self.step}: {e}. " + self._last_good()
                         + "; make room and continue from it with --resume")
            else:
                self.log(f"\nwarning: step {self.step}: {e}. Training goes on and the next "
                         "checkpoint retries. " + self._last_good())
            return False
        self.saved_step = self.step
        return True

    def _weights_finite(self):
        return all(np.isfinite(p.data).all() for p in self.params)

    def _remove_stale_temps(self):
        """Temporary files of checkpoint writes that a crash (kill -9) interrupted; only
        called with the run directory locked, so no other writer owns them."""
        for tmp in glob.glob(os.path.join(glob.escape(self.out), ".tmp-*.npz")):
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def run(self):
        """Trains within the budget -> status: "done", "interrupted" (signal; checkpoint
        saved), "diverged" (non-finite loss), "save_failed" (the final checkpoint could not be
        written) or "aborted" (a second Ctrl-C: nothing saved)."""
        lock = lock_run_dir(self.out) if self.world.is_root else None
        try:
            if self.world.is_root:
                self._remove_stale_temps()
            return self._run()
        finally:
            if lock is not None:
                lock.close()

    def _run(self):
        from . import _progress

        cfg = self.cfg
        log_path = os.path.join(self.out, "log.jsonl") if self.world.is_root else os.devnull
        interrupted = []

        def on_signal(signum, frame):
            if signum == signal.SIGINT and signum in interrupted and not self.world.distributed:
                raise KeyboardInterrupt             # a second Ctrl-C: stop at once
            interrupted.append(signum)

        # Ctrl-C and SIGTERM set a flag that is read between steps, so the checkpoint holds a
        # whole step (under MPI: every rank stops at the same step)
        old_term = signal.signal(signal.SIGTERM, on_signal)
        old_int = signal.signal(signal.SIGINT, on_signal)
        self._nan_events, self._good = 0, None
        if cfg.on_nan == "rollback":
            self._good = copy.deepcopy(self.state_tree())
        log_failed = False
        saved = False
        for line in _progress.banner(self):
            self.log(line)
        bar = _progress.Progress(self._total(), cfg.time, self.step, self.progress, self.log)
        window = _progress.LossWindow()            # train losses since the last record
        notice = _progress.compile_notice(bar.write if self.world.is_root else
                                          (lambda message: None))
        t_start = time.perf_counter()
        self._clock = (self.elapsed, t_start)      # checkpoints taken while running count it
        t_last, tok_last = t_start, self.tokens
        status = "done"
        try:
            # non-finite values are detected and handled below (on_nan), not warned about
            with open(log_path, "a") as logf, np.errstate(over="ignore", invalid="ignore"), \
                    notice:
                while not self._done(t_start):
                    if self.world.any(interrupted):
                        status = "interrupted"
                        break
                    x, y = self.train_data.next_batch()
                    if self.train_data.new_epoch:                # a new epoch: reset state
                        self.state = None
                    state_before = self.state
                    try:
                        loss = self._step(x, y)
                    except ValueError:                       # the kernels refuse inf weights
                        if self._weights_finite():
                            raise
                        if self._on_nan("not finite", "weights", state_before):
                            continue
                        status = "diverged"
                        break
                    if not math.isfinite(loss):
                        if self._on_nan(loss, "loss", state_before):
                            continue
                        status = "diverged"
                        break
                    norm = self._update()
                    if not math.isfinite(norm):                  # nothing was applied
                        if self._on_nan(norm, "gradient norm", state_before):
                            continue
                        status = "diverged"
                        break
                    if cfg.on_nan == "skip":
                        self._nan_events = 0
                    self.step += 1
                    self.tokens += x.shape[0] * cfg.batch       # all ranks' tokens
                    window.add(loss)
                    bar.step(self.step, time.perf_counter() - t_start)
                    record = None
                    evaluate_now = self.step % cfg.eval_every == 0 or self._done(t_start)
                    if evaluate_now or self.step % cfg.log_every == 0:
                        now = time.perf_counter()
                        tok_s = (self.tokens - tok_last) / max(now - t_last, 1e-9)
                        record = {"step": self.step, "epoch": self.train_data.epoch,
                                  "train_loss": window.mean(), "tokens": self.tokens,
                                  "time": round(self._elapsed_now(), 3), "tok_s": tok_s,
                                  "lr": self.opt.lr}
                        window.clear()
                        if evaluate_now and self.val_data is not None:
                            val = self.world.sum(self.share * evaluate(
                                self.model, self.val_data, cfg.eval_batches))
                            record["val_loss"] = val
                            record["val_bpc"] = val / math.log(2)
                            if self.best_val is None or val < self.best_val:
                                self.best_val = val
                        try:
                            logf.write(json.dumps(record) + "\n")
                            logf.flush()
                        except OSError as e:                     # e.g. disk full: go on
                            if not log_failed:
                                self.log(f"\nwarning: cannot write {log_path}: {e}")
                            log_failed = True
                        t_last, tok_last = time.perf_counter(), self.tokens
                        bar.show(loss=f"{record['train_loss']:.3f}", tok_s=f"{tok_s:,.0f}")
                        if "val_loss" in record:
                            bar.show(val=f"{record['val_loss']:.3f}")
                    if self.step % cfg.checkpoint_every == 0:
                        self._checkpoint()
        except KeyboardInterrupt:
            status = "aborted"
        finally:
            self.elapsed, self._clock = self._elapsed_now(), None
            bar.close()
            signal.signal(signal.SIGTERM, old_term)
            signal.signal(signal.SIGINT, old_int)
        if status in ("done", "interrupted"):
            saved = self.saved_step == self.step or self._checkpoint(final=True)
            if not saved and status == "done":
                status = "save_failed"
        if status == "interrupted" and saved:
            self.log(f"interrupted at step {self.step}: checkpoint saved to "
                     f"{self.checkpoint_path}; continue with --resume {self.checkpoint_path}")
        elif status in ("interrupted", "aborted"):
            self.log(f"{status} at step {self.step} without saving it. " + self._last_good())
        return status


from ._progress import plot_log  # noqa: E402,F401  (train.plot_log: the --plot curves)
