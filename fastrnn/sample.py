"""Text generation from a checkpoint (``fastrnn sample``), and model evaluation on a text file
(``fastrnn eval``)."""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

import numpy as np

from . import checkpoint as ckpt
from . import data as data_mod
from . import nn
from ._checks import check_beam, check_eval_streams, check_regular_file, check_sampling
from .rundir import resolve  # noqa: F401  (sample.resolve)
from .config import TrainConfig, build_model
from .validation import bits  # noqa: F401  (sample.bits)


PathLike = Union[str, "os.PathLike[str]"]


def load_model(path: PathLike,
               best: bool = False) -> Tuple[nn.CharRNN, data_mod.Vocab, Dict[str, Any]]:
    """-> (model, vocab, tree) from a checkpoint file or run directory (its best checkpoint
    with ``best=True``, see ``resolve``)."""
    path = resolve(path, best)
    tree = ckpt.load_run(path)
    try:
        cfg = TrainConfig(**tree["config"])
        vocab = data_mod.Vocab.from_json(tree["vocab"])
        model = build_model(cfg, vocab.size)
        model.load_state_dict(tree["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise ckpt.CheckpointError(f"{path} is not a usable model checkpoint: {e}") from e
    return model, vocab, tree


def generate(model: nn.CharRNN, vocab: data_mod.Vocab, length: int = 500,
             temperature: float = 1.0, top_k: Optional[int] = None, prime: str = "",
             seed: Optional[int] = None, argmax: bool = False,
             write: Optional[Callable[[str], Any]] = None) -> Optional[str]:
    """Generate ``length`` tokens after ``prime``; returns the text (prime excluded).

    Each token is drawn from softmax(logits / ``temperature``), among the ``top_k`` likeliest
    only if given, or is the likeliest with ``argmax``; ``seed`` makes the draw repeatable
    (without a prime, the first token is drawn at random too). ``write`` (e.g.
    ``sys.stdout.write``) receives each piece as it is produced (streaming); the text is then
    not kept (memory stays bounded for any ``length``) and None is returned."""
    check_sampling(temperature, top_k, length)
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
        if write is None:
            out.append(piece)
        else:
            write(piece)
        token = int(ids[-1])
    return "".join(out) if write is None else None


def stream(model: nn.CharRNN, vocab: data_mod.Vocab, temperature: float = 1.0,
           top_k: Optional[int] = None, prime: str = "", seed: Optional[int] = None,
           argmax: bool = False, chunk: int = 256) -> Iterator[str]:
    """Like ``generate`` without an end: yields the generated text ``chunk`` tokens at a time,
    forever (``fastrnn sample -n 0``); memory stays constant."""
    check_sampling(temperature, top_k)
    rng = np.random.default_rng(seed)
    sampler = model.sampler(batch=1)
    prime_ids = vocab.encode(prime) if prime else np.array([rng.integers(vocab.size)])
    for t in prime_ids[:-1]:
        sampler.step(np.array([t]))
    token = int(prime_ids[-1])
    while True:
        ids = sampler.generate(token, chunk, temperature, top_k or 0, argmax, rng)
        token = int(ids[-1])
        yield vocab.decode(ids)


def _start_token(vocab):
    """Where a beam starts without a prime: a newline (the start of a line) if the vocabulary
    has one, else token 0."""
    try:
        return int(vocab.encode("\n")[0])
    except ValueError:
        return 0


def beam_search(model: nn.CharRNN, vocab: data_mod.Vocab, length: int, beam: int = 5,
                prime: str = "") -> Tuple[str, float]:
    """The likeliest continuation of ``length`` tokens after ``prime`` that beam search finds
    -> (text, log-probability in nats). At every step each of the ``beam`` hypotheses is
    extended by every token and the ``beam`` likeliest (by the sum of log-probabilities under
    the model, temperature 1) are kept; ``beam=1`` is greedy (argmax) decoding, and a beam of
    at least V**(length-1) hypotheses is exhaustive. Deterministic. Without a prime it starts
    after a newline (token 0 if the vocabulary has none)."""
    check_beam(length, beam)
    V = vocab.size
    sampler = model.sampler(batch=beam)
    prime_ids = vocab.encode(prime) if prime else np.array([_start_token(vocab)])
    for t in prime_ids[:-1]:
        sampler.step(np.full(beam, t))
    logits = sampler.step(np.full(beam, prime_ids[-1]))                 # (beam, V)
    scores = np.zeros(beam)                                             # log-probabilities
    seqs = np.zeros((beam, length), np.int64)
    for i in range(length):
        z = logits.astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))          # (beam, V)
        cand = scores[:, None] + logp
        if i == 0:
            cand[1:] = -np.inf                   # the beams are identical copies at first
        flat = np.argsort(-cand, axis=None, kind="stable")[:beam]       # the beam likeliest
        parent, token = np.divmod(flat, V)
        seqs = seqs[parent]
        seqs[:, i] = token
        scores = cand.reshape(-1)[flat]
        state = sampler.state()
        sampler.set_state(tuple(a[:, parent] for a in state) if isinstance(state, tuple)
                          else state[:, parent])
        if i + 1 < length:
            logits = sampler.step(token)
    return vocab.decode(seqs[0]), float(scores[0])


MAX_EVAL_STREAMS = 50          # evaluate_file's default: up to this many streams ...
MIN_EVAL_STREAM = 10_000       # ... of at least this many tokens each
WINDOW_TOKENS = 8192           # tokens (T x B) per forward call of a B-stream evaluation


def eval_streams(n_tokens: int) -> int:
    """``evaluate_file``'s default number of streams for a file of ``n_tokens`` tokens: one per
    ``MIN_EVAL_STREAM`` tokens, at most ``MAX_EVAL_STREAMS`` (1 for short files: exact)."""
    return int(max(1, min(MAX_EVAL_STREAMS, (n_tokens - 1) // MIN_EVAL_STREAM)))


def evaluate_file(model: nn.CharRNN, vocab: data_mod.Vocab, path: PathLike,
                  chunk_tokens: int = 1 << 16, seq: int = 1000,
                  streams: Optional[int] = None) -> Tuple[float, int]:
    """Mean loss (nats/token) of the model on a text file -> (nats, tokens predicted).

    ``streams=1`` is exact: one stream with the state carried across the whole file (the
    file is read ``chunk_tokens`` at a time). ``streams=B > 1`` cuts the file's tokens into B
    contiguous streams evaluated side by side, the state carried within each (every stream
    starts from the zero state, so its first few tokens are predicted without context): B
    times fewer sequential steps, each on a batch of B (in windows of at most ``seq`` steps
    and ``WINDOW_TOKENS`` tokens), and the token ids of the whole file in memory (1-2 bytes
    per token). ``None`` (default): ``eval_streams(tokens)``, i.e. one stream
    per 10,000 tokens, at most 50. Every token but the first is predicted exactly once."""
    check_eval_streams(streams)
    check_regular_file(path)
    if streams == 1:
        return _evaluate_one_stream(model, vocab, path, chunk_tokens, seq)
    ids = [c.astype(vocab.dtype) for c in _file_ids(vocab, path, chunk_tokens)]
    ids = np.concatenate(ids) if ids else np.zeros(0, vocab.dtype)          # (N,)
    n = len(ids) - 1                                                         # predictions
    if n < 1:
        raise ValueError(f"{path} holds fewer than 2 tokens: nothing to evaluate")
    B = min(int(streams or eval_streams(len(ids))), n)
    L, extra = divmod(n, B)                     # streams b < extra predict L + 1 tokens
    starts = np.arange(B) * L + np.minimum(np.arange(B), extra)              # (B,)
    T = max(1, min(seq, WINDOW_TOKENS // B))     # a window's activations stay a few MB
    state, total = None, 0.0
    for s in range(0, L, T):
        idx = starts[None, :] + np.arange(s, min(s + T, L))[:, None]         # (T, B)
        loss, state = model.loss(ids[idx].astype(np.int64), ids[idx + 1].astype(np.int64),
                                 state)
        total += loss * idx.size
    if extra:                                   # the last token of the longer streams
        idx = (starts[:extra] + L)[None, :]                                   # (1, extra)
        parts = [np.ascontiguousarray(a[:, :extra])
                 for a in (state if isinstance(state, tuple) else (state,))]
        part = tuple(parts) if isinstance(state, tuple) else parts[0]
        loss, _ = model.loss(ids[idx].astype(np.int64), ids[idx + 1].astype(np.int64), part)
        total += loss * extra
    return total / n, n


def _evaluate_one_stream(model, vocab, path, chunk_tokens, seq):
    """The exact evaluation: one stream, the state carried across the whole file."""
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
