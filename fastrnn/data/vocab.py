"""The vocabulary: symbols (characters or byte values) <-> token ids, and its JSON form."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Union

import numpy as np

MODES = ("char", "byte")
MAX_VOCAB = 65535              # ids are stored as uint16
_VOCAB_FORMAT = "fastrnn-vocab"
_VERSION = 1


class Vocab:
    """The symbols of a corpus and their ids (the index in ``tokens``).

    ``Vocab(tokens, mode="char")``: ``tokens`` are one-character strings sorted by code point
    (char mode) or the byte values 0..255 present, sorted (byte mode); no duplicates.
    """

    def __init__(self, tokens: Iterable[Union[str, int]], mode: str = "char") -> None:
        self.mode = _check_mode(mode)
        if isinstance(tokens, (str, bytes)) or not hasattr(tokens, "__iter__"):
            raise TypeError(f"tokens must be a list of symbols, got {type(tokens).__name__}")
        tokens = list(tokens)
        if not 1 <= len(tokens) <= MAX_VOCAB:
            raise ValueError(f"a vocabulary must have 1 to {MAX_VOCAB} symbols, got {len(tokens)}")
        if mode == "char":
            bad = [t for t in tokens if not (isinstance(t, str) and len(t) == 1)]
            if bad:
                raise ValueError(f"char-mode tokens must be one-character strings, got {bad[0]!r}")
            codes = np.fromiter((ord(t) for t in tokens), np.int64, len(tokens))
        else:
            bad = [t for t in tokens if isinstance(t, bool) or not isinstance(t, (int, np.integer))
                   or not 0 <= t <= 255]
            if bad:
                raise ValueError(f"byte-mode tokens must be ints in [0, 255], got {bad[0]!r}")
            tokens = [int(t) for t in tokens]
            codes = np.array(tokens, np.int64)
        if np.any(np.diff(codes) <= 0):
            i = int(np.flatnonzero(np.diff(codes) <= 0)[0])
            raise ValueError(f"{mode}-mode tokens must be sorted (by code point) without "
                             f"duplicates, got {tokens[i]!r} before {tokens[i + 1]!r}")
        self.tokens = tokens
        self._codes = codes            # (V,) code point or byte value of each id
        self._lut_cache = None

    @property
    def size(self) -> int:
        return len(self.tokens)

    @property
    def dtype(self) -> type:
        """The smallest unsigned dtype holding every id: ``np.uint8`` or ``np.uint16``."""
        return np.uint8 if self.size <= 256 else np.uint16

    def __len__(self):
        return self.size

    def __eq__(self, other):
        return isinstance(other, Vocab) and (self.mode, self.tokens) == (other.mode, other.tokens)

    def __repr__(self):
        return f"Vocab(mode={self.mode!r}, size={self.size})"

    def _lut(self):
        """(max symbol + 1,) int32 table: symbol -> id, -1 for symbols not in the vocabulary."""
        if self._lut_cache is None:
            lut = np.full(int(self._codes[-1]) + 1, -1, np.int32)
            lut[self._codes] = np.arange(self.size, dtype=np.int32)
            self._lut_cache = lut
        return self._lut_cache

    def encode(self, text: Union[str, bytes]) -> np.ndarray:
        """``text`` (str) -> (len,) int64 ids. In byte mode ``text`` is encoded as UTF-8 (raw
        ``bytes`` are accepted too). Raises ``ValueError`` naming the characters that are not
        in the vocabulary."""
        if self.mode == "byte" and isinstance(text, (bytes, bytearray, memoryview)):
            symbols = np.frombuffer(text, np.uint8)
        elif not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        elif self.mode == "byte":
            symbols = np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8)
        else:
            symbols = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
        lut = self._lut()
        ids = np.full(symbols.shape, -1, np.int64)
        inside = symbols < lut.size
        ids[inside] = lut[symbols[inside]]
        if (ids < 0).any():
            raise ValueError(self._unknown_message(text, symbols[ids < 0]))
        return ids

    def _unknown_message(self, text, bad_symbols):
        if self.mode == "char":
            unknown = sorted({chr(c) for c in bad_symbols.tolist()})
        elif isinstance(text, str):
            bad = set(bad_symbols.tolist())
            unknown = sorted({ch for ch in set(text)
                              if bad.intersection(ch.encode("utf-8", "surrogatepass"))})
        else:
            unknown = [bytes([b]) for b in sorted(set(bad_symbols.tolist()))]
        shown = ", ".join(repr(u) for u in unknown[:30])
        more = f" and {len(unknown) - 30} more" if len(unknown) > 30 else ""
        what = "characters" if self.mode == "char" or isinstance(text, str) else "bytes"
        return (f"{len(unknown)} {what} not in the training vocabulary ({self.mode} mode, "
                f"{self.size} symbols): {shown}{more}; remove or replace them")

    def decode(self, ids: Any) -> str:
        """ids (any integer array-like, or one int) -> str. Byte mode decodes the bytes as
        UTF-8 with ``errors="replace"`` (a cut multi-byte character becomes U+FFFD)."""
        ids = np.asarray(ids)
        if ids.size == 0:
            return ""
        if not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"ids must be integers, got dtype {ids.dtype}")
        if ids.ndim > 1:
            raise ValueError(f"ids must be 1-D, got shape {ids.shape}")
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= self.size:
            raise ValueError(f"ids must lie in [0, {self.size}) (the vocabulary), got values "
                             f"in [{lo}, {hi}]")
        symbols = self._codes[ids.reshape(-1)]
        if self.mode == "byte":
            return symbols.astype(np.uint8).tobytes().decode("utf-8", "replace")
        return symbols.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")

    def to_json(self) -> Dict[str, Any]:
        return {"format": _VOCAB_FORMAT, "version": _VERSION, "mode": self.mode,
                "tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> Vocab:
        """The inverse of ``to_json``; raises ``ValueError`` on anything malformed."""
        if not isinstance(d, dict):
            raise ValueError(f"a vocabulary must be a JSON object (dict), got {type(d).__name__}")
        if d.get("format", _VOCAB_FORMAT) != _VOCAB_FORMAT:
            raise ValueError(f"not a fastrnn vocabulary: format is {d.get('format')!r}, "
                             f"expected {_VOCAB_FORMAT!r}")
        version = d.get("version", _VERSION)
        if isinstance(version, bool) or not isinstance(version, int) or version > _VERSION:
            raise ValueError(f"vocabulary version {version!r} is not supported (this fastrnn "
                             f"reads version <= {_VERSION}); upgrade fastrnn")
        missing = [k for k in ("mode", "tokens") if k not in d]
        if missing:
            raise ValueError(f"vocabulary is missing the key(s) {missing}; it must have "
                             "'mode' ('char' or 'byte') and 'tokens' (a list)")
        if not isinstance(d["tokens"], list):
            raise ValueError(f"vocabulary 'tokens' must be a list, got "
                             f"{type(d['tokens']).__name__}")
        try:
            return cls(d["tokens"], mode=d["mode"])
        except TypeError as e:
            raise ValueError(f"malformed vocabulary: {e}") from None


def _check_mode(mode):
    if mode not in MODES:
        raise ValueError(f"mode must be 'char' (UTF-8 characters) or 'byte', got {mode!r}")
    return mode
