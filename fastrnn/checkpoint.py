"""Checkpoints: a tree of dicts/lists of numpy arrays and plain values in one ``.npz`` file.

The arrays are stored as npz members, the rest of the tree as a JSON string member, so a
checkpoint loads with ``allow_pickle=False``: opening one never executes code from the file.
Writes are atomic: a temporary file in the same directory, flushed and fsync'ed, then
``os.replace``'d over the target, so a crash (or a full disk) mid-write leaves the previous
checkpoint intact.
"""

import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "fastrnn-checkpoint"
VERSION = 1
_TREE = "__tree__"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used (corrupt, foreign, newer format, mismatched)."""


def _split(tree, path, arrays):
    if isinstance(tree, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = tree
        return {"__array__": key}
    if isinstance(tree, dict):
        if not all(isinstance(k, str) for k in tree):
            raise TypeError(f"checkpoint dict keys must be strings at {path or '/'}")
        if "__array__" in tree:
            raise TypeError("'__array__' is a reserved key")
        return {k: _split(v, f"{path}/{k}", arrays) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_split(v, f"{path}/{i}", arrays) for i, v in enumerate(tree)]
    if isinstance(tree, np.generic):
        return tree.item()
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise TypeError(f"cannot store {type(tree).__name__} at {path or '/'} in a checkpoint")


def _join(tree, arrays):
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            return arrays[tree["__array__"]]
        return {k: _join(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_join(v, arrays) for v in tree]
    return tree


def save(path, tree):
    """Write ``tree`` to ``path`` atomically. Raises OSError naming the path if it cannot be
    written; an existing file at ``path`` is then left as it was."""
    arrays = {}
    skeleton = _split(tree, "", arrays)
    header = {"format": FORMAT, "version": VERSION, "tree": skeleton}
    arrays[_TREE] = np.array(json.dumps(header))
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)       # mkstemp makes 0600; a checkpoint is a normal file
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise OSError(e.errno, f"could not write checkpoint {path}: {e.strerror}; "
                          "the previous checkpoint (if any) is intact") from e
        raise
    try:                                  # make the rename durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def load(path):
    """Read a checkpoint written by ``save``; raises CheckpointError with the reason."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, not a checkpoint file")
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            if _TREE not in z.files:
                raise CheckpointError(f"{path} is not a fastrnn checkpoint (no {_TREE} entry)")
            header = json.loads(str(z[_TREE][()]))
            arrays = {k: z[k] for k in z.files if k != _TREE}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, AttributeError, TypeError) as e:
        raise CheckpointError(f"{path} is not a readable fastrnn checkpoint (truncated or "
                              f"corrupt file?): {e}") from e
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a fastrnn checkpoint")
    if header.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} has checkpoint format {header['version']}, newer than "
                              f"this fastrnn supports ({VERSION}): upgrade fastrnn")
    return _join(header["tree"], arrays)
