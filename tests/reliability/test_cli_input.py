"""Invalid command lines, corpora and checkpoints: an argparse-style message naming the
problem (and the fix), exit code 2, no traceback, nothing written to the run directory."""

import numpy as np
import pytest

from reliability.helpers import files_under, tiny_cfg
from fastrnn import checkpoint as ckpt
from fastrnn import cli, train
from fastrnn import data as D


def main(capsys, *args):
    """fastrnn in-process -> (exit code, stderr). argparse errors raise SystemExit(2)."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


TRAIN_BAD = [
    (["--hidden", "0"], "--hidden: must be >= 1, got 0"),
    (["--hidden", "-5"], "--hidden: must be >= 1, got -5"),
    (["--hidden", "abc"], "--hidden: invalid _positive value: 'abc'"),
    (["--layers", "0"], "--layers: must be >= 1"),
    (["--seq", "-1"], "--seq: must be >= 1"),
    (["--batch", "0"], "--batch: must be >= 1"),
    (["--steps", "0"], "--steps: must be >= 1"),
    (["--epochs", "-1"], "--epochs: must be > 0"),
    (["--time", "0"], "--time: must be > 0"),
    (["--eval-every", "0"], "--eval-every: must be >= 1"),
    (["--eval-batches", "-3"], "--eval-batches: must be >= 1"),
    (["--checkpoint-every", "0"], "--checkpoint-every: must be >= 1"),
    (["--truncate", "-1"], "--truncate: must be >= 0"),
    (["--dropout", "1"], "--dropout: must be in [0, 1)"),
    (["--dropout", "-0.1"], "--dropout: must be in [0, 1)"),
    (["--lr", "0"], "--lr: must be > 0"),
    (["--lr=-1e-3"], "--lr: must be > 0"),
    (["--lr", "nan"], "--lr: must be > 0"),
    (["--lr", "inf"], "--lr: must be a finite number > 0"),
    (["--clip", "0"], "--clip: must be > 0"),
    (["--val-fraction", "0.5"], "--val-fraction: must be in [0, 0.5)"),
    (["--val-fraction", "-0.1"], "--val-fraction: must be in [0, 0.5)"),
    (["--threads", "0"], "--threads: must be >= 1"),
    (["--seed", "-1"], "--seed: must be >= 0"),
    (["--cell", "transformer"], "--cell: invalid choice: 'transformer'"),
    (["--dtype", "float16"], "--dtype: invalid choice: 'float16'"),
    (["--optimizer", "lbfgs"], "--optimizer: invalid choice"),
    (["--on-nan", "ignore"], "--on-nan: invalid choice: 'ignore'"),
    (["--nan-retries", "0"], "--nan-retries: must be >= 1"),
    (["--schedule", "exponential"], "--schedule: invalid choice: 'exponential'"),
    (["--warmup", "1"], "--warmup: must be in [0, 1)"),
]


@pytest.mark.parametrize("args,msg", TRAIN_BAD, ids=[" ".join(a) for a, _ in TRAIN_BAD])
def test_train_bad_values(capsys, tmp_path, corpus, args, msg):
    out = tmp_path / "run"
    code, err = main(capsys, "train", corpus, "--out", out, *(["--steps", "1"]
                     if "--steps" not in args and "--epochs" not in args else []), *args)
    assert code == 2 and msg in err, err
    assert "usage: fastrnn train" in err                  # the usage of the subcommand
    assert not out.exists()


SAMPLE_BAD = [
    (["--temperature", "0"], "--temperature: must be > 0"),
    (["--temperature", "-1"], "--temperature: must be > 0"),
    (["--temperature", "inf"], "--temperature: must be a finite number > 0"),
    (["-n", "-1"], "--length: must be >= 0"),
    (["--top-k", "0"], "--top-k: must be >= 1"),
    (["--seed", "-2"], "--seed: must be >= 0"),
]


@pytest.mark.parametrize("args,msg", SAMPLE_BAD, ids=[" ".join(a) for a, _ in SAMPLE_BAD])
def test_sample_bad_values(capsys, tmp_path, args, msg):
    code, err = main(capsys, "sample", tmp_path / "none.npz", *args)
    assert code == 2 and msg in err, err


@pytest.mark.parametrize("args,msg", [
    (["--seq", "100000"], "corpus too short"),
    (["--batch", "5000", "--seq", "50"], "corpus too short"),
])
def test_windows_longer_than_the_corpus(capsys, tmp_path, corpus, args, msg):
    out = tmp_path / "run"
    code, err = main(capsys, "train", corpus, "--steps", 1, "--out", out, "--no-progress", *args)
    assert code == 2 and "fastrnn train: error:" in err and msg in err, err
    assert "smaller batch or seq" in err
    assert not out.exists()


# ---------------------------------------------------------------- corpora

def corpus_case(tmp_path, kind):
    p = tmp_path / "c.txt"
    if kind == "missing":
        return p, "corpus not found"
    if kind == "empty":
        p.write_bytes(b"")
        return p, "is empty (0 bytes)"
    if kind == "directory":
        return tmp_path, "is a directory; give one text file"
    if kind == "invalid-utf8":
        p.write_bytes(b"hello \xff world " * 50)
        return p, "not valid UTF-8: invalid start byte at byte offset 6"
    if kind == "binary":
        p.write_bytes(bytes(range(256)) * 20)
        return p, "looks binary: NUL byte at byte offset 0"
    if kind == "too-short":
        p.write_text("abc")
        return p, "corpus too short"
    if kind == "vocab-too-large":
        codes = [c for c in range(0x100, 0x100 + 68000) if not 0xD800 <= c < 0xE000]
        p.write_text("".join(map(chr, codes)))
        return p, "distinct characters; char mode"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing", "empty", "directory", "invalid-utf8", "binary",
                                  "too-short", "vocab-too-large"])
def test_bad_corpus(capsys, tmp_path, kind):
    path, msg = corpus_case(tmp_path, kind)
    out = tmp_path / "run"
    code, err = main(capsys, "train", path, "--steps", 1, "--out", out, "--no-progress")
    assert code == 2, err
    assert err.startswith("fastrnn train: error: ") and msg in err, err
    if kind in ("invalid-utf8", "binary", "vocab-too-large"):
        assert "--byte" in err                              # the fix is offered
    assert not out.exists()


def test_binary_file_trains_with_the_offered_byte_mode(capsys, tmp_path):
    path, _ = corpus_case(tmp_path, "binary")
    out = tmp_path / "run"
    code, err = main(capsys, "train", path, "--byte", "--steps", 2, "--out", out, "--hidden", 8,
                     "--layers", 1, "--batch", 2, "--seq", 8, "--no-progress")
    assert code == 0, err
    assert ckpt.load(out / "checkpoint.npz")["vocab"]["mode"] == "byte"


def test_unreadable_corpus(capsys, tmp_path, monkeypatch):
    p = tmp_path / "c.txt"
    p.write_text("hello world " * 100)

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)
    monkeypatch.setattr(D.cache, "open", denied, raising=False)     # where the corpus is read
    code, err = main(capsys, "train", p, "--steps", 1, "--out", tmp_path / "run")
    assert code == 2 and "is not readable (permission denied)" in err, err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- checkpoints

@pytest.fixture
def run_dir(tmp_path, corpus):
    """A finished tiny run: its directory (with checkpoint.npz)."""
    out = tmp_path / "run"
    train.Trainer(tiny_cfg(corpus, out, steps=2), progress=False, log=lambda *a: None).run()
    return out


def resume(capsys, path, *args):
    return main(capsys, "train", "--resume", path, "--steps", 3, "--no-progress", *args)


@pytest.mark.parametrize("cut", [0, 100, 0.5, -10])
def test_resume_from_a_truncated_checkpoint(capsys, run_dir, cut):
    p = run_dir / "checkpoint.npz"
    data = p.read_bytes()
    p.write_bytes(data[:int(cut * len(data)) if isinstance(cut, float) else cut])
    before = {f: (run_dir / f).read_bytes() for f in files_under(run_dir)}
    code, err = resume(capsys, p)
    assert code == 2 and "fastrnn train: error:" in err, err
    assert "checkpoint" in err
    assert {f: (run_dir / f).read_bytes() for f in files_under(run_dir)} == before


@pytest.mark.parametrize("content", [b"just some notes\n", b"\x89PNG\r\n\x1a\n" + bytes(100),
                                     b"PK\x03\x04" + bytes(60)])
def test_wrong_file_types(capsys, tmp_path, content):
    p = tmp_path / "x.npz"
    p.write_bytes(content)
    for cmd in (["train", "--resume", p, "--steps", 1], ["sample", p], ["info", p]):
        code, err = main(capsys, *cmd)
        assert code == 2 and "is not a" in err and "fastrnn checkpoint" in err, err
    npz = tmp_path / "other.npz"
    np.savez(npz, weights=np.zeros(3))
    code, err = main(capsys, "sample", npz)
    assert code == 2 and "is corrupt or not a fastrnn checkpoint: it has no __tree__" in err


def test_resume_with_another_model_or_vocabulary(capsys, tmp_path, run_dir):
    before = files_under(run_dir)
    code, err = resume(capsys, run_dir / "checkpoint.npz", "--hidden", 32)
    assert code == 2 and "holds a different model: hidden=16 in the checkpoint vs 32 now" in err
    code, err = resume(capsys, run_dir / "checkpoint.npz", "--byte")
    assert code == 2 and "mode='char' in the checkpoint vs 'byte' now" in err
    other = tmp_path / "other.txt"
    other.write_text("xyz " * 2000)
    code, err = resume(capsys, run_dir / "checkpoint.npz", other)
    assert code == 2 and "different vocabulary" in err, err
    assert files_under(run_dir) == before
    assert ckpt.load(run_dir / "checkpoint.npz")["step"] == 2


def test_future_format_version(capsys, tmp_path):
    p = tmp_path / "new.npz"
    np.savez(p, __tree__=np.array('{"format": "fastrnn-checkpoint", "version": 99, "tree": {}}'))
    code, err = main(capsys, "train", "--resume", p, "--steps", 1)
    assert code == 2 and "newer than this fastrnn supports (2): upgrade fastrnn" in err


class _Evil:
    """Unpickling this creates the file ``marker``: proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_loading_never_executes_code_from_the_file(capsys, tmp_path, run_dir):
    marker = tmp_path / "pwned"
    good = ckpt.load(run_dir / "checkpoint.npz")
    evil = tmp_path / "evil.npz"
    arrays = {"__tree__": np.array('{"format": "fastrnn-checkpoint", "version": 1, "tree": '
                                   '{"__array__": "a0"}}'),
              "a0": np.array([_Evil(str(marker))], dtype=object)}
    np.savez(evil, **arrays)                                   # an object array: a pickle
    raw = tmp_path / "raw.npz"
    import pickle
    raw.write_bytes(pickle.dumps(_Evil(str(marker))))          # a bare pickle named .npz
    for path in (evil, raw):
        for cmd in (["sample", path], ["info", path], ["train", "--resume", path, "--steps", 1]):
            code, err = main(capsys, *cmd)
            assert code == 2, err
        with pytest.raises(ckpt.CheckpointError):
            ckpt.load(path)
    assert not marker.exists()
    assert good["step"] == 2
