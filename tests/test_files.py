"""fastrnn._files: atomic replace (the old file survives a failed write), the one
temporary-name scheme, and removal of the temporary files of dead processes only."""

import os
import subprocess
import sys

import pytest

from fastrnn import _files


def test_atomic_write_and_copy(tmp_path):
    p = tmp_path / "f.bin"
    _files.atomic_write(str(p), b"one")
    assert p.read_bytes() == b"one"
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask          # a normal file, not mkstemp's
    _files.copy_atomic(str(p), str(tmp_path / "g.bin"))
    assert (tmp_path / "g.bin").read_bytes() == b"one"
    assert sorted(os.listdir(tmp_path)) == ["f.bin", "g.bin"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with _files.replacing(str(p)) as f:
            f.write(b"half of the new")
            raise KeyboardInterrupt
    assert p.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_temporary_names_and_stale_ones(tmp_path):
    mine = _files.temp_path(str(tmp_path / "ids.npy"))
    name = os.path.basename(mine)
    assert name.startswith("ids.npy.") and _files.is_temp(name) == os.getpid()
    assert _files.is_temp(os.path.basename(_files.temp_name(str(tmp_path / "latest")))) \
        == os.getpid()
    assert _files.is_temp("ids.npy") is None and _files.is_temp("latest.tmp") is None
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f"meta.json.{dead}.ab12.tmp"           # its process has ended
    stale.write_bytes(b"partial")
    alive = tmp_path / f"meta.json.{os.getppid()}.cd34.tmp"  # a running process (our parent)
    alive.write_bytes(b"in progress")
    _files.remove_stale_temps(str(tmp_path))
    assert not stale.exists() and alive.exists() and os.path.exists(mine)
