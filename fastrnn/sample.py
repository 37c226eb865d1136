"""Text generation from a checkpoint (``fastrnn sample``), and model evaluation on a text file
(``fastrnn eval``)."""

import math
import os
import stat

import numpy as np

from . import checkpoint as ckpt
from . import data as data_mod
from .train import CHECKPOINT, TrainConfig, build_model


def resolve(path):
    """A checkpoint file, or a run directory holding one (e.g. ``runs/latest``)."""
    if os.path.isdir(path):
        inner = os.path.join(path, CHECKPOINT)
        if not os.path.exists(inner):
            raise FileNotFoundError(f"{path} is a directory without a {CHECKPOINT}")
        return inner
    if os.path.isfile(path):                       # a regular file: is it a zip (.npz) at all?
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise ckpt.CheckpointError(
                f"{path} is not a fastrnn checkpoint (fastrnn train writes them as .npz files, "
                f"e.g. runs/NAME/{CHECKPOINT}; give that file or its run directory)")
    return path


def load_model(path):
    """-> (model, vocab, tree) from a checkpoint file or run directory."""
    path = resolve(path)
    tree = ckpt.load_run(path)
    try:
        cfg = TrainConfig(**tree["config"])
        vocab = data_mod.Vocab.from_json(tree["vocab"])
        model = build_model(cfg, vocab.size)
        model.load_state_dict(tree["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise ckpt.CheckpointError(f"{path} is not a usable model checkpoint: {e}") from e
    return model, vocab, tree


def generate(model, vocab, length=500, temperature=1.0, top_k=None, prime="", seed=None,
             argmax=False, write=None):
    """Generate ``length`` tokens after ``prime``; returns the text (prime excluded). ``write``
    (e.g. ``sys.stdout.write``) receives each piece as it is produced (streaming)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k is not None and not 1 <= top_k:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    rng = np.random.default_rng(seed)
    sampler = model.sampler(batch=1)
    prime_ids = vocab.encode(prime) if prime else np.zeros(0, np.int64)
    if len(prime_ids) == 0:
        prime_ids = np.array([rng.integers(vocab.size)])
    for t in prime_ids[:-1]:
        sampler.step(np.array([t]))
    token, out, chunk = int(prime_ids[-1]), [], 64
    for start in range(0, length, chunk):
        ids = sampler.generate(token, min(chunk, length - start), temperature, top_k or 0,
                               argmax, rng)
        piece = vocab.decode(ids)
        out.append(piece)
        if write is not None:
            write(piece)
        token = int(ids[-1])
    return "".join(out)


def evaluate_file(model, vocab, path, chunk_tokens=1 << 16, seq=1000):
    """Mean loss (nats/token) of the model on a text file, read in chunks, with the state
    carried across the whole file as in training. -> (nats, tokens)."""
    if not stat.S_ISREG(os.stat(path).st_mode):           # a FIFO would block forever
        raise ValueError(f"{path} is not a regular file (a pipe or device?); save the text to "
                         "a file first")
    state, total, n = None, 0.0, 0
    prev = None
    for ids in _file_ids(vocab, path, chunk_tokens):
        if prev is not None:
            ids = np.concatenate([prev, ids])
        for s in range(0, len(ids) - 1, seq):
            x = ids[s:s + seq + 1]
            if len(x) < 2:
                break
            loss, state = model.loss(x[:-1, None], x[1:, None], state)
            total += loss * (len(x) - 1)
            n += len(x) - 1
        prev = ids[-1:]
    if n == 0:
        raise ValueError(f"{path} holds fewer than 2 tokens: nothing to evaluate")
    return total / n, n


def _file_ids(vocab, path, chunk):
    """Token ids of a text file, ``chunk`` characters (or bytes) at a time."""
    if vocab.mode == "char":
        with open(path, encoding="utf-8") as f:
            while True:
                text = f.read(chunk)
                if not text:
                    return
                yield vocab.encode(text).astype(np.int64)
    lut = np.full(256, -1, np.int64)
    lut[np.array(vocab.tokens, np.int64)] = np.arange(vocab.size)
    with open(path, "rb") as f:
        while True:
            raw = f.read(chunk)
            if not raw:
                return
            ids = lut[np.frombuffer(raw, np.uint8)]
            if ids.min() < 0:
                bad = sorted(set(np.frombuffer(raw, np.uint8)[ids < 0].tolist()))
                raise ValueError(f"{path} holds bytes not in the model's vocabulary: {bad[:20]}")
            yield ids


def bits(nats):
    return nats / math.log(2)
