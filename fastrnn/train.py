"""Training a character-level language model: the loop behind ``fastrnn train``.

- Data: ``fastrnn.data`` encodes the corpus once (memmap, cached) and cuts it char-rnn style
  into B contiguous streams read in windows of T tokens.
- Stateful, chunked truncated BPTT: the hidden state is carried from one window to the next of
  the same stream (reset at each epoch), full BPTT inside each window; ``truncate=k``
  additionally applies windowed truncation inside the window.
- Gradient clipping by global norm, Adam or RMSprop (``fastrnn.config`` builds the model and
  optimizer), and a learning-rate schedule that ends with the budget (steps, epochs or wall
  time), also across a resume (``fastrnn.budget``).
- Validation is held out (``val_split``, ``val_file``; ``fastrnn.validation``).
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
import math
import os
import signal
import time

import numpy as np

from . import _checks as ck
from . import checkpoint as ckpt
from . import data as data_mod
from . import _files, _progress, cells, dist, optim, validation
from ._progress import plot_log  # noqa: F401  (train.plot_log: the --plot curves)
from .budget import Budget
# names that stay importable as fastrnn.train.X
from .config import (LARGE_MODEL, LARGE_MODEL_PASSES, OVERFIT_PASSES,  # noqa: F401
                     SCHEDULES, TrainConfig, build_model, build_optimizer, model_for_time)
from .rundir import (BEST, CHECKPOINT, LOCK, MODEL_KEYS, RunLockedError,  # noqa: F401
                     check_same_model, lock_run_dir, remove_stale_temps, update_latest_link)
from .validation import evaluate, heldout_loss, val_file_ids  # noqa: F401

EVAL_SHARE = 0.02        # periodic evaluations take at most this share of the run (the
                         # final full one adds ~0.1-1% on a 1 MB corpus)
EVAL_MIN_INTERVAL = 10.0 # s between two evaluations (by wall time), at least


def _state_list(state):
    return list(state) if isinstance(state, tuple) else [state]


def _state_from_list(cell, arrays):
    return tuple(arrays) if cells.get(cell).n_states == 2 else arrays[0]


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
            check_same_model(resume, resumed["config"], cfg)
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
        self.train_data, self.val_data, self.heldout_what = validation.split(
            cfg, self.corpus.ids, self.vocab, self.streams, self.world, self.progress)
        self.model_choice = None                   # what auto_model chose, and why
        if cfg.auto_model and cfg.time is not None and resumed is None:
            train_tokens = self.train_data.batches_per_epoch * cfg.batch * cfg.seq
            pick, passes = model_for_time(cfg.time, train_tokens)
            capped = bool(pick) and cfg.steps is None and cfg.epochs is None
            if capped:
                pick["epochs"] = LARGE_MODEL_PASSES
            cfg = self.cfg = dataclasses.replace(cfg, **pick)
            self.model_choice = (
                f"chosen for --time {cfg.time:g} s: in that time the 2x128 model would read "
                f"the training text ~{passes:.2g} times" + (" and overfit" if pick else "")
                + (f"; this one stops after {LARGE_MODEL_PASSES} passes if time is left, as "
                   f"more overfit too (--epochs N to go on)" if capped else ""))
        elif resumed is not None and cfg.steps is None and cfg.epochs is None:
            saved = resumed["config"]              # a picked model keeps its pass limit
            if saved.get("auto_model") and saved.get("epochs") == LARGE_MODEL_PASSES:
                cfg = self.cfg = dataclasses.replace(cfg, epochs=LARGE_MODEL_PASSES)
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
        self.budget = Budget(cfg, self.train_data.batches_per_epoch, self.world, clock)
        self.sched = self.budget.schedule(self.opt)
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
                self.budget.continue_plan(self.sched, resumed.get("scheduler"), self.step)
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
        self._next_eval = math.inf                 # set when the first step (compiling) ends
        if not self._resumed and self.world.is_root and os.path.exists(self.best_path):
            os.unlink(self.best_path)              # a previous run's, in this directory
        timed = cfg.time is not None and isinstance(self.sched, optim.BudgetLR)
        first_step_s = None
        if cfg.on_nan == "rollback":
            self._good = copy.deepcopy(self.state_tree())
        logf = _progress.RunLog(log_path, self.log)      # a full disk: reported, never fatal
        saved = False
        for line in _progress.banner(self):
            self.log(line)
        bar = _progress.Progress(self.budget.total, cfg.time, self.step, self.progress, self.log)
        window = _progress.LossWindow()            # train losses since the last record
        notice = _progress.compile_notice(bar.write if self.world.is_root else
                                          (lambda message: None))
        t_start = self.budget.start(self.step)
        self._clock = (self.elapsed, t_start)      # checkpoints taken while running count it
        t_last, tok_last = t_start, self.tokens
        status = "done"
        try:
            # non-finite values are detected and handled below (on_nan), not warned about
            with np.errstate(over="ignore", invalid="ignore"), notice:
                while not self.budget.done(self.step, self._reserve()):
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
                        self.budget.replan(self.sched, self.step, self._reserve())
                    bar.step(self.step, self.clock() - t_start)
                    record = None
                    done = self.budget.done(self.step, self._reserve())
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
                            record["val_bpc"] = validation.bits(val)
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
                and self.step - self.budget.start_step <= 1 and first_step_s > cfg.time):
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
