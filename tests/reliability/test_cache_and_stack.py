"""The corpus cache notices a corpus rewritten with its mtime set back (or replaced) and says
when it is damaged; the stack step validates its inputs before compiled code runs (issue 19)."""

import os

import numpy as np
import pytest

import fastrnn.kernels.stack as K
import fastrnn.reference.stack as R
from fastrnn import data as D
from reliability.helpers import TINY_ARGS, main


# ---------------------------------------------------------------- the corpus cache

def test_a_corpus_rewritten_with_its_mtime_set_back_is_reencoded(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("abcd " * 400)
    c1 = D.load_corpus(p, progress=False)
    st = os.stat(p)
    p.write_text("abcQ " * 400)                                     # same size, new symbol
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))               # mtime set back
    assert os.stat(p).st_mtime_ns == st.st_mtime_ns and os.path.getsize(p) == st.st_size
    c2 = D.load_corpus(p, progress=False)
    assert "Q" in c2.vocab.tokens and c2.vocab.decode(c2.ids) == "abcQ " * 400
    assert c1.meta["blake2b"] != c2.meta["blake2b"]


def test_a_corpus_replaced_by_another_file_is_reencoded(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("abcd " * 400)
    D.load_corpus(p, progress=False)
    st = os.stat(p)
    q = tmp_path / "new.txt"
    q.write_text("abcZ " * 400)
    os.utime(q, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(q, p)                                     # another inode, same size and mtime
    c = D.load_corpus(p, progress=False)
    assert c.vocab.decode(c.ids) == "abcZ " * 400


def test_a_damaged_id_cache_says_so_and_how_to_rebuild(capsys, tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("the cat sat on the mat " * 200)
    c = D.load_corpus(p, progress=False)
    ids_path, n = c.ids_path, len(c.ids)
    del c
    ids = np.load(ids_path, mmap_mode="r+")
    ids[n // 2] = 200                                    # a flipped byte: not a symbol id
    ids.flush()
    del ids
    with pytest.raises(ValueError, match=r"the token cache .* is damaged: its ids.npy holds the "
                                         r"id 200, outside the vocabulary of 10 symbols\. Delete "
                                         r"the cache to rebuild it from the corpus: rm -r '"):
        D.load_corpus(p, progress=False)
    out = tmp_path / "run"
    code, _, err = main(capsys, "train", p, "--out", out, "--steps", 1, *TINY_ARGS)
    assert code == 2 and "is damaged" in err and "rm -r" in err
    assert not out.exists()


# ---------------------------------------------------------------- the stack step

def stack_args(dtype=np.float64, cell="lstm", L=2, B=3, H=5, V=7):
    rng = np.random.default_rng(0)
    G = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}[cell]
    a = lambda *s: rng.uniform(-0.5, 0.5, s).astype(dtype)  # noqa: E731
    return [np.arange(B) % V, K.CELL_CODES[cell], a(V, G * H), a(L, G * H, H), a(L, G * H, H),
            a(L, G * H), a(L, G * H), a(V, H), a(V), a(L, B, H), a(L, B, H)]


@pytest.mark.parametrize("backend", [K, R], ids=["kernel", "reference"])
@pytest.mark.parametrize("change,err,msg", [
    ({0: np.array([0, 1, 10 ** 9])}, ValueError, r"tokens must lie in \[0, V\) = \[0, 7\)"),
    ({0: np.array([0, -1, 2])}, ValueError, r"tokens must lie in \[0, V\) = \[0, 7\)"),
    ({0: np.array([0.5, 1, 2])}, TypeError, "tokens must be integers, got dtype float64"),
    ({0: np.array([0, 1])}, ValueError, r"tokens must have shape \(B,\) = \(3\), got \(2\)"),
    ({1: 9}, ValueError, "cell must be one of the CELL_CODES"),
    ({1: 2.0}, ValueError, "cell must be one of the CELL_CODES"),
    ({3: "f32"}, TypeError, "w_ih has dtype float32 but h has dtype float64"),
    ({7: "f32"}, TypeError, "dec_w has dtype float32 but h has dtype float64"),
    ({9: "f32"}, TypeError, "c has dtype float64 but h has dtype float32"),
    ({4: "short"}, ValueError, r"w_hh must have shape \(L, G\*H, H\) = \(2, 20, 5\)"),
    ({2: "narrow"}, ValueError, r"table must have shape \(V, G\*H\) = \(7, 20\), got \(7, 19\)"),
    ({8: "short"}, ValueError, r"dec_b must have shape \(V,\) = \(7\), got \(6\)"),
    ({6: "int"}, TypeError, "b_hh must have dtype float32 or float64, got int64"),
    ({10: "frozen"}, ValueError, "c is updated in place and must be writeable"),
])
def test_stack_step_validates_its_inputs_first(backend, change, err, msg):
    """Token 10**9 made the kernel read out of bounds (a segfault); mixed dtypes raised
    numba's TypingError."""
    args = stack_args()
    for i, how in change.items():
        if not isinstance(how, str):
            args[i] = how
        elif how == "f32":
            args[i] = args[i].astype(np.float32)
        elif how == "short":
            args[i] = args[i][:-1]
        elif how == "narrow":
            args[i] = args[i][:, :-1]
        elif how == "int":
            args[i] = args[i].astype(np.int64)
        else:
            args[i].flags.writeable = False
    with pytest.raises(err, match=msg):
        backend.stack_step(*args)


def test_stack_step_still_equals_its_reference_after_the_checks():
    for cell in ("lstm", "gru", "rnn_tanh"):
        a, b = stack_args(cell=cell), stack_args(cell=cell)
        np.testing.assert_allclose(K.stack_step(*a), R.stack_step(*b), rtol=1e-12)
        np.testing.assert_allclose(a[9], b[9], rtol=1e-12)
