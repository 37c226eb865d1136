"""Training a character-level language model: the loop behind ``fastrnn train``.

- Data: ``fastrnn.data`` encodes the corpus once (memmap, cached) and cuts it char-rnn style
  into B contiguous streams read in windows of T tokens.
- Stateful, chunked truncated BPTT: the hidden state is carried from one window to the next of
  the same stream (reset at each epoch), full BPTT inside each window; ``truncate=k``
  additionally applies windowed truncation inside the window.
- Gradient clipping by global norm, Adam or RMSprop, and a learning-rate schedule that knows
  the end of the budget (default): warm-up, then cosine (or linear) decay to 0 at the last
  step (``optim.BudgetLR``). With ``steps``/``epochs`` the last step is known; with ``time``
  it is estimated from the measured speed (steps per second over the recent past, every
  evaluation and checkpoint included) and re-estimated every ``REPLAN_EVERY`` steps, so a
  slower (or busier) machine still ends at the bottom of the schedule at the deadline.
- Schedule and resume (the rule): the learning rate of a step is a function of the
  schedule's *plan* (the step and progress it started from, the planned last step) and of
  the step number only, never of a clock; the plan is in every checkpoint. So a run with a
  ``steps``/``epochs`` budget that is interrupted and resumed with the same budget is
  bit-identical to an uninterrupted one. A wall-time budget changes the plan only at
  re-estimates (at fixed step numbers, from the root rank's clock, broadcast under MPI); a
  resumed time run continues from the saved plan, so its learning rate does not jump, and
  re-estimates the rest from its own deadline (``time`` is the time of each invocation).
  A resumed run whose schedule had reached its end (a finished run given a bigger budget)
  starts a new warm-up and decay over the new budget; one whose ``steps`` changed keeps its
  progress and decays over the new remainder.
- Validation is held out (``val_split``): by default the corpus's last ``val_fraction`` as one
  contiguous tail, never trained on (as a user would hold out a file); ``"streams"`` keeps
  char-rnn's split (the end of each of the B streams, interleaved through the corpus: it
  reads optimistic, text near the training text); ``val_file`` validates on another file.
  The held-out text is cut into B streams too and read window by window, state carried.
- Evaluation costs at most ~3% of the run by default: every ``eval_every`` steps if given,
  else whenever the time since the last evaluation is ``1 / EVAL_SHARE`` times what it took
  (at least ``EVAL_MIN_INTERVAL`` s), on the first ``eval_batches`` windows; at the end one
  full evaluation of every held-out window. The checkpoint with the lowest held-out loss is
  kept as ``best.npz`` beside the last one (``checkpoint.npz``); ``fastrnn sample RUN``
  uses it. Both record their held-out loss (``heldout``).
- Every ``checkpoint_every`` steps and at the end: an atomic checkpoint
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
import json
import math
import os
import signal
import time

import numpy as np

from . import _checks as ck
from . import checkpoint as ckpt
from . import data as data_mod
from . import _files, cells, dist, nn, optim
from .rundir import (BEST, CHECKPOINT, LOCK, RunLockedError,  # noqa: F401  (train.X names)
                     lock_run_dir, remove_stale_temps, update_latest_link)



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
    lr: float = 8e-3                # the peak of the schedule (measured: README, time to
                                    # quality)
    clip: float = 5.0
    schedule: str = "cosine"        # "cosine"/"linear": warm-up, decay to 0 at the end of
                                    # the budget; "none" (constant); "step" (x lr_decay)
    warmup: float = 0.02            # warm-up, as a fraction of the budget (cosine/linear)
    lr_decay: float = 0.97          # "step": multiply by this every decay_every epochs
    decay_every: int = 10
    steps: int = None               # stop after this many steps (any of the three budgets)
    epochs: float = None
    time: float = None              # seconds
    val_fraction: float = 0.05
    val_split: str = "tail"         # "tail": the corpus's last val_fraction, contiguous;
                                    # "streams": the last val_fraction of each stream
    val_file: str = None            # validate on this text instead (the corpus all trains)
    eval_every: int = None          # steps between evaluations (None: by wall time, <= ~3%)
    eval_batches: int = 20          # validation windows per evaluation (None: all of them);
                                    # the final evaluation reads them all
    checkpoint_every: int = 500
    init: str = "pytorch"
    dtype: str = "float32"
    seed: int = 0
    out: str = None
    on_nan: str = "stop"            # non-finite loss: "stop", "skip" the update, "rollback"
    nan_retries: int = 3            # skips in a row / rollbacks to one good state, at most
    log_every: int = 10             # a log.jsonl record (smoothed train loss) every N steps
    auto_model: bool = False        # with a time budget, hidden/layers/dropout are chosen from
                                    # it (model_for_time); `fastrnn train --time S` sets it
                                    # when none of --hidden, --layers, --dropout is given

    def validate(self):
        pos = ("hidden", "layers", "seq", "batch", "checkpoint_every", "log_every")
        if self.eval_every is not None and (not isinstance(self.eval_every, int)
                                            or self.eval_every < 1):
            raise ValueError(f"eval_every must be None or an int >= 1, got "
                             f"{self.eval_every!r}")
        if self.val_split not in ("tail", "streams"):
            raise ValueError(f"val_split must be 'tail' or 'streams', got {self.val_split!r}")
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
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got "
                             f"{self.schedule!r}")
        if not (isinstance(self.warmup, (int, float)) and 0 <= self.warmup < 1):
            raise ValueError(f"warmup must be a fraction of the budget in [0, 1), got "
                             f"{self.warmup!r}")
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
        if self.truncate is not None and self.truncate < 0:
            raise ValueError(f"truncate must be >= 0, got {self.truncate}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.on_nan not in ("stop", "skip", "rollback"):
            raise ValueError(f"on_nan must be stop, skip or rollback, got {self.on_nan!r}")
        if not isinstance(self.nan_retries, int) or self.nan_retries < 1:
            raise ValueError(f"nan_retries must be an integer >= 1, got {self.nan_retries!r}")


SCHEDULES = ("cosine", "linear", "none", "step")

# What `fastrnn train --time S` trains when no model size is given (README, "Time to quality",
# measured with scripts/quality_grid.py): the 2x128 LSTM wins while the budget lets it read the
# corpus a few times (S=60 on a 1.35 MB training text, 2.8 passes: 1.28 nats/char held out,
# vs 1.60 for 2x256), and overfits when it reads it many times (S=600, 27.6 passes: 1.35),
# where a 2x256 LSTM with dropout 0.2, a third as fast, reaches 1.12 in 9.4 passes.
NOMINAL_TOKENS_PER_S = 62_000    # the 2x128 LSTM's training speed on 2 cores (issue 15)
OVERFIT_PASSES = 10              # between the two measured budgets (2.8 and 27.6 passes)
LARGE_MODEL = dict(hidden=256, layers=2, dropout=0.2)


def model_for_time(seconds, train_tokens):
    """-> (the settings that replace the default model's, or {} to keep it; how many passes
    over ``train_tokens`` the default model would make in ``seconds``)."""
    passes = seconds * NOMINAL_TOKENS_PER_S / max(train_tokens, 1)
    return (dict(LARGE_MODEL) if passes > OVERFIT_PASSES else {}), passes
EVAL_SHARE = 0.02        # periodic evaluations take at most this share of the run (the
                         # final full one adds ~0.1-1% on a 1 MB corpus)
EVAL_MIN_INTERVAL = 10.0 # s between two evaluations (by wall time), at least
REPLAN_EVERY = 10        # steps between re-estimates of a time budget's last step
REPLAN_FIRST = 20        # ... after re-estimating at each of the first steps of a run
GUESS_STEPS = 1000       # the last step of a time budget before any step was timed


# The parts of the config that fix the model; a resumed run must agree on these.
MODEL_KEYS = ("mode", "cell", "hidden", "layers", "dtype")


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


def evaluate(model, batcher, max_batches=None, prefix=None):
    """Mean loss (nats/token) over the first ``max_batches`` windows (default: all) of one
    pass of ``batcher``, state carried across windows. With ``prefix=k``: -> (that loss, the
    mean loss over the first k windows alone), both from the one pass."""
    batcher.reset()
    state, total, n, head = None, 0.0, 0, None
    for i, (x, y) in enumerate(batcher):
        if max_batches is not None and i >= max_batches:
            break
        if i == prefix:
            head = total / max(n, 1)
        loss, state = model.loss(x, y, state)
        total += loss * x.size
        n += x.size
    mean = total / max(n, 1)
    if prefix is None:
        return mean
    return mean, (mean if head is None else head)


def heldout_loss(model, ids, streams=50, seq=50):
    """Mean loss (nats/token) of ``model`` over every window of the held-out ids (N,): cut
    into ``streams`` contiguous streams read in windows of ``seq``, state carried inside a
    stream; the trainer's final evaluation (and ``fastrnn bench --quality``'s, for any model
    with a ``loss(x, y, state)``)."""
    b = data_mod.StreamBatcher(ids, streams, seq, "train", val_fraction=0.0)
    return evaluate(model, b)


def val_file_ids(path, vocab, progress=False):
    """Token ids of a validation file in the training ``vocab`` (encoded once and cached like
    a corpus). Raises ValueError listing the symbols the training corpus does not have."""
    val = data_mod.load_corpus(path, mode=vocab.mode, progress=progress)
    index = {t: i for i, t in enumerate(vocab.tokens)}
    lut = np.array([index.get(t, -1) for t in val.vocab.tokens], np.int64)
    if (lut < 0).any():
        unknown = [t for t, i in zip(val.vocab.tokens, lut) if i < 0]
        shown = ", ".join(repr(t if vocab.mode == "char" else bytes([t])) for t in unknown[:30])
        more = f" and {len(unknown) - 30} more" if len(unknown) > 30 else ""
        what = "characters" if vocab.mode == "char" else "bytes"
        hint = "; remove or replace them in the validation file" + (
            " (or train with --byte, if the corpus holds their bytes)"
            if vocab.mode == "char" else "")
        raise ValueError(f"--val-file {path} has {len(unknown)} {what} that are not in the "
                         f"training vocabulary ({vocab.size} {vocab.mode} symbols): "
                         f"{shown}{more}{hint}")
    return lut[np.asarray(val.ids)].astype(vocab.dtype)


class Trainer:
    """Holds everything a training run consists of; ``run()`` trains within the budget."""

    def __init__(self, cfg, resume=None, progress=True, log=print, clock=time.perf_counter):
        cfg.validate()
        # MPI data parallelism: this rank owns streams lo..hi of the batch (all of them alone)
        self.world = dist.world()
        self.streams = self.world.shard(cfg.batch)
        self.share = (self.streams[1] - self.streams[0]) / cfg.batch     # its token share
        if not self.world.is_root:                 # rank 0 alone reports
            progress, log = False, (lambda *args, **kw: None)
        self.cfg, self.progress, self.log = cfg, progress, log
        self.clock = clock
        self._eval_seconds = self._save_seconds = 0.0
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
        self._split(corpus_path)
        self.model_choice = None                   # what auto_model chose, and why
        if cfg.auto_model and cfg.time is not None and resumed is None:
            train_tokens = self.train_data.batches_per_epoch * cfg.batch * cfg.seq
            pick, passes = model_for_time(cfg.time, train_tokens)
            cfg = self.cfg = dataclasses.replace(cfg, **pick)
            self.model_choice = (
                f"chosen for --time {cfg.time:g} s: in that time the 2x128 model would read "
                f"the training text ~{passes:.2g} times" + (" and overfit" if pick else ""))
        ck.check_training_memory(cfg.cell, cfg.hidden, cfg.layers, self.vocab.size,
                                 self.streams[1] - self.streams[0], cfg.seq, cfg.dtype,
                                 cfg.optimizer, cfg.on_nan == "rollback")
        self.model = build_model(cfg, self.vocab.size)
        self.params = self.model.parameters()
        self.reducer = None
        if self.world.distributed:                 # before the optimizer: grads become views
            self.model.rnn.dropout_streams = (cfg.batch, self.streams[0])
            self.reducer = dist.GradReducer(self.world, self.params, self.share)
        self.opt = build_optimizer(cfg, self.params)
        self.sched = None
        if cfg.schedule in ("cosine", "linear"):
            self.sched = optim.BudgetLR(self.opt, self._total() or GUESS_STEPS,
                                        shape=cfg.schedule, warmup=cfg.warmup)
        elif cfg.schedule == "step":
            self.sched = optim.StepLR(self.opt, step_size=cfg.decay_every
                                      * self.train_data.batches_per_epoch, gamma=cfg.lr_decay)
        self.step = 0
        self.tokens = 0
        self.elapsed = 0.0
        self.best_val = None
        self.best = None          # {"step", "loss" (subset evaluation), "heldout"} of best.npz
        self.heldout = None       # {"loss", "tokens", "what", "step"}: the full evaluation
        self._best_weights = None  # the best model's weights, once this process found it
        self.state = None
        if resumed is not None:                    # before anything is written
            try:
                self._restore(resumed)
                self._continue_plan(resumed.get("scheduler"))
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
        self.best_path = os.path.join(self.out, BEST)
        self.saved_step = None                     # step of the last checkpoint written
        self._resumed = resumed is not None
        self._reported = set()                     # warnings given once per run
        if resumed is not None:
            if os.path.abspath(resume) == os.path.abspath(self.checkpoint_path):
                self.saved_step = self.step

    def _split(self, corpus_path):
        """The training and held-out batchers (see ``val_split``, ``val_file``)."""
        cfg, ids = self.cfg, self.corpus.ids
        B, T, streams = cfg.batch, cfg.seq, self.streams
        self.val_data, self.heldout_what = None, None
        if cfg.val_split == "streams" and cfg.val_file is None:
            self.train_data = data_mod.StreamBatcher(ids, B, T, "train", cfg.val_fraction,
                                                     streams=streams)
            if cfg.val_fraction > 0:
                self.val_data = data_mod.StreamBatcher(ids, B, T, "val", cfg.val_fraction,
                                                       streams=streams)
                self.heldout_what = (f"the last {cfg.val_fraction:.0%} of each of the {B} "
                                     "streams")
            return
        if cfg.val_file is not None:
            with self.world.root_first():
                val_ids = val_file_ids(cfg.val_file, self.vocab, self.progress)
            train_ids = ids
            self.heldout_what = f"--val-file {cfg.val_file}"
        elif cfg.val_fraction > 0:
            cut = len(ids) - int(round(len(ids) * cfg.val_fraction))
            train_ids, val_ids = ids[:cut], ids[cut:]
            self.heldout_what = f"the last {cfg.val_fraction:.0%} of the corpus"
        else:
            train_ids, val_ids = ids, None
        self.train_data = data_mod.StreamBatcher(train_ids, B, T, "train", 0.0,
                                                 streams=streams)
        if val_ids is None:
            return
        if len(val_ids) < B * (T + 1):
            raise ValueError(
                f"the held-out text ({self.heldout_what}: {len(val_ids)} tokens) is too short "
                f"for one window of seq + 1 = {T + 1} tokens in each of the batch = {B} "
                f"streams (it needs {B * (T + 1)} tokens): "
                + ("give a longer --val-file" if cfg.val_file else
                   "raise --val-fraction or use a longer corpus")
                + ", or lower --batch or --seq")
        self.val_data = data_mod.StreamBatcher(val_ids, B, T, "train", 0.0, streams=streams)

    def describe(self):
        """The model and recipe in one line, e.g. ``lstm 2x128, batch 50 x seq 50, rmsprop
        lr 0.002, cosine schedule, dropout 0``."""
        c = self.cfg
        return (f"{c.cell} {c.layers}x{c.hidden}, batch {c.batch} x seq {c.seq}, {c.optimizer} "
                f"lr {c.lr:g}, {c.schedule} schedule, dropout {c.dropout:g}")

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
            "heldout": self.heldout,           # this model's held-out loss (None: not known)
            "best": self.best,                 # step and held-out loss of best.npz
        }

    def _elapsed_now(self):
        """Training time of the run so far, this invocation's running time included."""
        if getattr(self, "_clock", None) is None:
            return self.elapsed
        before, t_start = self._clock
        return before + self.clock() - t_start

    def _restore(self, tree):
        self.model.load_state_dict(tree["model"])
        self.opt.load_state_dict(tree["optimizer"])
        saved = tree["scheduler"]
        if self.sched is not None and saved is not None \
                and saved.get("schedule") == type(self.sched).__name__:
            self.sched.load_state_dict(saved)
        self.train_data.load_state_dict(tree["data"])
        self.model.rnn.rng.bit_generator.state = tree["dropout_rng"]
        if tree["hidden"] is not None:             # this rank's streams of the saved batch
            lo, hi = self.streams
            self.state = _state_from_list(self.cfg.cell, [np.ascontiguousarray(a[:, lo:hi])
                                                          for a in tree["hidden"]])
        self.step, self.tokens = tree["step"], tree["tokens"]
        self.elapsed, self.best_val = tree["elapsed"], tree["best_val"]
        self.best = tree.get("best")                # absent in older checkpoints
        self.heldout = tree.get("heldout")

    def _continue_plan(self, saved):
        """After a resume: how the schedule goes on (see the module docstring)."""
        if not isinstance(self.sched, optim.BudgetLR):
            return
        step, total = self.sched.step_count, self._total()
        if saved is None or saved.get("schedule") != "BudgetLR":
            # a checkpoint with another (or no) schedule: a new plan from this step
            self.sched.step_count = step = self.step
            self.sched.replan(step, total or step + GUESS_STEPS, progress=0.0)
        elif self.sched.finished:               # the last run ended its schedule: a new one
            self.sched.replan(step, total or step + GUESS_STEPS, progress=0.0)
        elif total is not None and total != self.sched.end_step:
            self.sched.replan(step, total)     # keep the progress, decay over the new rest

    def save(self, path=None, link=True):
        """Writes the checkpoint to ``path`` (default: the run's ``checkpoint.npz``, then
        copied to ``best.npz`` too when the best model is this step's; ``link``: point
        ``runs/latest`` at this run)."""
        tree = self.state_tree()                   # every rank takes part (hidden is gathered)
        self.world.check_params(self.params)       # and holds the same weights
        if not self.world.is_root:
            return
        ckpt.save(path or self.checkpoint_path, tree)
        if path is None and self.best is not None and self.best["step"] == self.step:
            _files.copy_atomic(self.checkpoint_path, self.best_path)
        if not link:
            return
        problem = update_latest_link(self.out)
        if problem and problem not in self._reported:      # each once
            self._reported.add(problem)
            self.log(f"\nwarning: {problem}")

    # -------------------------------------------------------------- the loop
    def _done(self, t_start):
        cfg = self.cfg
        if cfg.steps is not None and self.step >= cfg.steps:
            return True
        if cfg.epochs is not None and self.step >= cfg.epochs * self.train_data.batches_per_epoch:
            return True
        return cfg.time is not None and self.world.any(
            self.clock() - t_start >= cfg.time - self._reserve())

    def _eval_due(self):
        """Evaluate now? Every ``eval_every`` steps if given, else when the wall time since the
        last evaluation reached ``1 / EVAL_SHARE`` times its duration (so evaluations take at
        most ~``EVAL_SHARE`` of the run), at least ``EVAL_MIN_INTERVAL`` s."""
        if self.val_data is None:
            return False
        if self.cfg.eval_every is not None:
            return self.step % self.cfg.eval_every == 0
        return self.world.any(self.clock() >= self._next_eval)

    def _evaluate(self, final=False):
        """A periodic evaluation (the first ``eval_batches`` windows) or, with ``final``, the
        full one (every window; the periodic loss comes from the same pass). Keeps the best
        model (by the periodic loss, the one all evaluations share) in ``best.npz``. -> the
        loss over the evaluated windows."""
        cfg, t0 = self.cfg, self.clock()
        k = cfg.eval_batches
        if final:
            full, head = evaluate(self.model, self.val_data, None, prefix=k)
            full = self.world.sum(self.share * full)
            head = self.world.sum(self.share * head)
            self.heldout = {"loss": full, "tokens": self._val_tokens(), "what":
                            self.heldout_what, "step": self.step}
        else:
            head = self.world.sum(self.share * evaluate(self.model, self.val_data, k))
            took = self.clock() - t0
            windows = self.val_data.batches_per_epoch
            self._eval_seconds = took * windows / min(k or windows, windows)   # the final one
            self._next_eval = self.clock() + max(EVAL_MIN_INTERVAL, took / EVAL_SHARE)
        if self.best is None or head <= self.best["loss"]:
            self.best = {"step": self.step, "loss": head, "heldout": None}
            self._best_weights = {k: v.copy() for k, v in self.model.state_dict().items()}
            if not final and self._weights_finite():
                self._save_best()                  # the final one is saved with the last
        if final:
            if self.best["step"] == self.step:
                self.best["heldout"] = full
            elif self._best_weights is None and not os.path.exists(self.best_path):
                self.best["heldout"] = None        # an earlier run's best.npz, not here
            else:                                  # best.npz holds an earlier model
                weights = self._best_weights
                if weights is None:                # found by the run this one resumed
                    weights = ckpt.load(self.best_path)["model"]
                scratch = build_model(cfg, self.vocab.size)
                scratch.load_state_dict(weights)
                self.best["heldout"] = self.world.sum(self.share * evaluate(scratch,
                                                                            self.val_data))
            self.best_val = self.best["heldout"] if self.best["heldout"] is not None else full
            return full
        self.best_val = head if self.best_val is None else min(self.best_val, head)
        return head

    def _val_tokens(self):
        v = self.val_data
        return v.batches_per_epoch * v.seq * v.batch

    def _save_best(self):
        try:
            self.save(self.best_path, link=False)
        except OSError as e:
            self.log(f"\nwarning: step {self.step}: {e}; training goes on")

    def _reserve(self):
        """Seconds kept at the end of a time budget for what follows the last step: the final
        evaluation and checkpoint (as long as the last ones took; 0 before any)."""
        return self._eval_seconds + self._save_seconds

    def _replan(self, t_start):
        """A time budget: re-estimate the last step from the measured speed (every step of the
        first ``REPLAN_FIRST`` of this run, then every ``REPLAN_EVERY``; the first step, which
        includes compiling, only starts the clock) and move the schedule's end there."""
        k = self.step - self._run_start_step
        if not (k <= REPLAN_FIRST or k % REPLAN_EVERY == 0):
            return
        end = None
        if self.world.is_root:
            now = self.clock()
            samples = self._samples
            samples.append((now, self.step))
            if len(samples) >= 2:
                window = max(2.0, 0.2 * self.cfg.time)     # the recent past: speed may change
                t0, s0 = next((t, s) for t, s in samples if t >= now - window or s == self.step)
                if s0 == self.step:                    # no sample in the window but this one
                    t0, s0 = samples[-2]
                rate = (self.step - s0) / max(now - t0, 1e-9)      # steps per second
                left = t_start + self.cfg.time - self._reserve() - now
                end = self.step + max(1, int(left * rate))
                total = self._total()
                if total is not None:
                    end = min(end, total)
                while len(samples) > 2 and samples[1][0] < now - window:
                    samples.pop(0)
        end = self.world.bcast(end)
        if end is not None:
            self.sched.replan(self.sched.step_count, end)

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
            t_save = self.clock()
            self.save()
            self._save_seconds = self.clock() - t_save
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

    def run(self):
        """Trains within the budget -> status: "done", "interrupted" (signal; checkpoint
        saved), "diverged" (non-finite loss), "save_failed" (the final checkpoint could not be
        written) or "aborted" (a second Ctrl-C: nothing saved)."""
        lock = lock_run_dir(self.out) if self.world.is_root else None
        try:
            if self.world.is_root:
                remove_stale_temps(self.out)
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
        self._run_start_step, self._samples = self.step, []
        self._next_eval = math.inf                 # set when the first step (compiling) ends
        if not self._resumed and self.world.is_root and os.path.exists(self.best_path):
            os.unlink(self.best_path)              # a previous run's, in this directory
        timed = cfg.time is not None and isinstance(self.sched, optim.BudgetLR)
        first_step_s = None
        if cfg.on_nan == "rollback":
            self._good = copy.deepcopy(self.state_tree())
        logf = _RunLog(log_path, self.log)      # a full disk: reported, never fatal
        saved = False
        for line in _progress.banner(self):
            self.log(line)
        bar = _progress.Progress(self._total(), cfg.time, self.step, self.progress, self.log)
        window = _progress.LossWindow()            # train losses since the last record
        notice = _progress.compile_notice(bar.write if self.world.is_root else
                                          (lambda message: None))
        t_start = self.clock()
        self._clock = (self.elapsed, t_start)      # checkpoints taken while running count it
        t_last, tok_last = t_start, self.tokens
        status = "done"
        try:
            # non-finite values are detected and handled below (on_nan), not warned about
            with np.errstate(over="ignore", invalid="ignore"), notice:
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
                    if first_step_s is None:
                        first_step_s = self.clock() - t_start
                        self._next_eval = self.clock() + EVAL_MIN_INTERVAL
                    if timed:
                        self._replan(t_start)
                    bar.step(self.step, self.clock() - t_start)
                    record = None
                    done = self._done(t_start)
                    evaluate_now = done or self._eval_due()
                    if evaluate_now or self.step % cfg.log_every == 0:
                        now = time.perf_counter()
                        tok_s = (self.tokens - tok_last) / max(now - t_last, 1e-9)
                        record = {"step": self.step, "epoch": self.train_data.epoch,
                                  "train_loss": window.mean(), "tokens": self.tokens,
                                  "time": round(self._elapsed_now(), 3), "tok_s": tok_s,
                                  "lr": self.opt.lr}
                        window.clear()
                        if evaluate_now and self.val_data is not None:
                            val = self._evaluate(final=done)
                            record["val_loss"] = val
                            record["val_bpc"] = val / math.log(2)
                            if done and self.heldout is not None:
                                record["heldout"] = self.heldout["loss"]
                        logf.write(record)
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
            logf.close()
            bar.close()
            signal.signal(signal.SIGTERM, old_term)
            signal.signal(signal.SIGINT, old_int)
        if status in ("done", "interrupted"):
            try:
                saved = self.saved_step == self.step or self._checkpoint(final=True)
            except KeyboardInterrupt:              # (another) Ctrl-C during the final save:
                status = "aborted"                 # the write is abandoned, the last one kept
            if not saved and status == "done":
                status = "save_failed"
        if (status == "done" and cfg.time is not None and first_step_s is not None
                and self.step - self._run_start_step <= 1 and first_step_s > cfg.time):
            self.log(f"--time {cfg.time:g} s is shorter than the first step, which took "
                     f"{first_step_s:.1f} s (compiling the kernels, or loading them from "
                     f"numba's cache, included): 1 step trained"
                     + (f", checkpoint {self.checkpoint_path}" if saved else "")
                     + f". Give --time well above {first_step_s:.0f} s (later runs reuse the "
                     "compiled kernels and start faster)")
        if status == "interrupted" and saved:
            self.log(f"interrupted at step {self.step}: checkpoint saved to "
                     f"{self.checkpoint_path}; continue with --resume {self.checkpoint_path}")
        elif status in ("interrupted", "aborted"):
            self.log(f"{status} at step {self.step} without saving it. " + self._last_good())
        return status


from ._progress import plot_log  # noqa: E402,F401  (train.plot_log: the --plot curves)


class _RunLog:
    """A run's log.jsonl: a write or close that fails (disk full) is reported once and
    never ends the run."""

    def __init__(self, path, log):
        self.path, self.log, self.failed, self.f = path, log, False, None
        try:
            self.f = open(path, "a")
        except OSError as e:
            self._failed(e)

    def _failed(self, e):
        if not self.failed:
            self.log(f"\nwarning: cannot write {self.path}: {e}")
        self.failed = True

    def write(self, record):
        try:
            if self.f is not None:
                self.f.write(json.dumps(record) + "\n")
                self.f.flush()
        except OSError as e:
            self._failed(e)

    def close(self):
        f, self.f = self.f, None
        try:
            if f is not None:
                f.close()
        except OSError as e:
            self._failed(e)
