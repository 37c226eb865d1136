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
- A non-finite loss stops training with a message naming the step and the last good
  checkpoint (which is kept).
- Under ``mpiexec -n N`` (or ``srun``) the N processes share the B streams and sum their
  gradients (data parallelism, ``fastrnn.dist``): the same results as one process.
"""

import dataclasses
import json
import math
import os
import signal
import time

import numpy as np

from . import checkpoint as ckpt
from . import data as data_mod
from . import dist, nn, optim

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

    def validate(self):
        pos = ("hidden", "layers", "seq", "batch", "eval_every", "checkpoint_every")
        if self.eval_batches is not None and (not isinstance(self.eval_batches, int)
                                              or self.eval_batches < 1):
            raise ValueError(f"eval_batches must be None or an int >= 1, got "
                             f"{self.eval_batches!r}")
        for name in pos:
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.cell not in ("lstm", "gru", "rnn"):
            raise ValueError(f"cell must be lstm, gru or rnn, got {self.cell!r}")
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
    return tuple(arrays) if cell == "lstm" else arrays[0]


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
        resumed = ckpt.load(resume) if resume else None
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
        self.out = self.world.bcast(cfg.out or os.path.join(
            "runs", time.strftime("%Y%m%d-%H%M%S") + f"-{cfg.cell}{cfg.hidden}x{cfg.layers}"))
        if self.world.is_root:
            os.makedirs(self.out, exist_ok=True)
        self.checkpoint_path = os.path.join(self.out, CHECKPOINT)
        if resumed is not None:
            self._restore(resumed)

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
            "step": self.step, "tokens": self.tokens, "elapsed": self.elapsed,
            "best_val": self.best_val,
        }

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
        """Clip the gradients by global norm and apply one optimizer (and schedule) step."""
        optim.clip_grad_norm_(self.params, self.cfg.clip)
        self.opt.step()
        if self.sched is not None:
            self.sched.step()

    def _report_divergence(self, loss):
        if os.path.exists(self.checkpoint_path):
            self.log(f"\nloss became {loss} at step {self.step + 1}: training stopped. "
                     f"The last good checkpoint is {self.checkpoint_path}")
        else:
            self.log(f"\nloss became {loss} at step {self.step + 1}: training stopped "
                     "before any checkpoint was written; lower --lr or --clip")

    def run(self):
        from tqdm import tqdm

        cfg = self.cfg
        log_path = os.path.join(self.out, "log.jsonl") if self.world.is_root else os.devnull
        interrupted = []

        def on_signal(signum, frame):
            interrupted.append(signum)

        old_term = signal.signal(signal.SIGTERM, on_signal)
        # under MPI Ctrl-C too is a flag, so that every rank stops at the same step
        old_int = signal.signal(signal.SIGINT, on_signal) if self.world.distributed else None
        bar = tqdm(total=self._total(), initial=self.step, disable=not self.progress,
                   unit="step", dynamic_ncols=True)
        t_start = time.perf_counter()
        t_last, tok_last = t_start, self.tokens
        train_loss = float("nan")
        status = "done"
        try:
            with open(log_path, "a") as logf:
                while not self._done(t_start):
                    if self.world.any(interrupted):
                        status = "interrupted"
                        break
                    x, y = self.train_data.next_batch()
                    if self.train_data.new_epoch:                # a new epoch: reset state
                        self.state = None
                    loss = self._step(x, y)
                    if not math.isfinite(loss):
                        status = "diverged"
                        self._report_divergence(loss)
                        break
                    self._update()
                    self.step += 1
                    self.tokens += x.shape[0] * cfg.batch       # all ranks' tokens
                    train_loss = loss
                    bar.update(1)
                    record = None
                    if self.step % cfg.eval_every == 0 or self._done(t_start):
                        now = time.perf_counter()
                        tok_s = (self.tokens - tok_last) / max(now - t_last, 1e-9)
                        record = {"step": self.step, "epoch": self.train_data.epoch,
                                  "train_loss": train_loss, "tokens": self.tokens,
                                  "tok_s": tok_s, "lr": self.opt.lr}
                        if self.val_data is not None:
                            val = self.world.sum(self.share * evaluate(
                                self.model, self.val_data, cfg.eval_batches))
                            record["val_loss"] = val
                            record["val_bpc"] = val / math.log(2)
                            if self.best_val is None or val < self.best_val:
                                self.best_val = val
                        logf.write(json.dumps(record) + "\n")
                        logf.flush()
                        t_last, tok_last = time.perf_counter(), self.tokens
                        bar.set_postfix(loss=f"{train_loss:.3f}",
                                        val=f"{record.get('val_loss', float('nan')):.3f}",
                                        tok_s=f"{tok_s:,.0f}")
                    elif self.step % 10 == 0:
                        bar.set_postfix(loss=f"{train_loss:.3f}")
                    if self.step % cfg.checkpoint_every == 0:
                        self.save()
        except KeyboardInterrupt:
            status = "interrupted"
        finally:
            self.elapsed += time.perf_counter() - t_start
            bar.close()
            signal.signal(signal.SIGTERM, old_term)
            if old_int is not None:
                signal.signal(signal.SIGINT, old_int)
        if status != "diverged":
            self.save()
        if status == "interrupted":
            self.log(f"interrupted at step {self.step}: checkpoint saved to "
                     f"{self.checkpoint_path}; continue with --resume {self.checkpoint_path}")
        return status


def plot_log(log_path, png_path):
    """Train/validation loss curves of a run's log.jsonl as a PNG (needs the plot extra)."""
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("--plot needs matplotlib: pip install -e '.[plot]'") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log_path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["train_loss"] / math.log(2) for r in rows], label="train")
    if any("val_loss" in r for r in rows):
        ax.plot([r["step"] for r in rows if "val_loss" in r],
                [r["val_bpc"] for r in rows if "val_loss" in r], label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("bits per character")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
