"""Corpus -> token ids, encoded once and cached on disk (see ``fastrnn.data`` for the cache's
layout and validity rules): ``load_corpus``, ``Corpus``, ``cache_root``.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import sys
import tempfile
from typing import Optional, Union

import numpy as np
from tqdm import tqdm

from .. import _files
from .._checks import check_regular_file
from .vocab import MAX_VOCAB, Vocab, _check_mode

_N_CODEPOINTS = 0x110000
_CHUNK = 1 << 20               # bytes per block: bounds the memory of an encode (measured
                               # as fast as 4-16 MiB blocks, and far smaller)
_CACHE_FORMAT = "fastrnn-corpus-cache"
_VERSION = 1


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
    check_regular_file(path, "corpus")
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
            _files.atomic_write(os.path.join(cdir, "meta.json"), _json_bytes(meta))
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
    _files.remove_stale_temps(cdir)
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
    tmp = _files.temp_path(ids_path)
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
        _files.remove_quietly(tmp)
        raise
    _files.atomic_write(os.path.join(cdir, "vocab.json"), _json_bytes(vocab.to_json()))
    meta = {"format": _CACHE_FORMAT, "version": _VERSION, "mode": mode, "corpus": path,
            **dict(zip(_STAT_KEY, _stat_key(st))), "blake2b": h.hexdigest(),
            "n_tokens": n_tokens, "vocab_size": vocab.size,
            "dtype": np.dtype(vocab.dtype).name}
    _files.atomic_write(os.path.join(cdir, "meta.json"), _json_bytes(meta))    # last: now valid
    return Corpus(path, vocab, np.load(ids_path, mmap_mode="r"), cdir, meta)


def _json_bytes(obj):
    return (json.dumps(obj, indent=1) + "\n").encode("utf-8")
