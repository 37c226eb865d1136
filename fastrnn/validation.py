"""What a training run is validated on, and how.

- The held-out split (``split``, from ``TrainConfig.val_split``, ``val_fraction``,
  ``val_file``): by default the corpus's last ``val_fraction`` as one contiguous tail, never
  trained on (as a user would hold out a file); ``"streams"`` keeps char-rnn's split (the end
  of each of the B streams, interleaved through the corpus: it reads optimistic, text near the
  training text); ``val_file`` validates on another file (``val_file_ids``). The held-out
  text is cut into B streams too and read window by window, state carried.
- ``evaluate``: the mean loss over the windows of a batcher; ``heldout_loss``: over every
  window of held-out ids (the trainer's final evaluation, ``fastrnn bench --quality``'s).
- ``bits``: nats -> bits, for every loss shown in bits.
"""

import math

import numpy as np

from . import data as data_mod


def bits(nats: float) -> float:
    """Nats -> bits (a loss in nats per token -> bits per token)."""
    return nats / math.log(2)


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


def split(cfg, ids, vocab, streams, world, progress=False):
    """The training and held-out batchers of a run over the corpus ``ids`` (see ``val_split``,
    ``val_file`` in ``TrainConfig``) -> (train, held-out or None, what the held-out text is or
    None); ``streams``: this rank's streams of the batch."""
    B, T = cfg.batch, cfg.seq
    if cfg.val_split == "streams" and cfg.val_file is None:
        train = data_mod.StreamBatcher(ids, B, T, "train", cfg.val_fraction, streams=streams)
        if cfg.val_fraction <= 0:
            return train, None, None
        return (train,
                data_mod.StreamBatcher(ids, B, T, "val", cfg.val_fraction, streams=streams),
                f"the last {cfg.val_fraction:.0%} of each of the {B} streams")
    what = None
    if cfg.val_file is not None:
        with world.root_first():
            val_ids = val_file_ids(cfg.val_file, vocab, progress)
        train_ids = ids
        what = f"--val-file {cfg.val_file}"
    elif cfg.val_fraction > 0:
        cut = len(ids) - int(round(len(ids) * cfg.val_fraction))
        train_ids, val_ids = ids[:cut], ids[cut:]
        what = f"the last {cfg.val_fraction:.0%} of the corpus"
    else:
        train_ids, val_ids = ids, None
    train = data_mod.StreamBatcher(train_ids, B, T, "train", 0.0, streams=streams)
    if val_ids is None:
        return train, None, None
    if len(val_ids) < B * (T + 1):
        raise ValueError(
            f"the held-out text ({what}: {len(val_ids)} tokens) is too short "
            f"for one window of seq + 1 = {T + 1} tokens in each of the batch = {B} "
            f"streams (it needs {B * (T + 1)} tokens): "
            + ("give a longer --val-file" if cfg.val_file else
               "raise --val-fraction or use a longer corpus")
            + ", or lower --batch or --seq")
    return train, data_mod.StreamBatcher(val_ids, B, T, "train", 0.0, streams=streams), what
