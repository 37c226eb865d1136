"""Checkpoint files: exact round trip, atomic writes, clear errors, no pickle."""

import os

import numpy as np
import pytest

from fastrnn import checkpoint as ckpt


def tree():
    return {"model": {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3)},
            "list": [np.zeros(2, np.uint16), {"x": 1.5}], "n": 3, "s": "héllo", "none": None,
            "big": 2 ** 100, "flag": True}


def test_round_trip_is_exact(tmp_path):
    p = tmp_path / "c.npz"
    ckpt.save(p, tree())
    back = ckpt.load(p)
    np.testing.assert_array_equal(back["model"]["w"], tree()["model"]["w"])
    assert back["model"]["w"].dtype == np.float32
    assert back["list"][0].dtype == np.uint16 and back["list"][1] == {"x": 1.5}
    assert (back["n"], back["s"], back["none"], back["big"], back["flag"]) == \
        (3, "héllo", None, 2 ** 100, True)


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    p = tmp_path / "c.npz"
    ckpt.save(p, tree())
    before = p.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="could not write checkpoint .*No space left on device; "
                                      "the previous checkpoint \\(if any\\) is intact"):
        ckpt.save(p, {"other": np.zeros(1)})
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.npz"]           # no temporary file left behind


@pytest.mark.parametrize("cut", [10, 200, -30])
def test_truncated_file(tmp_path, cut):
    p = tmp_path / "c.npz"
    ckpt.save(p, tree())
    data = p.read_bytes()
    p.write_bytes(data[:cut])
    with pytest.raises(ckpt.CheckpointError, match="is corrupt or not a fastrnn checkpoint: not a readable .npz"):
        ckpt.load(p)


def test_wrong_file_types(tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load(txt)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(2))
    with pytest.raises(ckpt.CheckpointError, match="not a fastrnn checkpoint: it has no __tree"):
        ckpt.load(other)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ckpt.load(tmp_path / "missing.npz")
    with pytest.raises(IsADirectoryError):
        ckpt.load(tmp_path)


def test_pickled_content_is_refused(tmp_path):
    p = tmp_path / "evil.npz"
    np.savez(p, __tree__=np.array('{"format": "fastrnn-checkpoint", "version": 1, "tree": '
                                  '{"__array__": "a0"}}'), a0=np.array([object()], dtype=object))
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load(p)


def test_future_version(tmp_path):
    p = tmp_path / "new.npz"
    np.savez(p, __tree__=np.array('{"format": "fastrnn-checkpoint", "version": 99, "tree": {}}'))
    with pytest.raises(ckpt.CheckpointError, match="newer than this fastrnn supports"):
        ckpt.load(p)
