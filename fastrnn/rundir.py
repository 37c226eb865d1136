"""A run directory (``fastrnn train --out DIR``): its files, its lock, the ``latest`` link
beside it, how a checkpoint is found in it, which settings a resumed run inherits and which
it must keep (the model).

    DIR/checkpoint.npz   the last checkpoint          DIR/best.npz   the best (held-out loss)
    DIR/log.jsonl        the log                      DIR/.lock      held while a trainer runs
    <parent of DIR>/latest -> DIR                     (fastrnn's own symlink, never a user's file)
"""

from __future__ import annotations

import glob
import os
from typing import Any, Dict, Iterable, Union

from . import _files
from . import checkpoint as ckpt

CHECKPOINT = "checkpoint.npz"
BEST = "best.npz"
LOCK = ".lock"


class RunLockedError(OSError):
    """The run directory is in use by another trainer (its lock file is held)."""


def lock_run_dir(out):
    """Takes the exclusive lock of run directory ``out`` (``flock`` on ``out/.lock``, released
    by the OS when the process ends, so a crashed run never leaves a stale lock) and returns
    the open lock file; close it to release. Raises ``RunLockedError`` if another process
    holds it, ``OSError`` naming the directory if it cannot be written."""
    try:
        import fcntl
    except ImportError:                        # not POSIX: no lock
        return None
    path = os.path.join(out, LOCK)
    try:
        f = open(path, "a+")
    except OSError as e:
        raise type(e)(e.errno, f"cannot write to the run directory {out} ({e.strerror}); "
                      "choose another --out or fix its permissions") from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise RunLockedError(f"the run directory {out} is in use by another fastrnn train "
                             f"(pid {holder}); wait for it to finish or choose another --out")
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def update_latest_link(out):
    """Points ``<parent of out>/latest`` at the run directory ``out`` (best effort). Replaces
    only fastrnn's own link (a symlink to an absolute path in the same parent, as this
    function makes), never a user's file, directory or other link. -> None, or what went
    wrong (to report)."""
    run = os.path.abspath(out)
    parent = os.path.dirname(run)
    latest = os.path.join(parent, "latest")
    if os.path.lexists(latest):
        try:
            target = os.readlink(latest) if os.path.islink(latest) else None
        except OSError:
            target = None
        if target is None or not os.path.isabs(target) or os.path.dirname(target) != parent:
            return f"{latest} is not fastrnn's link to its latest run: left as it is"
        if target == run:
            return None
    tmp = _files.temp_name(latest)
    try:
        os.symlink(run, tmp)
        os.replace(tmp, latest)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return f"could not update the link {latest}: {e}"
    return None


def remove_stale_temps(out):
    """Temporary files that a crash (kill -9) left in the run directory ``out``: those of
    processes that no longer run, and those of older fastrnn versions' checkpoint writes
    (``.tmp-*.npz``; call this only with the run directory locked, so no writer owns them)."""
    _files.remove_stale_temps(out)
    for tmp in glob.glob(os.path.join(glob.escape(out), ".tmp-*.npz")):
        _files.remove_quietly(tmp)


PathLike = Union[str, "os.PathLike[str]"]


def resolve(path: PathLike, best: bool = False) -> PathLike:
    """A checkpoint file, or a run directory holding one (e.g. ``runs/latest``): its last
    checkpoint, or with ``best=True`` its best one (lowest held-out loss, ``best.npz``) when
    it has one."""
    if os.path.isdir(path):
        if best and os.path.exists(os.path.join(path, BEST)):
            return os.path.join(path, BEST)
        inner = os.path.join(path, CHECKPOINT)
        if not os.path.exists(inner):
            raise FileNotFoundError(f"{path} is a directory without a {CHECKPOINT}")
        return inner
    if os.path.isfile(path):                       # a regular file: is it a zip (.npz) at all?
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise ckpt.CheckpointError(
                f"{path} is not a fastrnn checkpoint (fastrnn train writes them as .npz files, "
                f"e.g. runs/NAME/{CHECKPOINT}; give that file or its run directory)")
    return path


def check_new_run(out, resume, overwrite):
    """A new run must not silently replace the checkpoint of another one in ``out``."""
    if out is None or overwrite:
        return
    existing = os.path.join(out, CHECKPOINT)
    if not os.path.exists(existing):
        return
    if resume is not None and os.path.abspath(resume) == os.path.abspath(existing):
        return                                     # continuing that very run
    lock = lock_run_dir(out)                       # a run in progress there: say that first
    if lock is not None:
        lock.close()
    raise ValueError(f"{out} already holds a trained model ({existing}): continue it with "
                     f"--resume {out}, or start a new run over it with --overwrite (which "
                     "replaces its checkpoint and log), or choose another --out")


# Settings that belong to one run, never inherited by a resumed one: its budget and folder.
PER_RUN = ("steps", "epochs", "time", "out")


def resumed_settings(fields: Dict[str, Any], resume: str, given: Iterable[str]) -> Dict[str, Any]:
    """The settings of a run resuming the checkpoint ``resume``: each one in ``given`` (set
    on the command line) as in ``fields``, the others as the resumed run had them (a budget
    and the folder excepted: ``PER_RUN``); the folder defaults to the checkpoint's."""
    saved = ckpt.load_run(resume)["config"]
    given = set(given)
    out = dict(fields)
    for key in fields:
        if key in PER_RUN or key in given:
            continue
        # older checkpoints: the split they were trained with
        out[key] = saved.get(key, {"val_split": "streams"}.get(key, fields[key]))
    if fields.get("out") is None:
        out["out"] = os.path.dirname(os.path.abspath(resume))
    return out


# The parts of the config that fix the model; a resumed run must agree on these.
MODEL_KEYS = ("mode", "cell", "hidden", "layers", "dtype")


def check_same_model(resume, saved, cfg):
    """A run with config ``cfg`` can continue the checkpoint ``resume`` of config ``saved``
    (a dict) only with the same model: else a ``CheckpointError`` names what differs."""
    diff = {k: (saved[k], getattr(cfg, k)) for k in MODEL_KEYS if saved[k] != getattr(cfg, k)}
    if diff:
        raise ckpt.CheckpointError(
            f"{resume} holds a different model: " + ", ".join(
                f"{k}={a!r} in the checkpoint vs {b!r} now" for k, (a, b) in diff.items())
            + "; pass the same settings or start a new run")
