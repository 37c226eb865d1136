"""What ``fastrnn train`` shows while it runs: the start banner, the compile notice, the progress
bar (its fields are kept, never replaced by a later update) and the smoothed train loss that
goes to ``log.jsonl`` every ``log_every`` steps (``RunLog``, which reports a failed write and
goes on); ``plot_log`` draws the loss curves of a log."""

import contextlib
import json
import math
import os

import numpy as np

from .validation import bits


def banner(trainer):
    """The lines printed before the first step: model, data, run directory, budget."""
    cfg, model = trainer.cfg, trainer.model
    n_params = sum(p.data.size for p in model.parameters())
    corpus = cfg.corpus or "the embedded default corpus"
    per_epoch = trainer.train_data.batches_per_epoch
    val = (f", validation {trainer.val_data.part_len * cfg.batch:,} tokens"
           if trainer.val_data is not None else ", no validation")
    budget = []
    if cfg.steps is not None:
        budget.append(f"{cfg.steps:,} steps")
    if cfg.epochs is not None:
        budget.append(f"{cfg.epochs:g} epochs ({math.ceil(cfg.epochs * per_epoch):,} steps)")
    if cfg.time is not None:
        budget.append(f"{cfg.time:g} s")
    lines = [
        f"model: {cfg.cell} {cfg.layers} x {cfg.hidden}"
        + (f", dropout {cfg.dropout:g}" if cfg.dropout else "")
        + f", {n_params:,} parameters, {cfg.dtype}"
        + (f" ({trainer.model_choice})" if getattr(trainer, "model_choice", None) else ""),
        f"data: {corpus}: {len(trainer.corpus.ids):,} tokens, vocabulary {trainer.vocab.size} "
        f"{'characters' if cfg.mode == 'char' else 'bytes'}; batch {cfg.batch} x seq {cfg.seq}, "
        f"{per_epoch:,} steps per epoch{val}",
        f"run directory: {trainer.out}"
        + (f" (resuming at step {trainer.step:,})" if trainer.step else ""),
        "budget: " + " or ".join(budget) + " (whichever comes first)" * (len(budget) > 1),
    ]
    return lines


@contextlib.contextmanager
def compile_notice(write):
    """While active, the first numba compilation prints a message through ``write``: numba's
    event API fires ``numba:compile`` on a cache miss only (the first run on a machine, or
    after an upgrade), never when a kernel is loaded from its on-disk cache."""
    try:
        from numba.core import event
    except ImportError:                            # pragma: no cover (an older numba)
        yield None
        return

    class CompileListener(event.Listener):
        shown = False

        def on_start(self, ev):
            if not self.shown:
                self.shown = True
                write("compiling kernels (once per machine: later runs load them from "
                      "numba's cache) ...")

        def on_end(self, ev):
            pass

    listener = CompileListener()
    event.register("numba:compile", listener)
    try:
        yield listener
    finally:
        event.unregister("numba:compile", listener)


def _clock(seconds):
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    return (f"{h}:" if h else "") + f"{rest // 60:02d}:{rest % 60:02d}"


class Progress:
    """The progress bar. With a step budget (``--steps``/``--epochs``) it counts steps (tqdm's
    estimate of the time left included); with a time budget alone it counts the budget's
    seconds, so the time left is exact. Its fields (train loss, validation loss, tokens/s,
    time left) are kept in one dict, so an update of one never removes another."""

    def __init__(self, total_steps, time_budget, initial_step, enabled, log=print):
        from tqdm import tqdm
        self.time_budget, self.log = time_budget, log
        self.by_time = time_budget is not None and total_steps is None
        self.fields = {}
        self.enabled = enabled
        if self.by_time:
            self.bar = tqdm(total=float(time_budget), disable=not enabled, dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s "
                                       "[{remaining} left{postfix}]")
        else:
            self.bar = tqdm(total=total_steps, initial=initial_step, disable=not enabled,
                            unit="step", dynamic_ncols=True)

    def step(self, step, seconds):
        """After each step: ``seconds`` of the budget used so far (this invocation)."""
        if self.by_time:
            self.bar.update(min(seconds, self.time_budget) - self.bar.n)
            self.fields["step"] = f"{step:,}"
        else:
            self.bar.update(1)
            if self.time_budget is not None:
                self.fields["time left"] = _clock(self.time_budget - seconds)
        self.bar.set_postfix(self.fields, refresh=False)

    def show(self, **fields):
        self.fields.update(fields)
        self.bar.set_postfix(self.fields, refresh=False)

    def write(self, message):
        if self.enabled:
            self.bar.write(message)
        else:
            self.log(message)

    def close(self):
        self.bar.close()


class LossWindow:
    """The train losses since the last log record: their mean is the smoothed train loss."""

    def __init__(self):
        self.losses = []

    def add(self, loss):
        self.losses.append(float(loss))

    def mean(self):
        return float(np.mean(self.losses)) if self.losses else float("nan")

    def clear(self):
        self.losses.clear()


class RunLog:
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


def plot_log(log_path, png_path):
    """Train (smoothed) and validation loss of a run's log.jsonl against steps and against
    wall time, as a PNG (needs the plot extra)."""
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("--plot needs matplotlib: pip install 'fastrnn[plot]'") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log_path) as f:
        rows = [__import__("json").loads(line) for line in f if line.strip()]
    val = [r for r in rows if "val_loss" in r]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, key, label in ((axes[0], "step", "step"), (axes[1], "time", "wall time (s)")):
        ax.plot([r.get(key, np.nan) for r in rows],
                [bits(r["train_loss"]) for r in rows], label="train (smoothed)")
        if val:
            ax.plot([r.get(key, np.nan) for r in val], [r["val_bpc"] for r in val], "o-",
                    label="validation")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("bits per character")
    axes[0].legend()
    fig.suptitle(os.path.basename(os.path.dirname(os.path.abspath(log_path))))
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
