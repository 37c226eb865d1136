"""Checkpoints: a tree of dicts/lists of numpy arrays and plain values in one ``.npz`` file.

The arrays are stored as uncompressed npz members, the rest of the tree as a JSON string
member (``__tree__``), so a checkpoint loads without pickle: opening one never executes code
from the file. Writes are atomic: a temporary file in the same directory, flushed and
fsync'ed, then ``os.replace``'d over the target, so a crash (or a full disk) mid-write leaves
the previous checkpoint intact.

Format version 2 (written since issue 19) makes a file that loads the file that was written:
every array node of the tree records its dtype, shape and the blake2b digest of its bytes,
and the member ``__checksum__`` holds the digest of the ``__tree__`` JSON text, so a flipped
bit anywhere in the payload is detected. Version 1 files (no digests) still load; the zip
CRC of each of their members is checked by reading every member to its end.

``load`` is the one reader. It reads the zip directory and each member's ``.npy`` header
first, and refuses, before allocating anything, a member whose declared size disagrees with
its stored size (``shape`` (2**40,) in a 1 kB member) or that is compressed (fastrnn never
compresses: a deflated member is how a 300 kB file expands to gigabytes). Every failure,
whatever its cause (bit flips, truncation, crafted headers, wrong types, deep JSON, missing
members or keys), is a ``CheckpointError``: "PATH is corrupt or not a fastrnn checkpoint:
<what>". ``load_run`` additionally checks the schema of a training run's checkpoint (the tree
``fastrnn.train`` saves): its keys and types, the model's tensors against the model its config
describes (before their data is read) and that every tensor is finite.
"""

import hashlib
import json
import os
import stat
import zipfile
from typing import NamedTuple

import numpy as np

from . import _files, cells
from ._npz import KINDS, ArraySpec, Unreadable, open_array, read_array

FORMAT = "fastrnn-checkpoint"
VERSION = 2
_TREE = "__tree__"
_CHECKSUM = "__checksum__"
_MAX_DEPTH = 64                 # nesting of the JSON tree (ours is 4 deep)
_MAX_TREE_BYTES = 64 << 20      # the __tree__ member (JSON as UCS-4): ours are a few kB
_DIGEST = 16                    # bytes of a blake2b digest


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used (corrupt, foreign, newer format, mismatched)."""


def _digest(data):
    return hashlib.blake2b(data, digest_size=_DIGEST).hexdigest()


def _array_digest(a):
    return _digest(np.ascontiguousarray(a).view(np.uint8).reshape(-1)) if a.size else _digest(b"")


# ---------------------------------------------------------------------------------- writing

def _split(tree, path, arrays):
    if isinstance(tree, np.ndarray):
        if tree.dtype.kind not in KINDS:
            raise TypeError(f"cannot store an array of dtype {tree.dtype} at {path or '/'} in a "
                            "checkpoint")
        key = f"a{len(arrays)}"
        a = np.ascontiguousarray(tree)
        arrays[key] = a
        return {"__array__": key, "dtype": a.dtype.str, "shape": list(a.shape),
                "blake2b": _array_digest(a)}
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


def save(path, tree):
    """Write ``tree`` to ``path`` atomically. Raises OSError naming the path if it cannot be
    written; an existing file at ``path`` is then left as it was."""
    arrays = {}
    skeleton = _split(tree, "", arrays)
    text = json.dumps({"format": FORMAT, "version": VERSION, "tree": skeleton})
    arrays[_TREE] = np.array(text)
    arrays[_CHECKSUM] = np.array("blake2b:" + _digest(text.encode("utf-8")))
    try:
        with _files.replacing(path) as f:
            np.savez(f, **arrays)
    except OSError as e:
        raise OSError(e.errno, f"could not write checkpoint {path}: {e.strerror}; "
                      "the previous checkpoint (if any) is intact") from e


# ---------------------------------------------------------------------------------- reading

def _read_text(zf, name):
    f, spec, fortran = open_array(zf, name)
    if spec.dtype.kind != "U" or spec.shape != () or spec.nbytes > _MAX_TREE_BYTES:
        raise Unreadable(f"the member {name!r} is not a text string (it holds {spec.shape} "
                         f"{spec.dtype})")
    return str(read_array(f, spec, fortran, name)[()])


def _walk_specs(node, version, depth, refs):
    """Validates the JSON tree; array nodes become ArraySpec (v2) or None (v1) and are
    collected in ``refs`` as (key, node)."""
    if depth > _MAX_DEPTH:
        raise Unreadable(f"the header is nested deeper than {_MAX_DEPTH} levels")
    if isinstance(node, dict):
        if "__array__" in node:
            keys = {"__array__"} if version == 1 else {"__array__", "dtype", "shape", "blake2b"}
            if set(node) != keys:
                raise Unreadable(f"an array entry of the header has the keys {sorted(node)}, "
                                 f"expected {sorted(keys)}")
            key = node["__array__"]
            if not isinstance(key, str) or key in (_TREE, _CHECKSUM) or key in refs:
                raise Unreadable(f"the header names the array {key!r} invalidly or twice")
            spec = None
            if version >= 2:
                shape, dt, dig = node["shape"], node["dtype"], node["blake2b"]
                if (not isinstance(shape, list) or not all(type(n) is int and n >= 0
                                                           for n in shape)
                        or not isinstance(dt, str) or not isinstance(dig, str)):
                    raise Unreadable(f"the header's entry of array {key!r} is malformed")
                try:
                    spec = ArraySpec(tuple(shape), np.dtype(dt))
                except TypeError:
                    raise Unreadable(f"the header gives array {key!r} the unknown dtype {dt!r}")
            refs[key] = (spec, node.get("blake2b"))
            return spec
        return {k: _walk_specs(v, version, depth + 1, refs) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk_specs(v, version, depth + 1, refs) for v in node]
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    raise Unreadable(f"the header holds a {type(node).__name__}")


class _Ref(NamedTuple):
    key: str


def _fill(node, values):
    """The tree with each _Ref(key) replaced by ``values[key]`` (an array or its ArraySpec)."""
    if isinstance(node, _Ref):
        return values[node.key]
    if isinstance(node, dict):
        return {k: _fill(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, values) for v in node]
    return node


def _refs(node):
    """The header tree with its array nodes replaced by _Ref(key) (already validated)."""
    if isinstance(node, dict):
        if "__array__" in node:
            return _Ref(node["__array__"])
        return {k: _refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_refs(v) for v in node]
    return node


def _check_regular(path):
    """Refuses what is not an existing regular file before opening it (a FIFO would block)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint {path} does not exist") from None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"{path} is a directory, not a checkpoint file")
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{path} is corrupt or not a fastrnn checkpoint: it is not a "
                              "regular file (a pipe, socket or device?)")


def load(path, check=None):
    """Read a checkpoint written by ``save``; raises CheckpointError with the reason.

    ``check(specs)``, if given, is called with the tree in which every array is an
    ``ArraySpec`` (shape and dtype as the header declares them) before any array data is
    read; a ``ValueError``/``TypeError``/``KeyError`` it raises is reported as a corrupt
    checkpoint with its message."""
    path = os.fspath(path)
    _check_regular(path)
    with open(path, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):   # replaced since the stat
            raise CheckpointError(f"{path} is corrupt or not a fastrnn checkpoint: it is not "
                                  "a regular file")
        try:
            return _load(fh, path, check)
        except CheckpointError:
            raise
        except Unreadable as e:
            raise CheckpointError(f"{path} is corrupt or not a fastrnn checkpoint: {e}") from None
        except zipfile.BadZipFile as e:
            raise CheckpointError(f"{path} is corrupt or not a fastrnn checkpoint: not a "
                                  f"readable .npz (zip) file, truncated or damaged ({e})") from None
        except RecursionError:
            raise CheckpointError(f"{path} is corrupt or not a fastrnn checkpoint: its header is "
                                  "nested too deeply") from None
        except MemoryError:
            raise CheckpointError(f"{path} is corrupt or not a fastrnn checkpoint: it declares "
                                  "more data than fits in memory") from None
        except Exception as e:        # any other parse failure of a damaged or crafted file
            raise CheckpointError(f"{path} is corrupt or not a fastrnn checkpoint: "
                                  f"{type(e).__name__}: {e}") from None


def _load(fh, path, check):
    with zipfile.ZipFile(fh) as zf:
        names = {i.filename for i in zf.infolist()}
        if _TREE + ".npy" not in names:
            raise Unreadable(f"it has no {_TREE} member (a NumPy .npz of something else?)")
        text = _read_text(zf, _TREE)
        try:
            header = json.loads(text)
        except ValueError as e:
            raise Unreadable(f"its header is not valid JSON ({e})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise Unreadable(f"its header is not a {FORMAT!r} header")
        version = header.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise Unreadable(f"its format version is {version!r}, not a positive integer")
        if version > VERSION:
            raise CheckpointError(f"{path} has checkpoint format {version}, newer than this "
                                  f"fastrnn supports ({VERSION}): upgrade fastrnn")
        if set(header) != {"format", "version", "tree"}:
            raise Unreadable(f"its header has the keys {sorted(header)}, expected "
                             "['format', 'tree', 'version']")
        if version >= 2:
            want = _read_text(zf, _CHECKSUM)
            if want != "blake2b:" + _digest(text.encode("utf-8", "surrogatepass")):
                raise Unreadable("the checksum of its header does not match (a damaged file)")
        refs = {}
        _walk_specs(header["tree"], version, 0, refs)
        tree = _refs(header["tree"])
        opened = {}
        for key, (declared, _) in refs.items():
            f, spec, fortran = open_array(zf, key)
            if declared is not None and (declared.shape, declared.dtype) != (spec.shape,
                                                                            spec.dtype):
                raise Unreadable(f"the member {key!r} holds {spec.shape} {spec.dtype}, its header "
                                 f"entry says {declared.shape} {declared.dtype}")
            opened[key] = (f, spec, fortran)
        if check is not None:
            try:
                check(_fill(tree, {k: v[1] for k, v in opened.items()}))
            except (ValueError, TypeError, KeyError) as e:
                raise Unreadable(str(e) if not isinstance(e, KeyError) else f"missing key {e}") \
                    from None
        arrays = {}
        for key, (f, spec, fortran) in opened.items():
            a = read_array(f, spec, fortran, key)
            digest = refs[key][1]
            if digest is not None and _array_digest(a) != digest:
                raise Unreadable(f"the checksum of array {key!r} does not match (a damaged file)")
            arrays[key] = a
    return _fill(tree, arrays)


# --------------------------------------------------------------- a training run's checkpoint

_RUN_KEYS = {"config": dict, "vocab": dict, "model": dict, "optimizer": dict,
             "scheduler": (dict, type(None)), "data": dict, "dropout_rng": dict,
             "hidden": (list, type(None)), "step": int, "tokens": int,
             "elapsed": (int, float), "best_val": (int, float, type(None))}


def model_shapes(cell, hidden, layers, vocab_size):
    """{name: shape} of the tensors of ``fastrnn.nn.CharRNN(vocab_size, hidden, layers, cell)``
    (its ``state_dict``), computed without building it."""
    G, H, V = cells.CELLS[cell].gates, hidden, vocab_size
    shapes = {}
    for layer in range(layers):
        shapes[f"rnn.weight_ih_l{layer}"] = (G * H, V if layer == 0 else H)
        shapes[f"rnn.weight_hh_l{layer}"] = (G * H, H)
        shapes[f"rnn.bias_ih_l{layer}"] = (G * H,)
        shapes[f"rnn.bias_hh_l{layer}"] = (G * H,)
    shapes["decoder.weight"] = (V, H)
    shapes["decoder.bias"] = (V,)
    return shapes


def _check_run(specs):
    """The schema of the tree ``fastrnn.train.Trainer`` saves, checked on the ArraySpecs."""
    if not isinstance(specs, dict):
        raise ValueError("it holds no training run (the tree is not a dict)")
    missing = [k for k in _RUN_KEYS if k not in specs]
    if missing:
        raise ValueError(f"it lacks the entries {missing} of a training run")
    for k, types in _RUN_KEYS.items():
        v = specs[k]
        if not isinstance(v, types) or (types is int and isinstance(v, bool)):
            raise ValueError(f"its entry {k!r} is a {type(v).__name__}")
    cfg = specs["config"]
    from .data import Vocab
    from .config import TrainConfig
    fields = {f for f in TrainConfig.__dataclass_fields__}
    unknown = sorted(set(cfg) - fields)
    if unknown:
        raise ValueError(f"its config has unknown settings {unknown}")
    checks = {"cell": lambda v: v in cells.NAMES,
              "mode": lambda v: v in ("char", "byte"),
              "dtype": lambda v: v in ("float32", "float64"),
              "hidden": lambda v: type(v) is int and v >= 1,
              "layers": lambda v: type(v) is int and v >= 1,
              "batch": lambda v: type(v) is int and v >= 1}
    for k, ok in checks.items():
        if k not in cfg or not ok(cfg[k]):
            raise ValueError(f"its config has an invalid {k}: {cfg.get(k)!r}")
    try:
        cfg_obj = TrainConfig(**cfg)
        cfg_obj.validate()
    except (TypeError, ValueError) as e:
        raise ValueError(f"its config is invalid: {e}") from None
    vocab = Vocab.from_json(specs["vocab"])
    if vocab.mode != cfg["mode"]:
        raise ValueError(f"its vocabulary is {vocab.mode}-mode, its config {cfg['mode']}")
    want = model_shapes(cfg["cell"], cfg["hidden"], cfg["layers"], vocab.size)
    model, dtype = specs["model"], np.dtype(cfg["dtype"])
    if set(model) != set(want):
        raise ValueError(f"its model tensors {sorted(model)} are not those of a "
                         f"{cfg['layers']}-layer {cfg['cell']} ({sorted(want)})")
    for name, shape in want.items():
        s = model[name]
        if not isinstance(s, ArraySpec) or s.shape != shape or s.dtype != dtype:
            got = f"{s.shape} {s.dtype}" if isinstance(s, ArraySpec) else type(s).__name__
            raise ValueError(f"model tensor {name} is {got}, the {cfg['cell']} "
                             f"{cfg['layers']} x {cfg['hidden']} of its config has {shape} "
                             f"{dtype}")
    shapes = set(want.values())
    for k, s in specs["optimizer"].items():
        if isinstance(s, ArraySpec) and (s.shape not in shapes or s.dtype != dtype):
            raise ValueError(f"optimizer state {k} is {s.shape} {s.dtype}, not the shape of a "
                             "model tensor")
    n_states = cells.get(cfg["cell"]).n_states
    if specs["hidden"] is not None:
        h = specs["hidden"]
        shape = (cfg["layers"], cfg["batch"], cfg["hidden"])
        if len(h) != n_states or not all(isinstance(s, ArraySpec) and s.shape == shape
                                         and s.dtype == dtype for s in h):
            raise ValueError(f"its carried state is not {n_states} array(s) {shape} {dtype}")
    for k in ("step", "tokens"):
        if specs[k] < 0:
            raise ValueError(f"its {k} is negative ({specs[k]})")


def _finite(node, where):
    if isinstance(node, np.ndarray):
        if node.dtype.kind in "fc" and not np.isfinite(node).all():
            return where
        return None
    items = node.items() if isinstance(node, dict) else \
        enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        bad = _finite(v, f"{where}[{k!r}]" if where else str(k))
        if bad:
            return bad
    return None


def load_run(path):
    """The checkpoint of a training run (``fastrnn train``'s ``checkpoint.npz``), with its
    schema checked (see ``_check_run``) and every tensor finite; raises CheckpointError."""
    tree = load(path, check=_check_run)
    for name, a in tree["model"].items():
        if not np.isfinite(a).all():
            raise CheckpointError(f"{path} is corrupt or not a fastrnn checkpoint: model tensor "
                                  f"{name} holds {int((~np.isfinite(a)).sum())} NaN or Inf "
                                  "value(s); fastrnn never saves such weights")
    bad = _finite({"optimizer": tree["optimizer"], "hidden": tree["hidden"]}, "")
    if bad:
        raise CheckpointError(f"{path} is corrupt or not a fastrnn checkpoint: {bad} holds NaN "
                              "or Inf values; fastrnn never saves such a state")
    return tree
