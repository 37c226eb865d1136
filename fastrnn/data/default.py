"""The default corpus: a text file built from this Python's standard library sources, so
training needs no download."""

from __future__ import annotations

import os
from typing import Optional, Union

from .. import _files
from .cache import cache_root

_DEFAULT_CORPUS_BYTES = 1_500_000
_DEFAULT_CORPUS_SKIP = {"this.py"}    # ROT13 text, not Python


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
    _files.atomic_write(path, b"".join(parts))
    return path
