"""Corpus -> token ids: vocabulary, the on-disk id cache, the default corpus and batching.

The path of a text through the trainer::

    text file --load_corpus--> Corpus.ids (N,) uint8/uint16 memmap
              --StreamBatcher--> x, y (T, B) int64 windows, y the next token of x

``load_corpus(path, mode)`` never holds the corpus as one Python string. It reads the file in
blocks of a few MiB, twice:

1. *scan*: hash the bytes (blake2b), check them (UTF-8, no NUL bytes in char mode), count the
   tokens and mark which symbols occur (a boolean table indexed by byte or code point);
2. *encode*: map every symbol through a dense lookup table (symbol -> id) and append the ids to
   a ``.npy`` file.

The result is cached beside the corpus, in ``<corpus>.fastrnn-cache/<mode>/``::

    ids.npy      the token ids, uint8 when the vocabulary has <= 256 symbols, else uint16
    vocab.json   Vocab.to_json()
    meta.json    corpus size, mtime_ns, ctime_ns, inode and blake2b hash, mode, token count,
                 vocabulary size

and reused while the corpus is unchanged: same size, mtime, inode change time and inode, or
same size and same hash (a ``touch`` or a copy does not force a re-encode; a file rewritten
with its mtime set back by ``os.utime`` does, as ``utime`` sets the change time). A cache
whose ids fall outside its vocabulary is reported as damaged, with the command to rebuild
it. If that folder cannot be written the cache goes to ``<cache root>/<hash of the corpus's
absolute path>/<mode>/``; ``cache_dir=`` puts it exactly in ``<cache_dir>/<mode>/``. The cache
root is ``$FASTRNN_CACHE`` if set, else ``$XDG_CACHE_HOME/fastrnn``, else ``~/.cache/fastrnn``.

Every file is written under a temporary name and moved into place with ``os.replace``, and
``meta.json`` (the file that makes a cache valid) is removed before and written after the
others, so an encode killed at any point leaves no cache that looks valid.

Token ids follow the symbol order: in char mode the vocabulary is the sorted list of the
distinct characters (code points) of the corpus, in byte mode the sorted list of the distinct
byte values, and the id of a symbol is its index in that list.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import math
import os
import stat
import sys
import tempfile
from typing import Any, Dict, Iterable, Iterator, Optional, Tuple, Union

import numpy as np
from tqdm import tqdm

MODES = ("char", "byte")
MAX_VOCAB = 65535              # ids are stored as uint16
_N_CODEPOINTS = 0x110000
_CHUNK = 1 << 20               # bytes per block: bounds the memory of an encode (measured
                               # as fast as 4-16 MiB blocks, and far smaller)
_CACHE_FORMAT = "fastrnn-corpus-cache"
_VOCAB_FORMAT = "fastrnn-vocab"
_VERSION = 1
_DEFAULT_CORPUS_BYTES = 1_500_000
_DEFAULT_CORPUS_SKIP = {"this.py"}    # ROT13 text, not Python


# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Corpus loading and the id cache
# ---------------------------------------------------------------------------------------------

class Corpus:
    """An encoded corpus: ``ids`` is a read-only memmap of the cached ``ids.npy``."""

    def __init__(self, path, vocab, ids, cache_dir, meta):
        self.path = path             # absolute path of the text file
        self.vocab = vocab
        self.ids = ids               # (N,) vocab.dtype, read-only memmap
        self.cache_dir = cache_dir   # the folder holding ids.npy, vocab.json, meta.json
        self.meta = meta

    @property
    def ids_path(self):
        return os.path.join(self.cache_dir, "ids.npy")

    def __len__(self):
        return len(self.ids)

    def __repr__(self):
        return (f"Corpus({self.path!r}, mode={self.vocab.mode!r}, tokens={len(self)}, "
                f"vocab={self.vocab.size})")


def cache_root() -> str:
    """``$FASTRNN_CACHE``, else ``$XDG_CACHE_HOME/fastrnn``, else ``~/.cache/fastrnn``."""
    if os.environ.get("FASTRNN_CACHE"):
        return os.path.abspath(os.path.expanduser(os.environ["FASTRNN_CACHE"]))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fastrnn")


def load_corpus(path: Union[str, "os.PathLike[str]"], mode: str = "char",
                cache_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
                progress: bool = True) -> Corpus:
    """Token ids of the text file ``path``, encoded once and cached (see the module docstring).

    mode: ``"char"`` (the file must be UTF-8; one token per character) or ``"byte"`` (any
    file; one token per byte). ``cache_dir``: folder for the cache (default: beside the
    corpus, or under the cache root if that is not writable). ``progress``: show a tqdm bar
    on stderr while scanning and encoding.
    """
    _check_mode(mode)
    path = os.path.abspath(os.fspath(path))
    st = _stat_corpus(path)
    candidates = _cache_candidates(path, mode, cache_dir)

    file_hash = []          # computed at most once, only if some cache needs it

    def current_hash():
        if not file_hash:
            file_hash.append(_hash_file(path, st.st_size, progress))
        return file_hash[0]

    for cdir in candidates:
        corpus = _load_cached(cdir, path, mode, st, current_hash)
        if corpus is not None:
            return corpus
    for cdir in candidates:
        if _writable_dir(cdir):
            return _encode(path, mode, cdir, st, progress)
    hint = ("pass a writable cache_dir" if cache_dir is not None
            else "set FASTRNN_CACHE to a writable folder or pass cache_dir")
    raise PermissionError(f"no writable folder for the token cache of {path}: tried "
                          f"{', '.join(candidates)}; {hint}")


def _stat_corpus(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"corpus not found: {path} (check the path; with no corpus "
                                "the trainer uses the embedded default)")
    if os.path.isdir(path):
        raise IsADirectoryError(f"corpus {path} is a directory; give one text file (to train "
                                "on several files, concatenate them: cat dir/*.txt > corpus.txt)")
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise ValueError(f"corpus {path} is not a regular file (a pipe or device?); save the "
                         "text to a file first")
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            f.read(1)
    except PermissionError:
        raise PermissionError(f"corpus {path} is not readable (permission denied); fix its "
                              f"permissions (chmod +r) or copy it somewhere readable") from None
    if st.st_size == 0:
        raise ValueError(f"corpus {path} is empty (0 bytes); give a text file with some text "
                         "in it (a few kB at least)")
    return st


def _cache_candidates(path, mode, cache_dir):
    if cache_dir is not None:
        return [os.path.join(os.path.abspath(os.fspath(cache_dir)), mode)]
    key = hashlib.blake2b(os.fsencode(path), digest_size=10).hexdigest()
    return [os.path.join(path + ".fastrnn-cache", mode),
            os.path.join(cache_root(), key, mode)]


def _writable_dir(d):
    try:
        os.makedirs(d, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", dir=d)
        os.close(fd)
        os.remove(probe)
        return True
    except OSError:
        return False


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        return d if isinstance(d, dict) else None
    except (OSError, ValueError):
        return None


def _load_cached(cdir, path, mode, st, current_hash):
    """The cached Corpus in ``cdir`` if it is complete and matches the corpus, else None."""
    meta = _read_json(os.path.join(cdir, "meta.json"))
    if (meta is None or meta.get("format") != _CACHE_FORMAT or meta.get("version") != _VERSION
            or meta.get("mode") != mode or meta.get("size") != st.st_size):
        return None
    if [meta.get(k) for k in _STAT_KEY] != _stat_key(st):
        # changed, touched, copied or rewritten in place with its mtime set back (os.utime
        # cannot set the inode change time back): trust the content hash alone
        if meta.get("blake2b") != current_hash():
            return None
        meta = dict(meta, **dict(zip(_STAT_KEY, _stat_key(st))))   # same content: remember it
        try:
            _atomic_write(os.path.join(cdir, "meta.json"), _json_bytes(meta))
        except OSError:
            pass                                            # read-only cache: hash again next time
    d = _read_json(os.path.join(cdir, "vocab.json"))
    try:
        vocab = Vocab.from_json(d)
        ids = np.load(os.path.join(cdir, "ids.npy"), mmap_mode="r")
    except (OSError, ValueError):
        return None
    if (vocab.mode != mode or vocab.size != meta.get("vocab_size") or ids.ndim != 1
            or ids.dtype != vocab.dtype or len(ids) != meta.get("n_tokens")):
        return None
    top = max((int(ids[i:i + _CHUNK].max()) for i in range(0, len(ids), _CHUNK)), default=0)
    if top >= vocab.size:
        raise ValueError(f"the token cache {cdir} of corpus {path} is damaged: its ids.npy "
                         f"holds the id {top}, outside the vocabulary of {vocab.size} symbols. "
                         f"Delete the cache to rebuild it from the corpus: rm -r '{cdir}'")
    return Corpus(path, vocab, ids, cdir, meta)


# the corpus file's identity in the cache key: any change of content changes one of them
# (st_ctime_ns too when the mtime is set back with os.utime; st_ino when the file is replaced)
_STAT_KEY = ("size", "mtime_ns", "ctime_ns", "inode")


def _stat_key(st):
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _hash_file(path, size, progress):
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as f, _bar(size, "fastrnn: hashing", path, progress) as bar:
        for block in _blocks(f):
            h.update(block)
            bar.update(len(block))
    return h.hexdigest()


def _bar(total, what, path, progress):
    return tqdm(total=total, desc=f"{what} {os.path.basename(path)}", unit="B",
                unit_scale=True, unit_divisor=1024, file=sys.stderr, disable=not progress,
                leave=False)


def _blocks(f, chunk=None):
    """Consecutive blocks of the open binary file ``f`` as memoryviews of one reused buffer
    (each is valid until the next one is requested)."""
    buf = memoryview(bytearray(chunk or _CHUNK))
    while True:
        n = f.readinto(buf)
        if not n:
            return
        yield buf[:n]


def _utf8_pieces(f, path, check_nul):
    """Decode the open file ``f`` as UTF-8 in blocks split at character boundaries.

    Yields ``(raw, text)``: ``raw`` a memoryview of whole characters (the incomplete character
    at the end of a block is carried to the next one), ``text`` its decoding. Raises a
    ``ValueError`` with the file offset of the first invalid byte (or NUL byte)."""
    buf = bytearray(_CHUNK + 4)
    mv = memoryview(buf)
    carry = 0               # bytes of an incomplete character at the start of buf
    offset = 0              # file offset of buf[0]
    while True:
        n = f.readinto(mv[carry:carry + _CHUNK])
        end = carry + n
        nul = buf.find(b"\0", 0, end) if check_nul else -1
        try:
            text, used = codecs.utf_8_decode(mv[:end], "strict", n == 0)
        except UnicodeDecodeError as e:
            if 0 <= nul < e.start:
                raise _nul_error(path, offset + nul) from None
            raise _utf8_error(path, offset, bytes(mv[:end]), e) from None
        if nul >= 0:
            raise _nul_error(path, offset + nul)
        if n == 0:
            return
        if used:
            yield mv[:used], text
        del text                # free this piece before decoding the next one
        buf[:end - used] = buf[used:end]
        carry = end - used
        offset += used


def _utf8_error(path, offset, data, e):
    at = offset + e.start
    context = data[max(0, e.start - 10):e.start + 10]
    return ValueError(
        f"corpus {path} is not valid UTF-8: {e.reason} at byte offset {at} (near {context!r}). "
        "Convert it to UTF-8 (e.g. iconv -f latin1 -t utf-8), or train on raw bytes with "
        "--byte (mode='byte'), which accepts any file")


def _nul_error(path, at):
    return ValueError(
        f"corpus {path} looks binary: NUL byte at byte offset {at}, which a text file does not "
        "contain (a UTF-16 text or a non-text file?). Char mode needs UTF-8 text; train on raw "
        "bytes with --byte (mode='byte'), or convert the text to UTF-8")


def _symbols(raw, text):
    """(n,) code points of one decoded piece: the raw bytes themselves when it is ASCII."""
    if text.isascii():
        return np.frombuffer(raw, np.uint8)
    return np.frombuffer(text.encode("utf-32-le"), np.uint32)


def _encode(path, mode, cdir, st, progress):
    """Scan and encode the corpus into ``cdir``; returns the Corpus."""
    _remove_stale_temps(cdir)
    try:
        os.remove(os.path.join(cdir, "meta.json"))      # invalid from here on until rewritten
    except FileNotFoundError:
        pass

    # pass 1: hash, validate, count, find the symbols present
    h = hashlib.blake2b(digest_size=32)
    seen = np.zeros(256 if mode == "byte" else _N_CODEPOINTS, bool)   # symbol -> present
    n_tokens = 0
    with open(path, "rb") as f, _bar(st.st_size, "fastrnn: scanning", path, progress) as bar:
        if mode == "byte":
            for block in _blocks(f):
                h.update(block)
                seen[np.frombuffer(block, np.uint8)] = True
                n_tokens += len(block)
                bar.update(len(block))
        else:
            for raw, text in _utf8_pieces(f, path, check_nul=True):
                h.update(raw)
                seen[_symbols(raw, text)] = True
                n_tokens += len(text)
                bar.update(len(raw))
                del raw, text   # the generator decodes the next piece: keep one in memory
    codes = np.flatnonzero(seen)
    if len(codes) > MAX_VOCAB:
        raise ValueError(f"corpus {path} has {len(codes)} distinct characters; char mode "
                         f"supports at most {MAX_VOCAB} (ids are uint16). Train on bytes with "
                         "--byte (mode='byte', at most 256 symbols)")
    if mode == "char":
        vocab = Vocab([chr(c) for c in codes.tolist()], "char")
    else:
        vocab = Vocab(codes.tolist(), "byte")
    lut = np.zeros(len(seen), vocab.dtype)                            # symbol -> id
    lut[codes] = np.arange(len(codes))

    # pass 2: symbols -> ids, appended to ids.npy (plain writes, not a writable memmap: every
    # page written through a shared mapping would count in the RSS until it is unmapped)
    ids_path = os.path.join(cdir, "ids.npy")
    tmp = _temp_path(ids_path)
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=vocab.dtype, shape=(n_tokens,))
        header = out.offset                      # the .npy header; the data follows
        del out
        written = 0
        with open(path, "rb") as f, open(tmp, "r+b") as g, \
                _bar(st.st_size, "fastrnn: encoding", path, progress) as bar:
            g.seek(header)
            if mode == "byte":
                pieces = ((block, None) for block in _blocks(f))
            else:
                pieces = _utf8_pieces(f, path, check_nul=False)
            for raw, text in pieces:
                ids = lut[np.frombuffer(raw, np.uint8) if text is None else _symbols(raw, text)]
                written += len(ids)
                if written <= n_tokens:
                    g.write(ids)
                bar.update(len(raw))
                del raw, text, ids
            g.flush()
            os.fsync(g.fileno())
        st2 = os.stat(path)
        if written != n_tokens or _stat_key(st2) != _stat_key(st):
            raise RuntimeError(f"corpus {path} changed while it was being encoded; run again "
                               "once nothing is writing to it")
        os.replace(tmp, ids_path)
    except BaseException:
        _remove(tmp)
        raise
    _atomic_write(os.path.join(cdir, "vocab.json"), _json_bytes(vocab.to_json()))
    meta = {"format": _CACHE_FORMAT, "version": _VERSION, "mode": mode, "corpus": path,
            **dict(zip(_STAT_KEY, _stat_key(st))), "blake2b": h.hexdigest(),
            "n_tokens": n_tokens, "vocab_size": vocab.size,
            "dtype": np.dtype(vocab.dtype).name}
    _atomic_write(os.path.join(cdir, "meta.json"), _json_bytes(meta))    # last: now valid
    return Corpus(path, vocab, np.load(ids_path, mmap_mode="r"), cdir, meta)


def _json_bytes(obj):
    return (json.dumps(obj, indent=1) + "\n").encode("utf-8")


def _temp_path(path):
    """A new empty file beside ``path`` named ``<name>.<pid>.<random>.tmp``."""
    d, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{name}.{os.getpid()}.", suffix=".tmp", dir=d)
    os.close(fd)
    return tmp


def _atomic_write(path, data):
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    tmp = _temp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _remove_stale_temps(d):
    """Delete temporary files left in ``d`` by processes (of this machine) that no longer run,
    e.g. an encode that was killed."""
    try:
        names = os.listdir(d)
    except OSError:
        return
    for name in names:
        parts = name.split(".")
        if name.endswith(".tmp") and len(parts) >= 4 and parts[-3].isdigit():
            pid = int(parts[-3])
            if pid == os.getpid():
                continue
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                _remove(os.path.join(d, name))
            except OSError:
                pass                                     # alive (owned by someone else)


# ---------------------------------------------------------------------------------------------
# The embedded default corpus
# ---------------------------------------------------------------------------------------------

def default_corpus_path(cache_dir: Optional[Union[str, "os.PathLike[str]"]] = None) -> str:
    """Path of the default corpus, a text file that needs no download.

    It is the source of the top-level modules of this Python's standard library
    (``sysconfig.get_paths()["stdlib"]/*.py``, private ``_*.py`` modules and ``this.py``
    skipped), in name order, each after a ``# ==== name.py ====`` line, until 1.5 MB are
    reached (about 1.5 MB of Python from ``abc.py`` on; line endings normalised to ``\\n``).
    It is written once, atomically, to ``stdlib-py<version>.txt`` in ``cache_dir`` (default:
    the cache root, ``$FASTRNN_CACHE`` or ``~/.cache/fastrnn``); later calls return the
    existing file. Its token cache lands beside it, like any corpus.
    """
    import platform
    import sysconfig

    root = os.path.abspath(os.fspath(cache_dir)) if cache_dir is not None else cache_root()
    path = os.path.join(root, f"stdlib-py{platform.python_version()}.txt")
    if os.path.isfile(path):
        return path                              # written atomically: present means complete
    stdlib = sysconfig.get_paths()["stdlib"]
    try:
        names = sorted(n for n in os.listdir(stdlib) if n.endswith(".py")
                       and not n.startswith("_") and n not in _DEFAULT_CORPUS_SKIP)
    except OSError:
        names = []
    parts, total = [], 0
    for name in names:
        try:
            with open(os.path.join(stdlib, name), "rb") as f:
                src = f.read().replace(b"\r\n", b"\n")
            src.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        part = f"# ==== {name} ====\n".encode() + src.rstrip(b"\n") + b"\n\n"
        parts.append(part)
        total += len(part)
        if total >= _DEFAULT_CORPUS_BYTES:
            break
    if total < 100_000:
        raise FileNotFoundError(f"the default corpus is built from the Python standard library "
                                f"sources, but {stdlib} holds too few .py files; pass a corpus "
                                "file instead")
    os.makedirs(root, exist_ok=True)
    _atomic_write(path, b"".join(parts))
    return path


# ---------------------------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------------------------

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
