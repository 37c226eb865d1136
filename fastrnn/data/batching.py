"""char-rnn batching of token ids: ``StreamBatcher`` (parallel streams, consecutive windows,
a held-out tail of every stream)."""

from __future__ import annotations

import math
from typing import Any, Dict, Iterator, Optional, Tuple, Union

import numpy as np

from .cache import Corpus


def _split_lengths(stream_len, val_fraction):
    """(train, val) lengths of one stream: val = round(stream_len * val_fraction)."""
    n_val = int(math.floor(stream_len * val_fraction + 0.5))
    return stream_len - n_val, n_val


def _min_stream_len(seq, val_fraction, split):
    """The shortest stream whose ``split`` part holds one window (seq + 1 tokens)."""
    k = 0 if split == "train" else 1
    need = seq + 1
    frac = (1 - val_fraction) if split == "train" else val_fraction
    n = max(need, int((need - 0.5) / frac) - 1)      # a lower bound: part <= n * frac + 0.5
    while _split_lengths(n, val_fraction)[k] < need:   # both lengths grow monotonically with n
        n += 1
    return n


class StreamBatcher:
    """char-rnn batching: ``batch`` parallel streams, consecutive windows of ``seq`` tokens.

    The ids (N,) are cut into ``batch`` contiguous streams of ``L = N // batch`` tokens
    (the last ``N % batch`` tokens are dropped). The last ``round(L * val_fraction)`` tokens
    of every stream are its validation part, the rest its training part; ``split`` picks one.
    Window ``k`` holds, for every stream ``b``, the tokens at ``k*seq .. k*seq + seq`` of that
    part: ``x = tokens[:-1]``, ``y = tokens[1:]`` (the next token), both (seq, batch) int64.
    So window ``k + 1`` of stream ``b`` continues where window ``k`` ended, and the hidden
    state after ``x`` is the right initial state for the next window (stateful training).
    An epoch is ``batches_per_epoch = (part_len - 1) // seq`` windows; every token of a part
    (except a tail shorter than ``seq``) is an ``x`` position exactly once per epoch.

    ``epoch`` and ``position`` point at the NEXT window; ``next_batch()`` returns it, sets
    ``new_epoch`` (True if it is window 0: reset the hidden state before it) and advances,
    moving on to the next epoch after the last window. Iterating yields the rest of the
    current epoch. ``ids`` may be a memmap: each window is sliced from it, never the stream.

    ``streams=(lo, hi)`` reads only streams ``lo .. hi - 1`` of the ``batch`` (the share of
    one data-parallel rank, see ``fastrnn.dist``): windows are then (seq, hi - lo), the
    columns ``lo:hi`` of the whole batch's; epochs, positions and ``state_dict`` stay those of
    the whole batch, so a state saved with any share loads with any other.
    """

    def __init__(self, ids: Union[np.ndarray, Corpus], batch: int, seq: int,
                 split: str = "train", val_fraction: float = 0.05,
                 streams: Optional[Tuple[int, int]] = None) -> None:
        if isinstance(ids, Corpus):
            ids = ids.ids
        if not isinstance(ids, np.ndarray) or not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"ids must be an integer numpy array (e.g. Corpus.ids), got "
                            f"{getattr(ids, 'dtype', type(ids).__name__)}")
        if ids.ndim != 1:
            raise ValueError(f"ids must be 1-D (the token stream), got shape {ids.shape}")
        for name, v in (("batch", batch), ("seq", seq)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name} must be an int >= 1, got {v!r}")
            if v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) \
                or not 0 <= val_fraction < 0.5:
            raise ValueError(f"val_fraction must be a number in [0, 0.5), got {val_fraction!r}")
        if split == "val" and val_fraction == 0:
            raise ValueError("split='val' needs val_fraction > 0 (val_fraction=0 leaves no "
                             "validation data)")
        self.batch, self.seq = int(batch), int(seq)
        self.split, self.val_fraction = split, float(val_fraction)
        self.n_tokens = len(ids)
        self.stream_len = self.n_tokens // self.batch
        n_train, n_val = _split_lengths(self.stream_len, self.val_fraction)
        self.start, self.part_len = (0, n_train) if split == "train" else (n_train, n_val)
        if self.part_len < self.seq + 1:
            min_len = _min_stream_len(self.seq, self.val_fraction, split)
            formula = ("batch * (seq + 1) / (1 - val_fraction)" if split == "train"
                       else "batch * (seq + 1) / val_fraction")
            raise ValueError(
                f"corpus too short for split={split!r}: {self.n_tokens} tokens in batch="
                f"{self.batch} streams give {self.stream_len} tokens per stream, {self.part_len}"
                f" of them {split}, but one window needs seq + 1 = {self.seq + 1}. It needs at "
                f"least {self.batch * min_len} tokens (about {formula}); use a longer corpus "
                "or a smaller batch or seq")
        self.batches_per_epoch = (self.part_len - 1) // self.seq
        lo, hi = (0, self.batch) if streams is None else streams
        if not (isinstance(lo, (int, np.integer)) and isinstance(hi, (int, np.integer))
                and 0 <= lo < hi <= self.batch):
            raise ValueError(f"streams must be (lo, hi) with 0 <= lo < hi <= batch={self.batch}"
                             f", got {streams!r}")
        self.streams = (int(lo), int(hi))
        self._streams = np.asarray(ids)[:self.batch * self.stream_len].reshape(
            self.batch, self.stream_len)            # (B, L) view, no copy
        self.reset()

    def reset(self) -> None:
        """Back to window 0 of epoch 0."""
        self.epoch = 0
        self.position = 0
        self.new_epoch = False

    def batch_at(self, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """Window ``k`` of an epoch as ``(x, y)``, both (seq, batch) int64 (no state change;
        (seq, hi - lo) with ``streams``)."""
        if not 0 <= k < self.batches_per_epoch:
            raise IndexError(f"window index must be in [0, {self.batches_per_epoch}), got {k}")
        a = self.start + k * self.seq
        lo, hi = self.streams
        window = self._streams[lo:hi, a:a + self.seq + 1]      # (B, seq + 1), a small slice
        x = window[:, :-1].T.astype(np.int64, order="C")       # (seq, B)
        y = window[:, 1:].T.astype(np.int64, order="C")        # (seq, B)
        return x, y

    def next_batch(self) -> Tuple[np.ndarray, np.ndarray]:
        x, y = self.batch_at(self.position)
        self.new_epoch = self.position == 0
        self.position += 1
        if self.position == self.batches_per_epoch:
            self.position = 0
            self.epoch += 1
        return x, y

    def __iter__(self) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """The windows left in the current epoch (all of them when ``position == 0``)."""
        epoch = self.epoch
        while self.epoch == epoch:
            yield self.next_batch()

    def _config(self):
        return {"batch": self.batch, "seq": self.seq, "split": self.split,
                "val_fraction": self.val_fraction, "n_tokens": self.n_tokens}

    def state_dict(self) -> Dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, **self._config()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continue exactly where ``state_dict()`` was taken (same data and settings)."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from state_dict(), got {type(state).__name__}")
        missing = [k for k in ("epoch", "position") if k not in state]
        if missing:
            raise ValueError(f"batcher state is missing {missing}")
        differ = {k: (state[k], v) for k, v in self._config().items()
                  if k in state and state[k] != v}
        if differ:
            detail = ", ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in differ.items())
            raise ValueError(f"batcher state was saved with other settings ({detail}); resume "
                             "with the same corpus, batch, seq and val_fraction")
        epoch, position = state["epoch"], state["position"]
        for name, v, hi in (("epoch", epoch, None), ("position", position,
                                                     self.batches_per_epoch)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 \
                    or (hi is not None and v >= hi):
                bound = f"[0, {hi})" if hi is not None else ">= 0"
                raise ValueError(f"batcher state {name} must be an int in {bound}, got {v!r}")
        self.epoch, self.position = int(epoch), int(position)
        self.new_epoch = False
