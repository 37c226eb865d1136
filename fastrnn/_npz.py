"""Reading the ``.npy`` members of an ``.npz`` (zip) file without pickle: each member's zip
entry and ``.npy`` header are checked against its stored size before anything is allocated
(a member declaring shape (2**40,) in 1 kB, or compressed, is refused), and only plain
numbers and strings are read. ``fastrnn.checkpoint`` reads its files with these.
"""

import io
import math
import re
import warnings
import zipfile
from typing import NamedTuple

import numpy as np

KINDS = "biufcUS"              # array kinds a checkpoint may hold (never objects or voids)


class ArraySpec(NamedTuple):
    """What the header of a checkpoint declares about an array before its data is read."""
    shape: tuple
    dtype: np.dtype

    @property
    def nbytes(self):
        return math.prod(self.shape) * self.dtype.itemsize


class Unreadable(Exception):
    """Why a file cannot be read (a member here; its header or tree in ``checkpoint.load``,
    which turns it into a ``CheckpointError`` naming the file)."""


def _member(zf, name):
    """The ZipInfo of member ``name`` (``name.npy``), checked to be stored uncompressed."""
    infos = [i for i in zf.infolist() if i.filename == name + ".npy"]
    if not infos:
        raise Unreadable(f"the member {name!r} is missing")
    if len(infos) > 1:
        raise Unreadable(f"the member {name!r} occurs {len(infos)} times")
    info = infos[0]
    if info.compress_type != zipfile.ZIP_STORED:
        raise Unreadable(f"the member {name!r} is compressed (method {info.compress_type}); "
                         "fastrnn writes its checkpoints uncompressed")
    return info


# the header numpy writes: "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"
_NPY_HEADER = re.compile(r"\{'descr': '([<>|=]?[A-Za-z]\d*)', 'fortran_order': (True|False), "
                         r"'shape': \((\d+(?:, \d+)*,?)?\), \} *\n")


def _npy_header(f, name):
    """-> (shape, fortran_order, dtype, data offset) of the .npy member open in ``f``."""
    start = f.read(8)
    if len(start) != 8 or start[:6] != b"\x93NUMPY":
        raise Unreadable(f"the member {name!r} is not a .npy array")
    version = (start[6], start[7])
    if version not in ((1, 0), (2, 0)):
        raise Unreadable(f"the member {name!r} has .npy format {version[0]}.{version[1]}, not 1.0 "
                         "or 2.0")
    size_field = f.read(2 if version == (1, 0) else 4)
    n = int.from_bytes(size_field, "little")
    if len(size_field) not in (2, 4) or n > 10000:
        raise Unreadable(f"the member {name!r} has a .npy header of {n} bytes")
    raw = f.read(n)
    if len(raw) != n:
        raise Unreadable(f"the member {name!r} ends inside its .npy header")
    m = _NPY_HEADER.fullmatch(raw.decode("latin1"))
    if m is not None:                              # the fast path: what numpy writes
        descr, fortran, dims = m.groups()
        shape = tuple(int(d) for d in dims.replace(",", " ").split()) if dims else ()
        dtype = np.dtype(descr)
        fortran = fortran == "True"
    else:                                          # another writer's layout: numpy's parser
        with warnings.catch_warnings():
            warnings.simplefilter("error")          # a header that needs repairs is corrupt
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read(io.BytesIO(size_field + raw))
    return shape, fortran, dtype, 8 + len(size_field) + n


def open_array(zf, name):
    """-> (open member positioned at the data, ArraySpec, fortran_order), after checking the
    ``.npy`` header against the member's stored size (nothing allocated yet)."""
    info = _member(zf, name)
    f = zf.open(info)
    try:
        shape, fortran, dtype, header = _npy_header(f, name)
        if dtype.hasobject or dtype.kind not in KINDS or dtype.fields is not None:
            raise Unreadable(f"the member {name!r} holds {dtype} values (a pickle or a record); "
                             "checkpoints hold numbers only")
        if any(not isinstance(n, int) or n < 0 for n in shape):
            raise Unreadable(f"the member {name!r} declares the invalid shape {shape}")
        spec = ArraySpec(tuple(shape), dtype)
        if header + spec.nbytes != info.file_size:
            raise Unreadable(f"the member {name!r} declares shape {spec.shape} of {dtype} "
                             f"({spec.nbytes:,} bytes) but stores "
                             f"{info.file_size - header:,} bytes")
    except BaseException:
        f.close()
        raise
    return f, spec, fortran


def read_array(f, spec, fortran, name):
    buf = bytearray(spec.nbytes)
    view, got = memoryview(buf), 0
    while got < len(buf):
        n = f.readinto(view[got:])
        if not n:
            raise Unreadable(f"the member {name!r} ends early")
        got += n
    if f.read(1):                                   # also makes zipfile check the CRC
        raise Unreadable(f"the member {name!r} holds more bytes than its header declares")
    f.close()
    a = np.frombuffer(buf, spec.dtype)              # writeable: the buffer is a bytearray
    return a.reshape(spec.shape, order="F" if fortran else "C")
