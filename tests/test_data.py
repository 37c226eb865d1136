"""fastrnn.data: vocabulary, corpus encoding and its cache, the default corpus, batching."""

import json
import os

import numpy as np
import pytest

from fastrnn import _files
from fastrnn.data import cache as D
from fastrnn.data import StreamBatcher, Vocab, default_corpus_path, load_corpus

TEXT = "héllo wörld — 日本 🚀\n"          # 1-, 2-, 3- and 4-byte UTF-8 characters


@pytest.fixture(autouse=True)
def _private_cache_root(tmp_path, monkeypatch):
    """Nothing is written to the real ~/.cache."""
    monkeypatch.setenv("FASTRNN_CACHE", str(tmp_path / "cache-root"))


def write(path, content):
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def count_calls(monkeypatch, name):
    """Wrap ``fastrnn.data.cache.<name>`` and return the list its calls are appended to."""
    calls, real = [], getattr(D, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(D, name, wrapper)
    return calls


# ---------------------------------------------------------------------------------------------
# Vocab
# ---------------------------------------------------------------------------------------------

def test_char_vocab_round_trip():
    v = Vocab(sorted(set(TEXT)), mode="char")
    ids = v.encode(TEXT)
    assert ids.dtype == np.int64 and ids.shape == (len(TEXT),)
    assert ids.tolist() == [v.tokens.index(c) for c in TEXT]
    assert v.decode(ids) == TEXT
    assert [ord(t) for t in v.tokens] == sorted(ord(t) for t in set(TEXT))
    assert v.size == len(set(TEXT)) and v.dtype is np.uint8


def test_byte_vocab_round_trip_and_replacement():
    raw = TEXT.encode("utf-8")
    v = Vocab(sorted(set(raw)), mode="byte")
    ids = v.encode(TEXT)
    assert ids.shape == (len(raw),)
    assert bytes(np.array(v.tokens)[ids].astype(np.uint8)) == raw
    assert v.decode(ids) == TEXT
    assert v.decode(v.encode(raw)) == TEXT                  # raw bytes are accepted as well
    assert v.decode(v.encode("日")[:2]) == "\ufffd"          # a cut character is replaced


def test_vocab_dtype_grows_past_256_symbols():
    assert Vocab([chr(i) for i in range(256)]).dtype is np.uint8
    v = Vocab([chr(i) for i in range(300)])
    assert v.dtype is np.uint16 and v.size == 300


@pytest.mark.parametrize("mode, tokens", [("char", sorted(set(TEXT))),
                                          ("byte", sorted(set(TEXT.encode())))])
def test_vocab_json_round_trip(mode, tokens):
    v = Vocab(tokens, mode=mode)
    w = Vocab.from_json(json.loads(json.dumps(v.to_json())))
    assert w == v and w.tokens == v.tokens and w.mode == mode
    assert w.decode(w.encode(TEXT)) == TEXT


def test_encode_names_unknown_characters():
    v = Vocab(sorted(set("hello")))
    with pytest.raises(ValueError) as e:
        v.encode("hexxé yo")
    msg = str(e.value)
    assert "not in the training vocabulary" in msg
    assert "' ', 'x', 'y', 'é'" in msg and msg.count("'x'") == 1    # unique, sorted, repr'd
    vb = Vocab(sorted(set(b"hello")), mode="byte")
    with pytest.raises(ValueError, match=r"not in the training vocabulary.*'é'"):
        vb.encode("hellé")


def test_decode_checks_ids():
    v = Vocab(list("abc"))
    assert v.decode([]) == "" and v.decode(2) == "c"
    with pytest.raises(ValueError, match=r"\[0, 3\).*\[0, 3\]"):
        v.decode([0, 3])
    with pytest.raises(TypeError, match="integers"):
        v.decode([0.5])


@pytest.mark.parametrize("d, match", [
    (["a"], "JSON object"),
    ({"mode": "char"}, "missing"),
    ({"mode": "word", "tokens": ["a"]}, "mode must be 'char'"),
    ({"mode": "char", "tokens": "ab"}, "must be a list"),
    ({"mode": "char", "tokens": []}, "1 to 65535"),
    ({"mode": "char", "tokens": ["b", "a"]}, "sorted"),
    ({"mode": "char", "tokens": ["a", "a"]}, "without duplicates"),
    ({"mode": "char", "tokens": ["ab"]}, "one-character strings"),
    ({"mode": "char", "tokens": [97]}, "one-character strings"),
    ({"mode": "byte", "tokens": [1, 256]}, r"ints in \[0, 255\]"),
    ({"mode": "byte", "tokens": [True]}, r"ints in \[0, 255\]"),
    ({"mode": "byte", "tokens": ["a"]}, r"ints in \[0, 255\]"),
    ({"format": "something-else", "mode": "char", "tokens": ["a"]}, "not a fastrnn vocabulary"),
    ({"version": 99, "mode": "char", "tokens": ["a"]}, "version 99 is not supported"),
])
def test_vocab_from_json_rejects_malformed(d, match):
    with pytest.raises(ValueError, match=match):
        Vocab.from_json(d)


# ---------------------------------------------------------------------------------------------
# load_corpus: encoding
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [1 << 20, 5, 1])   # tiny blocks split inside characters
def test_load_char_corpus_round_trip(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(D, "_CHUNK", chunk)
    text = TEXT * 20 + "end"
    c = load_corpus(write(tmp_path / "c.txt", text), cache_dir=tmp_path / "cache", progress=False)
    assert len(c) == len(text) and c.vocab.mode == "char"
    assert c.vocab.tokens == sorted(set(text))
    assert c.ids.dtype == np.uint8 and isinstance(c.ids, np.memmap)
    assert not c.ids.flags.writeable
    assert c.ids.tolist() == [c.vocab.tokens.index(ch) for ch in text]
    assert c.vocab.decode(c.ids) == text
    assert c.path == str(tmp_path / "c.txt")


@pytest.mark.parametrize("chunk", [1 << 20, 3])
def test_load_byte_corpus_round_trip(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(D, "_CHUNK", chunk)
    raw = (TEXT * 20).encode("utf-8")
    c = load_corpus(write(tmp_path / "c.txt", raw), mode="byte", cache_dir=tmp_path / "cache",
                    progress=False)
    assert len(c) == len(raw) and c.vocab.tokens == sorted(set(raw))
    assert bytes(np.array(c.vocab.tokens, np.uint8)[c.ids]) == raw
    assert c.vocab.decode(c.ids) == TEXT * 20


def test_byte_mode_takes_any_file(tmp_path):
    raw = bytes(range(256)) * 3 + b"\x00\xff"
    c = load_corpus(write(tmp_path / "bin", raw), mode="byte", progress=False)
    assert c.vocab.size == 256 and c.ids.dtype == np.uint8
    assert bytes(c.ids) == raw                          # all 256 bytes present: id == byte


def test_large_char_vocab_is_uint16(tmp_path):
    text = "".join(chr(c) for c in range(0x400, 0x400 + 300)) * 2
    c = load_corpus(write(tmp_path / "c.txt", text), progress=False)
    assert c.vocab.size == 300 and c.ids.dtype == np.uint16
    assert c.vocab.decode(c.ids) == text


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    load_corpus(write(tmp_path / "a.txt", TEXT), cache_dir=tmp_path / "a", progress=True)
    out = capsys.readouterr()
    assert "fastrnn: scanning a.txt" in out.err and "fastrnn: encoding a.txt" in out.err
    assert out.out == ""
    load_corpus(write(tmp_path / "b.txt", TEXT), cache_dir=tmp_path / "b", progress=False)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------
# load_corpus: the cache
# ---------------------------------------------------------------------------------------------

def test_cache_beside_corpus_with_meta(tmp_path):
    p = write(tmp_path / "c.txt", TEXT * 3)
    c = load_corpus(p, progress=False)
    assert c.cache_dir == str(p) + ".fastrnn-cache" + os.sep + "char"
    assert sorted(os.listdir(c.cache_dir)) == ["ids.npy", "meta.json", "vocab.json"]
    meta = json.loads((tmp_path / "c.txt.fastrnn-cache" / "char" / "meta.json").read_text())
    st = os.stat(p)
    assert (meta["size"], meta["mtime_ns"], meta["mode"]) == (st.st_size, st.st_mtime_ns, "char")
    assert meta["n_tokens"] == len(TEXT * 3) and len(meta["blake2b"]) == 64
    vocab = json.loads((tmp_path / "c.txt.fastrnn-cache" / "char" / "vocab.json").read_text())
    assert Vocab.from_json(vocab) == c.vocab


def test_cache_reused_while_corpus_unchanged(tmp_path, monkeypatch):
    encodes = count_calls(monkeypatch, "_encode")
    p = write(tmp_path / "c.txt", TEXT * 3)
    c1 = load_corpus(p, progress=False)
    st1 = os.stat(c1.ids_path)
    c2 = load_corpus(p, progress=False)
    st2 = os.stat(c2.ids_path)
    assert len(encodes) == 1
    assert (st1.st_ino, st1.st_mtime_ns) == (st2.st_ino, st2.st_mtime_ns)
    assert np.array_equal(c1.ids, c2.ids) and c1.vocab == c2.vocab


def test_touched_corpus_is_hashed_not_reencoded(tmp_path, monkeypatch):
    encodes = count_calls(monkeypatch, "_encode")
    hashes = count_calls(monkeypatch, "_hash_file")
    p = write(tmp_path / "c.txt", TEXT * 3)
    load_corpus(p, progress=False)
    st = os.stat(p)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))      # same bytes, new mtime
    c = load_corpus(p, progress=False)
    assert (len(encodes), len(hashes)) == (1, 1)
    assert c.meta["mtime_ns"] == st.st_mtime_ns + 10**9           # remembered in meta.json
    load_corpus(p, progress=False)
    assert (len(encodes), len(hashes)) == (1, 1)                  # no second hash


@pytest.mark.parametrize("new_text", ["héllo wörld — 日本 🚀\n" * 2 + "xyz",    # size changes
                                      "HÉLLO WÖRLD — 本日 🚀\n" * 3])            # same size
def test_changed_corpus_is_reencoded(tmp_path, monkeypatch, new_text):
    encodes = count_calls(monkeypatch, "_encode")
    p = write(tmp_path / "c.txt", TEXT * 3)
    load_corpus(p, progress=False)
    st = os.stat(p)
    write(p, new_text)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    c = load_corpus(p, progress=False)
    assert len(encodes) == 2
    assert c.vocab.decode(c.ids) == new_text and c.vocab.tokens == sorted(set(new_text))


def test_modes_have_separate_caches(tmp_path, monkeypatch):
    encodes = count_calls(monkeypatch, "_encode")
    p = write(tmp_path / "c.txt", TEXT)
    cc, cb = load_corpus(p, progress=False), load_corpus(p, mode="byte", progress=False)
    assert (len(cc), len(cb)) == (len(TEXT), len(TEXT.encode()))
    load_corpus(p, progress=False), load_corpus(p, mode="byte", progress=False)
    assert len(encodes) == 2


def test_crash_before_meta_leaves_no_valid_cache(tmp_path, monkeypatch):
    """The worst case: the ids of a NEW text are in place, then the process dies; the old
    text comes back with its old mtime. The old meta.json must not bless the new ids."""
    encodes = count_calls(monkeypatch, "_encode")
    p = write(tmp_path / "c.txt", "old text\n" * 5)
    load_corpus(p, progress=False)
    st = os.stat(p)
    write(p, "new words!\n" * 7)
    real_write = _files.atomic_write

    def dying_write(path, data):
        if path.endswith("meta.json"):
            raise KeyboardInterrupt("killed")
        return real_write(path, data)

    monkeypatch.setattr(_files, "atomic_write", dying_write)
    with pytest.raises(KeyboardInterrupt):
        load_corpus(p, progress=False)
    monkeypatch.setattr(_files, "atomic_write", real_write)
    write(p, "old text\n" * 5)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    c = load_corpus(p, progress=False)
    assert len(encodes) == 3
    assert c.vocab.decode(c.ids) == "old text\n" * 5


def test_crash_while_encoding_leaves_no_temp_files(tmp_path, monkeypatch):
    calls, real = [], D._symbols

    def dying_symbols(raw, text):
        calls.append(1)
        if len(calls) == 2:                                 # the first piece of pass 2
            raise KeyboardInterrupt("killed")
        return real(raw, text)

    monkeypatch.setattr(D, "_symbols", dying_symbols)
    p = write(tmp_path / "c.txt", TEXT * 3)
    with pytest.raises(KeyboardInterrupt):
        load_corpus(p, cache_dir=tmp_path / "cache", progress=False)
    assert os.listdir(tmp_path / "cache" / "char") == []


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path):
    cdir = tmp_path / "cache" / "char"
    cdir.mkdir(parents=True)
    stale = cdir / "ids.npy.999999999.abc123.tmp"            # no such pid
    stale.write_bytes(b"partial")
    load_corpus(write(tmp_path / "c.txt", TEXT), cache_dir=tmp_path / "cache", progress=False)
    assert not stale.exists()
    assert sorted(os.listdir(cdir)) == ["ids.npy", "meta.json", "vocab.json"]


def test_cache_falls_back_to_cache_root(tmp_path, monkeypatch):
    real = D._writable_dir
    monkeypatch.setattr(D, "_writable_dir",
                        lambda d: ".fastrnn-cache" not in d and real(d))
    p = write(tmp_path / "c.txt", TEXT)
    c = load_corpus(p, progress=False)
    root = str(tmp_path / "cache-root")
    assert c.cache_dir.startswith(root + os.sep) and c.cache_dir.endswith(os.sep + "char")
    assert c.vocab.decode(c.ids) == TEXT
    assert load_corpus(p, progress=False).cache_dir == c.cache_dir


def test_no_writable_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "_writable_dir", lambda d: False)
    with pytest.raises(PermissionError, match="no writable folder.*FASTRNN_CACHE"):
        load_corpus(write(tmp_path / "c.txt", TEXT), progress=False)


# ---------------------------------------------------------------------------------------------
# load_corpus: errors
# ---------------------------------------------------------------------------------------------

def test_bad_mode(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'char'.*'byte', got 'word'"):
        load_corpus(write(tmp_path / "c.txt", TEXT), mode="word")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"corpus not found: .*nope\.txt"):
        load_corpus(tmp_path / "nope.txt")


def test_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory; give one text file"):
        load_corpus(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
def test_not_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ValueError, match="not a regular file"):
        load_corpus(tmp_path / "pipe")


def test_unreadable_file(tmp_path, monkeypatch):
    p = write(tmp_path / "c.txt", TEXT)

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(D, "open", denied, raising=False)
    with pytest.raises(PermissionError, match=r"c\.txt is not readable.*chmod"):
        load_corpus(p)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads any file")
def test_unreadable_file_for_real(tmp_path):
    p = write(tmp_path / "c.txt", TEXT)
    p.chmod(0)
    with pytest.raises(PermissionError, match="is not readable"):
        load_corpus(p)


def test_empty_file(tmp_path):
    with pytest.raises(ValueError, match=r"empty \(0 bytes\)"):
        load_corpus(write(tmp_path / "c.txt", b""))


@pytest.mark.parametrize("raw, offset, reason", [
    (b"abc\xff\xfedef", 3, "invalid start byte"),
    (b"h\xc3\xa9llo caf\xe9 ok", 10, "invalid continuation byte"),    # Latin-1 'é'
    (b"abc\xe6\x97", 3, "unexpected end of data"),                   # cut at the end
])
@pytest.mark.parametrize("chunk", [1 << 20, 2])
def test_invalid_utf8_names_offset(tmp_path, monkeypatch, raw, offset, reason, chunk):
    monkeypatch.setattr(D, "_CHUNK", chunk)
    with pytest.raises(ValueError) as e:
        load_corpus(write(tmp_path / "c.txt", raw), progress=False)
    msg = str(e.value)
    assert f"not valid UTF-8: {reason} at byte offset {offset}" in msg
    assert "--byte" in msg and "mode='byte'" in msg
    c = load_corpus(tmp_path / "c.txt", mode="byte", progress=False)     # the suggested fix
    assert bytes(np.array(c.vocab.tokens, np.uint8)[c.ids]) == raw


@pytest.mark.parametrize("chunk", [1 << 20, 4])
def test_binary_file_in_char_mode(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(D, "_CHUNK", chunk)
    p = write(tmp_path / "c.bin", b"hello\x00wor\x00ld")
    with pytest.raises(ValueError, match=r"looks binary: NUL byte at byte offset 5.*mode='byte'"):
        load_corpus(p, progress=False)
    utf16 = write(tmp_path / "u16.txt", "hello".encode("utf-16-le"))
    with pytest.raises(ValueError, match="NUL byte at byte offset 1"):
        load_corpus(utf16, progress=False)


def test_too_many_distinct_characters(tmp_path):
    codes = [c for c in range(0x100, 0x100 + 68000) if not 0xD800 <= c < 0xE000]
    p = write(tmp_path / "c.txt", "".join(map(chr, codes)))
    with pytest.raises(ValueError, match=r"has 65952 distinct characters.*at most 65535.*--byte"):
        load_corpus(p, progress=False)
    assert load_corpus(p, mode="byte", progress=False).vocab.size <= 256


# ---------------------------------------------------------------------------------------------
# The default corpus
# ---------------------------------------------------------------------------------------------

def test_default_corpus(tmp_path):
    p = default_corpus_path()
    assert os.path.dirname(p) == str(tmp_path / "cache-root")       # $FASTRNN_CACHE
    size, mtime = os.path.getsize(p), os.stat(p).st_mtime_ns
    assert size >= 500_000
    with open(p, encoding="utf-8") as f:
        head = f.read(1000)
    assert head.startswith("# ==== abc.py ====\n")
    assert default_corpus_path() == p and os.stat(p).st_mtime_ns == mtime   # written once
    c = load_corpus(p, progress=False)
    assert len(c) >= 500_000 and c.vocab.decode(c.ids[:1000]) == head


def test_default_corpus_is_deterministic(tmp_path):
    a = default_corpus_path(cache_dir=tmp_path / "a")
    b = default_corpus_path(cache_dir=tmp_path / "b")
    assert a.startswith(str(tmp_path / "a"))
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read()


# ---------------------------------------------------------------------------------------------
# StreamBatcher
# ---------------------------------------------------------------------------------------------

def positions(n):
    """Token ids equal to their positions (as a read-only memmap, like Corpus.ids)."""
    return np.arange(n, dtype=np.int64)


def stream_parts(n, batch, val_fraction):
    L = n // batch
    n_val = int(np.floor(L * val_fraction + 0.5))
    return L, L - n_val


def collect(batcher):
    xs, ys = zip(*batcher)
    return np.stack(xs), np.stack(ys)          # (K, seq, batch)


@pytest.mark.parametrize("n, batch, seq, vf", [
    (155, 3, 4, 0.2),       # L=51, 41 train tokens = 10 windows of 4 + 1: exact cover
    (1003, 4, 5, 0.1),      # a tail of train tokens is left over
    (50, 1, 1, 0.0),
    (200, 7, 3, 0.05),
])
def test_training_windows_cover_each_token_once(n, batch, seq, vf):
    b = StreamBatcher(positions(n), batch, seq, val_fraction=vf)
    L, n_train = stream_parts(n, batch, vf)
    x, y = collect(b)                          # (K, seq, B)
    K = b.batches_per_epoch
    assert x.shape == y.shape == (K, seq, batch) and x.dtype == y.dtype == np.int64
    assert K == (n_train - 1) // seq
    assert np.array_equal(y, x + 1)            # y is the next token
    for s in range(batch):
        pos = x[:, :, s].reshape(-1)           # in window order: consecutive
        assert np.array_equal(pos, s * L + np.arange(K * seq))
    assert n_train - 1 - K * seq < seq         # only a tail shorter than one window is unused
    if (n_train - 1) % seq == 0:               # exact: every training token but the last of
        assert K * seq == n_train - 1          # each stream is an input once (and a target)


@pytest.mark.parametrize("n, batch, seq, vf", [(155, 3, 4, 0.2), (2000, 5, 6, 0.25)])
def test_validation_is_the_end_of_each_stream_and_disjoint(n, batch, seq, vf):
    L, n_train = stream_parts(n, batch, vf)
    tr_x, tr_y = collect(StreamBatcher(positions(n), batch, seq, "train", vf))
    va_x, va_y = collect(StreamBatcher(positions(n), batch, seq, "val", vf))
    train = set(tr_x.ravel()) | set(tr_y.ravel())
    val = set(va_x.ravel()) | set(va_y.ravel())
    assert not train & val
    assert np.array_equal(va_y, va_x + 1)
    for s in range(batch):
        assert va_x[0, 0, s] == s * L + n_train        # starts right after the train part
        assert va_y[:, :, s].max() < (s + 1) * L       # and stays inside its stream
    assert max(train | val) < batch * L                # the remainder is never used


def test_next_batch_wraps_and_flags_new_epochs():
    b = StreamBatcher(positions(155), 3, 4, val_fraction=0.2)
    K = b.batches_per_epoch
    flags, firsts = [], []
    for _ in range(2 * K + 2):
        x, _ = b.next_batch()
        flags.append(b.new_epoch)
        firsts.append(int(x[0, 0]))
    assert flags == ([True] + [False] * (K - 1)) * 2 + [True, False]
    assert firsts[:K] == firsts[K:2 * K] and firsts[2 * K] == 0
    assert (b.epoch, b.position) == (2, 2)
    rest = list(b)                                     # the rest of the current epoch
    assert len(rest) == K - 2 and (b.epoch, b.position) == (3, 0)
    assert len(list(b)) == K and b.epoch == 4          # then a whole epoch
    b.reset()
    assert (b.epoch, b.position, b.new_epoch) == (0, 0, False)


def test_state_dict_resume_is_identical(tmp_path):
    np.save(tmp_path / "ids.npy", (np.arange(3000) * 7919 % 251).astype(np.uint8))
    ids = np.load(tmp_path / "ids.npy", mmap_mode="r")
    a = StreamBatcher(ids, 4, 8, val_fraction=0.1)
    for _ in range(a.batches_per_epoch - 3):
        a.next_batch()
    state = json.loads(json.dumps(a.state_dict()))     # survives a JSON checkpoint
    b = StreamBatcher(ids, 4, 8, val_fraction=0.1)
    b.load_state_dict(state)
    for _ in range(10):                                # across the epoch boundary
        (xa, ya), (xb, yb) = a.next_batch(), b.next_batch()
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
        assert (a.new_epoch, a.epoch, a.position) == (b.new_epoch, b.epoch, b.position)
    assert a.epoch == 1


def test_state_dict_checks(tmp_path):
    b = StreamBatcher(positions(1000), 4, 8)
    with pytest.raises(ValueError, match="other settings.*seq: saved 9, now 8"):
        b.load_state_dict(dict(b.state_dict(), seq=9))
    with pytest.raises(ValueError, match=r"position must be an int in \[0, "):
        b.load_state_dict(dict(b.state_dict(), position=b.batches_per_epoch))
    with pytest.raises(ValueError, match="missing"):
        b.load_state_dict({"epoch": 0})


def test_batcher_works_on_the_memmap_without_copying(tmp_path):
    c = load_corpus(write(tmp_path / "c.txt", TEXT * 50), progress=False)
    b = StreamBatcher(c, batch=2, seq=10)
    assert np.shares_memory(b._streams, c.ids)          # a view of the memmap, not a copy
    x, y = b.next_batch()
    assert x.shape == (10, 2) and x.dtype == np.int64
    assert c.vocab.decode(x[:, 0]) == (TEXT * 50)[:10]


@pytest.mark.parametrize("batch, seq, vf, split", [
    (2, 9, 0.05, "train"), (1, 1, 0.0, "train"), (3, 50, 0.3, "train"), (4, 5, 0.1, "val"),
    (3, 7, 0.25, "val"),
])
def test_too_short_corpus_names_the_exact_minimum(batch, seq, vf, split):
    with pytest.raises(ValueError, match=f"corpus too short for split='{split}'") as e:
        StreamBatcher(positions(batch * (seq + 1)), batch, seq, split, vf) if split == "val" \
            else StreamBatcher(positions(1), batch, seq, split, vf)
    need = int(str(e.value).split("at least ")[1].split(" tokens")[0])
    frac = 1 - vf if split == "train" else vf           # the part is round(L * vf) tokens
    assert need % batch == 0 and need / batch >= (seq + 0.5) / frac
    b = StreamBatcher(positions(need), batch, seq, split, vf)      # exactly enough
    assert b.batches_per_epoch == 1
    with pytest.raises(ValueError, match=f"at least {need} tokens"):
        StreamBatcher(positions(need - 1), batch, seq, split, vf)


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(val_fraction=0.5), ValueError, r"val_fraction must be a number in \[0, 0.5\)"),
    (dict(val_fraction=-0.1), ValueError, r"val_fraction must be a number in \[0, 0.5\)"),
    (dict(val_fraction=float("nan")), ValueError, r"val_fraction must be a number"),
    (dict(batch=0), ValueError, "batch must be >= 1, got 0"),
    (dict(seq=0), ValueError, "seq must be >= 1, got 0"),
    (dict(seq=2.5), TypeError, "seq must be an int"),
    (dict(split="test"), ValueError, "split must be 'train' or 'val'"),
    (dict(split="val", val_fraction=0), ValueError, "val_fraction=0 leaves no validation"),
    (dict(ids=positions(100).reshape(10, 10)), ValueError, "ids must be 1-D"),
    (dict(ids=np.zeros(100)), TypeError, "integer numpy array"),
])
def test_batcher_argument_errors(kwargs, err, match):
    args = dict(ids=positions(10_000), batch=4, seq=8)
    with pytest.raises(err, match=match):
        StreamBatcher(**{**args, **kwargs})
