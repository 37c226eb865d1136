"""A checkpoint that loads is the checkpoint that was written (issue 19): bit flips anywhere
in the file, crafted or damaged headers, memory bombs, non-finite weights and non-regular files
are refused with one message, "PATH is corrupt or not a fastrnn checkpoint: <what>" (exit 2
from the CLI, nothing written), and checkpoints of format 1 (before checksums) still load."""

import json
import os
import pathlib
import random
import shutil
import signal
import tracemalloc
import zipfile

import numpy as np
import pytest

from fastrnn import checkpoint as ckpt
from fastrnn import sample, train
from reliability.helpers import files_under, main, tiny_cfg

V1 = pathlib.Path(__file__).parent / "data" / "v1-gru-checkpoint.npz"
CORRUPT = "is corrupt or not a fastrnn checkpoint"


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A finished tiny run (GRU, H=4): its checkpoint is ~10 kB."""
    d = tmp_path_factory.mktemp("small")
    corpus = d / "corpus.txt"
    corpus.write_text("the cat sat on the mat and the dog ran home fast " * 60)
    out = d / "run"
    train.Trainer(tiny_cfg(corpus, out, hidden=4, steps=3, cell="gru", checkpoint_every=10),
                  progress=False, log=lambda *a: None).run()
    return out / "checkpoint.npz"


def same_tree(a, b):
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and a.tobytes() == b.tobytes())
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_tree(a[k], b[k])
                                                                    for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same_tree, a, b))
    return type(a) is type(b) and a == b


def sweep(path, tmp_path, positions):
    """Flip one bit at each position; -> (#refused, #identical). Fails on a silent change or
    on any exception but CheckpointError."""
    data = bytearray(path.read_bytes())
    want = ckpt.load_run(path)
    p = tmp_path / "flipped.npz"
    refused = same = 0
    for pos in positions:
        bit = 1 << (pos * 5 % 8)
        data[pos] ^= bit
        p.write_bytes(data)
        data[pos] ^= bit
        try:
            got = ckpt.load_run(p)
        except ckpt.CheckpointError as e:
            assert CORRUPT in str(e) or "newer than this fastrnn" in str(e), (pos, e)
            refused += 1
            continue
        assert same_tree(want, got), f"a flip at byte {pos} loaded with different contents"
        same += 1
    return refused, same


def sampled_positions(path, n_structure, stride):
    """``n_structure`` bytes drawn (fixed seed) from the zip and .npy headers and the zip
    directory, and every ``stride``-th byte of the whole file."""
    data = path.read_bytes()
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        structure = set(range(z.start_dir, len(data)))
    for info in infos:
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        npy = 10 + int.from_bytes(data[start + 8:start + 10], "little")
        structure.update(range(info.header_offset, start + npy))
    drawn = random.Random(0).sample(sorted(structure), min(n_structure, len(structure)))
    return sorted(set(drawn) | set(range(0, len(data), stride)))


def test_bit_flips_are_refused_or_harmless(small_run, tmp_path):
    """Before checksums, 3 of 4,782 flips loaded different weights silently and 135 raised raw
    tracebacks. 500 bytes of the headers and every 64th byte (every byte of the file under
    ``-m soak``: test_every_single_bit_flip)."""
    positions = sampled_positions(small_run, 500, 64)
    refused, same = sweep(small_run, tmp_path, positions)
    assert refused > len(positions) / 2     # the rest: zip fields nobody reads (times, ...)
    print(f"{len(positions)} flips: {refused} refused, {same} loaded identical contents")


@pytest.mark.soak
@pytest.mark.parametrize("which", ["current", "format-1"])
def test_every_single_bit_flip(small_run, tmp_path, which):
    """Every byte of the file, one bit each (~20k loads, about a minute)."""
    path = small_run if which == "current" else V1
    size = os.path.getsize(path)
    refused, same = sweep(path, tmp_path, range(size))
    assert refused > size / 2
    print(f"{size} flips: {refused} refused, {same} loaded identical contents")


def test_bit_flips_in_a_format_1_checkpoint(tmp_path):
    """Format 1 has no digests: the zip CRC of every member, checked by reading each to its
    end, and the size checks must catch what the digests catch in format 2."""
    positions = sampled_positions(V1, 300, 128)
    refused, same = sweep(V1, tmp_path, positions)
    assert refused > len(positions) / 2


def test_format_1_checkpoints_still_load_sample_and_resume(capsys, tmp_path, corpus):
    """A checkpoint written before checksums (by fastrnn at 9779d66): every command uses it,
    and resuming it writes the current format."""
    old = tmp_path / "old" / "checkpoint.npz"
    old.parent.mkdir()
    shutil.copy(V1, old)
    tree = ckpt.load_run(old)
    assert tree["step"] == 3 and tree["config"]["cell"] == "gru"
    code, out, err = main(capsys, "info", old)
    assert code == 0 and "gru 1 x 8" in out and "trained 3 steps" in out, err
    code, out, err = main(capsys, "sample", old, "-n", 20, "--seed", 1)
    assert code == 0 and len(out) == 21, err
    code, out, err = main(capsys, "train", corpus, "--resume", old, "--steps", 5,
                          "--no-progress")
    assert code == 0, err
    new = ckpt.load_run(old)
    assert new["step"] == 5
    with zipfile.ZipFile(old) as z:
        assert "__checksum__.npy" in z.namelist()


# ---------------------------------------------------------------- crafted files

def craft(path, header, arrays=None, checksum=True):
    """A .npz with the given header (dict or raw text) and members, with a valid header
    checksum: what a careless converter or an attacker could write."""
    text = header if isinstance(header, str) else json.dumps(header)
    members = {"__tree__": np.array(text), **(arrays or {})}
    if checksum:
        members["__checksum__"] = np.array("blake2b:" + ckpt._digest(text.encode()))
    np.savez(path, **members)
    return path


def spec(a):
    return {"__array__": None, "dtype": a.dtype.str, "shape": list(a.shape),
            "blake2b": ckpt._array_digest(a)}


def resave(src, dst, edit):
    """The tree of checkpoint ``src``, changed by ``edit(tree)``, saved properly to ``dst``."""
    tree = ckpt.load(src)
    edit(tree)
    ckpt.save(dst, tree)
    return dst


def deep(n):
    return "[" * n + "]" * n


def drop(*keys):
    def edit(tree):
        node = tree
        for k in keys[:-1]:
            node = node[k]
        del node[keys[-1]]
    return edit


CRAFTED = {
    "version-is-a-string": (lambda p, run: craft(p, {"format": "fastrnn-checkpoint",
                                                     "version": "2", "tree": {}}),
                            "format version is '2', not a positive integer"),
    "no-tree": (lambda p, run: craft(p, {"format": "fastrnn-checkpoint", "version": 2}),
                "its header has the keys ['format', 'version']"),
    "missing-member": (lambda p, run: craft(p, {"format": "fastrnn-checkpoint", "version": 2,
                                                "tree": {"w": dict(spec(np.zeros(3)),
                                                                   __array__="a0")}}),
                       "the member 'a0' is missing"),
    "deep-json": (lambda p, run: craft(p, '{"format": "fastrnn-checkpoint", "version": 2, '
                                          '"tree": ' + deep(100000) + "}"),
                  "nested too deeply"),
    "nested-65": (lambda p, run: craft(p, '{"format": "fastrnn-checkpoint", "version": 2, '
                                          '"tree": ' + deep(70) + "}"),
                  "nested deeper than 64 levels"),
    "bad-json": (lambda p, run: craft(p, '{"format": "fastrnn-checkpoint", "version": 2, "tr'),
                 "its header is not valid JSON"),
    "no-checksum": (lambda p, run: craft(p, {"format": "fastrnn-checkpoint", "version": 2,
                                             "tree": {}}, checksum=False),
                    "the member '__checksum__' is missing"),
    "not-a-run": (lambda p, run: craft(p, {"format": "fastrnn-checkpoint", "version": 2,
                                           "tree": {"anything": 1}}),
                  "it lacks the entries ['config', 'vocab'"),
    "no-step": (lambda p, run: resave(run, p, drop("step")), "it lacks the entries ['step']"),
    "no-optimizer": (lambda p, run: resave(run, p, drop("optimizer")),
                     "it lacks the entries ['optimizer']"),
    "no-model-tensor": (lambda p, run: resave(run, p, drop("model", "rnn.bias_hh_l0")),
                        "its model tensors"),
    "wrong-shape": (lambda p, run: resave(run, p, lambda t: t["model"].update(
        {"decoder.bias": np.zeros(3, np.float32)})), "model tensor decoder.bias is (3,) float32"),
    "wrong-dtype": (lambda p, run: resave(run, p, lambda t: t["model"].update(
        {"decoder.bias": t["model"]["decoder.bias"].astype(np.float64)})),
        "model tensor decoder.bias is"),
    "step-is-text": (lambda p, run: resave(run, p, lambda t: t.update(step="12")),
                     "its entry 'step' is a str"),
    "config-cell": (lambda p, run: resave(run, p, lambda t: t["config"].update(cell="tcn")),
                    "its config has an invalid cell: 'tcn'"),
    "config-unknown": (lambda p, run: resave(run, p, lambda t: t["config"].update(foo=1)),
                       "its config has unknown settings ['foo']"),
    "vocab": (lambda p, run: resave(run, p, lambda t: t.update(vocab={"tokens": 3})),
              "vocabulary"),
    "optimizer-state": (lambda p, run: resave(run, p, lambda t: t["optimizer"].update(
        {"square_avg.0": np.zeros(5, np.float32)})), "optimizer state square_avg.0 is (5,)"),
    "optimizer-kind": (lambda p, run: resave(run, p, lambda t: t["optimizer"].update(
        optimizer="SGD")), "its state does not fit this run"),
    "hidden": (lambda p, run: resave(run, p, lambda t: t.update(
        hidden=[np.zeros((1, 2, 4), np.float32)])), "its carried state is not 1 array"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_checkpoints_are_refused_by_every_command(capsys, tmp_path, small_run, corpus,
                                                           case):
    make, what = CRAFTED[case]
    run = tmp_path / "run"
    run.mkdir()
    p = make(run / "checkpoint.npz", small_run)
    before = {f: (run / f).read_bytes() for f in files_under(run)}
    commands = [["info", p], ["sample", p, "-n", 5], ["eval", p, corpus],
                ["train", "--resume", p, "--steps", 5, "--no-progress"]]
    if case == "optimizer-kind":                 # only resuming reads the optimizer state
        commands = commands[-1:]
    for cmd in commands:
        code, out, err = main(capsys, *cmd)
        assert code == 2, (cmd, err)
        assert f"error: {p} {CORRUPT}: " in err and what in err, (cmd, err)
    assert {f: (run / f).read_bytes() for f in files_under(run)} == before
    if case != "optimizer-kind":
        with pytest.raises(ckpt.CheckpointError, match=CORRUPT):
            sample.load_model(p)


def npy_member(shape, dtype="<f8", data=b""):
    """The bytes of a .npy file whose header declares ``shape``, followed by ``data``."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": tuple(shape)}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + data


def bomb_file(path, member):
    """A format 1 file whose member a0 is ``member`` (bytes) or written by ``member(zip)``."""
    text = json.dumps({"format": "fastrnn-checkpoint", "version": 1,
                       "tree": {"w": {"__array__": "a0"}}})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__tree__.npy", npy_member((), f"<U{len(text)}",
                                              text.encode("utf-32-le")))
        if callable(member):
            member(z)
        else:
            z.writestr("a0.npy", member)
    return path


def test_memory_bombs_are_refused_before_allocating(tmp_path):
    """A header declaring (2**40,) float64 (8 TiB) in a 1 kB member, and a deflated member that
    expands to 357 MiB (64 MiB here), used to allocate (or try to) before failing."""
    huge = bomb_file(tmp_path / "huge.npz", npy_member((2 ** 40,), data=bytes(1000)))
    with pytest.raises(ckpt.CheckpointError, match=r"the member 'a0' declares shape "
                       r"\(1099511627776,\) of float64 \(8,796,093,022,208 bytes\) but stores "
                       "1,000 bytes"):
        ckpt.load(huge)

    def deflated(z):
        info = zipfile.ZipInfo("a0.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w", force_zip64=True) as f:
            n = 64 << 20
            f.write(npy_member((n // 8,)))
            block = bytes(1 << 22)
            for _ in range(n // len(block)):
                f.write(block)
    zip_bomb = bomb_file(tmp_path / "zip.npz", deflated)
    assert os.path.getsize(zip_bomb) < 1 << 18
    tracemalloc.start()
    try:
        with pytest.raises(ckpt.CheckpointError, match="the member 'a0' is compressed"):
            ckpt.load(zip_bomb)
        with pytest.raises(ckpt.CheckpointError, match="declares shape"):
            ckpt.load(huge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20                                 # nothing big was ever allocated


def test_a_model_the_file_cannot_hold_is_refused_before_allocating(tmp_path, small_run):
    """A header describing a model of hidden 10**9 with matching declared shapes: the members
    cannot hold it, which is found before any array is read or any model built."""
    tree = ckpt.load(small_run)
    tree["config"]["hidden"] = 10 ** 9
    p = tmp_path / "c.npz"
    ckpt.save(p, tree)
    with pytest.raises(ckpt.CheckpointError, match=r"model tensor rnn.weight_ih_l0 is "
                       r"\(12, \d+\) float32, the gru 1 x 1000000000 of its config has "
                       r"\(3000000000, \d+\)"):
        ckpt.load_run(p)


@pytest.mark.parametrize("where", ["model", "optimizer", "hidden"])
def test_non_finite_tensors_are_refused_naming_them(capsys, tmp_path, small_run, corpus, where):
    """A foreign checkpoint with NaN weights: sample printed 40 newlines, eval 'nan
    nats/char', train --resume advised lowering --lr, all with exit 0."""
    def edit(t):
        if where == "model":
            t["model"]["rnn.weight_hh_l0"][1, 2] = np.nan
        elif where == "optimizer":
            t["optimizer"]["square_avg.1"][0] = np.inf
        else:
            t["hidden"][0][0, 1, 2] = -np.inf
    p = resave(small_run, tmp_path / "checkpoint.npz", edit)
    name = {"model": "model tensor rnn.weight_hh_l0 holds 1 NaN or Inf value",
            "optimizer": "optimizer['square_avg.1'] holds NaN or Inf",
            "hidden": "hidden[0] holds NaN or Inf"}[where]
    for cmd in (["info", p], ["sample", p, "-n", 40, "--seed", 1], ["eval", p, corpus],
                ["train", "--resume", p, "--steps", 5, "--no-progress"]):
        code, out, err = main(capsys, *cmd)
        assert code == 2 and f"{p} {CORRUPT}: {name}" in err, (cmd, err)
    with pytest.raises(ckpt.CheckpointError, match=name.replace("[", r"\[")):
        sample.load_model(p)


@pytest.fixture
def alarm():
    """Fails a test that blocks (e.g. opening a FIFO) instead of hanging the suite."""
    def hung(*a):
        raise TimeoutError("blocked")
    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_non_regular_files_are_refused_not_waited_on(capsys, tmp_path, small_run, alarm):
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    for cmd in (["info", fifo], ["sample", fifo], ["train", "--resume", fifo, "--steps", 1]):
        code, out, err = main(capsys, *cmd)
        assert code == 2 and f"{fifo} {CORRUPT}: it is not a regular file" in err, (cmd, err)
    text = tmp_path / "text-fifo"
    os.mkfifo(text)
    code, out, err = main(capsys, "eval", small_run, text)
    assert code == 2 and f"{text} is not a regular file (a pipe or device?)" in err, err


def test_numpy_savez_files_of_other_kinds(tmp_path):
    """Object arrays (pickles), records and compressed members are refused by name."""
    header = np.array('{"format": "fastrnn-checkpoint", "version": 1, "tree": {"__array__": '
                      '"a0"}}')
    np.savez(tmp_path / "o.npz", __tree__=header, a0=np.array([{}], dtype=object))
    with pytest.raises(ckpt.CheckpointError, match="the member 'a0' holds object values"):
        ckpt.load(tmp_path / "o.npz")
    np.savez(tmp_path / "r.npz", __tree__=header, a0=np.zeros(2, [("x", "<f4"), ("y", "<i4")]))
    with pytest.raises(ckpt.CheckpointError, match="the member 'a0' holds .* values"):
        ckpt.load(tmp_path / "r.npz")
    np.savez_compressed(tmp_path / "z.npz", __tree__=header)
    with pytest.raises(ckpt.CheckpointError, match="the member '__tree__' is compressed"):
        ckpt.load(tmp_path / "z.npz")
