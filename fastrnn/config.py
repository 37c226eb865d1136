"""The settings of a training run (``TrainConfig``, checked by ``validate``), the model a time
budget picks when none is given (``model_for_time``), and the model and optimizer a config
builds. ``fastrnn.train`` trains them; ``fastrnn.sample`` and ``fastrnn.checkpoint`` read a
saved config back.
"""

import dataclasses

import numpy as np

from . import _checks as ck
from . import nn, optim


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
        """Raises ValueError naming the first setting that is out of range."""
        ck.check_train_config(self, SCHEDULES)


SCHEDULES = ("cosine", "linear", "none", "step")

# What `fastrnn train --time S` trains when no model size is given (README, "Time to quality",
# measured with scripts/quality_grid.py): the 2x128 LSTM wins while the budget lets it read the
# corpus a few times (S=60 on a 1.35 MB training text, 2.8 passes: 1.28 nats/char held out,
# vs 1.60 for 2x256), and overfits when it reads it many times (S=600, 27.6 passes: 1.35),
# where a 2x256 LSTM, a third as fast, reaches 1.12 in 9.4 passes with dropout 0.2 and 1.10
# with dropout 0.4 (the Bible: 1.23 and 1.20). At S=3600, where the 2x256 reads the text 56
# times, a 2x512 LSTM with dropout 0.5 only ties it (1.162 against 1.163): no third size. And
# an hour is worse than 600 s for both (the Bible: 1.39 at 77 passes, 1.33 for the 2x512 at
# 24), so the 2x256 pick stops after LARGE_MODEL_PASSES passes (the S=600 rows read 9.4-12.8).
NOMINAL_TOKENS_PER_S = 62_000    # the 2x128 LSTM's training speed on 2 cores (issue 15)
OVERFIT_PASSES = 10              # between the two measured budgets (2.8 and 27.6 passes)
LARGE_MODEL = dict(hidden=256, layers=2, dropout=0.4)
LARGE_MODEL_PASSES = 13          # the LARGE_MODEL pick's --epochs when none is given


def model_for_time(seconds, train_tokens):
    """-> (the settings that replace the default model's, or {} to keep it; how many passes
    over ``train_tokens`` the default model would make in ``seconds``)."""
    passes = seconds * NOMINAL_TOKENS_PER_S / max(train_tokens, 1)
    return (dict(LARGE_MODEL) if passes > OVERFIT_PASSES else {}), passes


def build_model(cfg, vocab_size):
    return nn.CharRNN(vocab_size, cfg.hidden, cfg.layers, cfg.cell, dropout=cfg.dropout,
                      truncate=cfg.truncate, init=cfg.init, dtype=np.dtype(cfg.dtype),
                      seed=cfg.seed)


def build_optimizer(cfg, params):
    if cfg.optimizer == "adam":
        return optim.Adam(params, lr=cfg.lr)
    return optim.RMSprop(params, lr=cfg.lr, alpha=0.95, eps=1e-8)
