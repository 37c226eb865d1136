"""Writing files safely: a reader (or a later run) sees the old file or the whole new one,
never a torn one, whatever happens mid-write (a crash, ``kill -9``, a full disk). Used by the
checkpoints, the corpus cache, the default corpus and the run directory.

One temporary-name scheme everywhere: ``<name>.<pid>.<random>.tmp`` beside the target, so
``remove_stale_temps`` can tell the temporary files of processes that no longer run (removed)
from those of running ones (kept), in any folder, locked or shared.
"""

import contextlib
import os
import secrets
import shutil
import tempfile


def temp_name(path):
    """An unused name ``<path>.<pid>.<random>.tmp`` (nothing is created: for ``os.symlink``)."""
    return f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def temp_path(path):
    """A new empty file beside ``path`` named ``<name>.<pid>.<random>.tmp`` (mode 0600)."""
    d, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f"{name}.{os.getpid()}.", suffix=".tmp", dir=d)
    os.close(fd)
    return tmp


def remove_quietly(path):
    """Remove ``path`` if it exists; errors are ignored."""
    try:
        os.remove(path)
    except OSError:
        pass


def _fsync_dir(directory):
    """Make a rename in ``directory`` durable (best effort: not every system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


@contextlib.contextmanager
def replacing(path):
    """``with replacing(path) as f:`` write the new content to the binary file ``f``. On
    success it is flushed, fsync'ed, given the permissions of a normal new file and moved over
    ``path`` (and the rename made durable); on any error or interrupt the temporary file is
    removed and ``path`` is left as it was."""
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)            # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise
    _fsync_dir(os.path.dirname(os.path.abspath(path)))


def atomic_write(path, data):
    """Write the bytes ``data`` to ``path`` atomically (see ``replacing``)."""
    with replacing(path) as f:
        f.write(data)


def copy_atomic(src, dst):
    """``dst`` becomes a copy of ``src`` atomically (see ``replacing``)."""
    with open(src, "rb") as f, replacing(dst) as g:
        shutil.copyfileobj(f, g)


def is_temp(name):
    """Whether the file name ``name`` follows the temporary-name scheme; -> its pid or None."""
    parts = name.split(".")
    if name.endswith(".tmp") and len(parts) >= 4 and parts[-3].isdigit():
        return int(parts[-3])
    return None


def remove_stale_temps(directory):
    """Delete the temporary files in ``directory`` left by processes (of this machine) that
    no longer run, e.g. a write that was killed."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        pid = is_temp(name)
        if pid is None or pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            remove_quietly(os.path.join(directory, name))
        except OSError:
            pass                                     # alive (owned by someone else)
