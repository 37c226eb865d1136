"""The default char model of ``fastrnn train`` (embedding table, 2-layer LSTM H=128, decoder,
softmax cross-entropy, backward, clipping, RMSprop; T=50, B=50, V=65): one training step,
its tokens/s, its peak memory at H=512, the validation loss a fixed short run reaches, and
the held-out loss ``fastrnn train``'s defaults reach in a fixed wall time (so a change that
makes training faster but worse shows up)."""

import os
import shutil
import statistics
import tempfile

from .common import BATCH, SEQ, TIMEOUT, TIMER, char_batch, char_model, train_step


def _trained_val_loss(**config):
    """Trains ``TrainConfig(**config)`` (seed 0) in a temporary run directory -> the held-out
    loss of its best checkpoint (nats/char)."""
    from fastrnn.train import TrainConfig, Trainer

    out = tempfile.mkdtemp(prefix="fastrnn-asv-")
    try:
        cfg = TrainConfig(out=os.path.join(out, "run"), seed=0, **config)
        trainer = Trainer(cfg, progress=False, log=lambda *a, **k: None)
        status = trainer.run()
        if status != "done":
            raise RuntimeError(f"training ended with status {status!r}")
        return trainer.best_val
    finally:
        shutil.rmtree(out, ignore_errors=True)


class TrainingStep:
    params = ["lstm", "gru", "rnn"]
    param_names = ["cell"]
    timer = TIMER
    timeout = TIMEOUT
    MIN_TIME = 1.0          # s spent measuring tokens/s (at least MIN_STEPS steps)
    MIN_STEPS = 5

    def setup(self, cell):
        self.model, self.opt = char_model(cell)
        self.ids, self.y = char_batch()
        train_step(self.model, self.opt, self.ids, self.y)      # compiles / loads kernels

    def time_train_step(self, cell):
        train_step(self.model, self.opt, self.ids, self.y)

    def track_tokens_per_second(self, cell):
        """T*B tokens over the median wall time of one step."""
        times = []
        start = TIMER()
        while len(times) < self.MIN_STEPS or TIMER() - start < self.MIN_TIME:
            t0 = TIMER()
            train_step(self.model, self.opt, self.ids, self.y)
            times.append(TIMER() - t0)
        return SEQ * BATCH / statistics.median(times)

    track_tokens_per_second.unit = "tokens/s"


class PeakMemTrainingStep:
    """Peak resident memory of a process that ran a training step of the 2-layer LSTM, H=512."""
    timeout = TIMEOUT
    HIDDEN = 512

    def setup(self):
        self.model, self.opt = char_model("lstm", hidden=self.HIDDEN)
        self.ids, self.y = char_batch()
        train_step(self.model, self.opt, self.ids, self.y)      # compiles / loads kernels

    def peakmem_train_step_h512(self):
        train_step(self.model, self.opt, self.ids, self.y)


class ValidationLoss:
    """Validation loss (nats/char) after a fixed number of steps of ``fastrnn.train`` on a fixed
    generated corpus: 1-layer LSTM, H=64, seed 0, evaluated once at the end. Lower is better;
    it must not rise when training gets faster."""
    timeout = TIMEOUT
    STEPS = 200
    CORPUS_CHARS = 600_000          # ~1 epoch is 228 steps of 50x50 tokens: no repeats

    def setup_cache(self):
        from .common import generated_text

        path = os.path.abspath("val_corpus.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write(generated_text(self.CORPUS_CHARS, seed=0))
        return path

    def track_val_loss(self, path):
        return _trained_val_loss(corpus=path, hidden=64, layers=1, steps=self.STEPS,
                                 eval_every=self.STEPS)

    track_val_loss.unit = "nats/char"


class TimeToQuality:
    """Held-out loss (nats/char) of ``fastrnn train``'s defaults after a fixed wall time on the
    embedded corpus's first 90% (the last 10% held out): the number issue 15 asks users to
    care about. Faster steps lower it; so does better learning; a change that makes steps
    faster but learning worse shows up here and not in tokens/s. The budget includes
    compiling (loaded from numba's cache after the first run) and evaluation."""
    timeout = TIMEOUT
    TIME = 20.0             # s of training (small: the CI checks this benchmark, never runs it)

    def setup_cache(self):
        from fastrnn import data

        path = data.default_corpus_path()
        data.load_corpus(path, progress=False)          # encoded once, outside the budget
        return path

    def track_heldout_loss(self, path):
        from fastrnn.bench import QUALITY_VAL_FRACTION

        return _trained_val_loss(corpus=path, time=self.TIME, val_fraction=QUALITY_VAL_FRACTION)

    track_heldout_loss.unit = "nats/char"
