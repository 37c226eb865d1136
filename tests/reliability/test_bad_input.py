"""Bad input to kernels and modules: a clear TypeError/ValueError before any compiled code
runs, or a correct result (non-contiguous and read-only inputs); never a crash, never an
out-of-bounds index inside a kernel. (tests/test_errors.py covers ranks, widths, mismatched
shapes, mixed and integer dtypes, NaN weights and T=0 for every cell and both backends.)"""

import numpy as np
import pytest

import fastrnn.kernels
import fastrnn.reference
from cells import CELL_NAMES, random_cell
from fastrnn import nn, optim

BACKENDS = {"reference": fastrnn.reference, "kernels": fastrnn.kernels}


@pytest.fixture(params=list(BACKENDS))
def ops(request):
    return BACKENDS[request.param]


setup = random_cell


def results(cell, x, states, params):
    hs, finals, cache = cell.forward(x, states, params)
    dx, dstates, dparams = cell.backward(np.ones_like(hs), cache)
    return [hs, *finals, dx, *dstates, *dparams]


def assert_all_equal(a, b, exact=True):
    """Kernels copy at the boundary (bit-identical); the NumPy reference may take another BLAS
    path for another layout (equal to round-off)."""
    assert len(a) == len(b)
    for u, v in zip(a, b):
        if exact:
            np.testing.assert_array_equal(u, v)
        else:
            np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)


def noncontiguous(a):
    """The same values in a strided (every other element of a wider array) layout."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    view = wide[..., ::2]
    assert not view.flags.c_contiguous
    return view


@pytest.mark.parametrize("name", CELL_NAMES)
@pytest.mark.parametrize("layout", ["strided", "fortran"])
def test_noncontiguous_inputs_give_the_contiguous_result(ops, name, layout):
    cell, x, states, params = setup(ops, name)
    want = results(cell, x, states, params)
    bend = noncontiguous if layout == "strided" else np.asfortranarray
    xs = bend(x)
    ss = tuple(noncontiguous(s) for s in states)
    ps = tuple(bend(p) if p.ndim > 1 else noncontiguous(p) for p in params)
    assert_all_equal(results(cell, xs, ss, ps), want, exact=ops is fastrnn.kernels)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_read_only_inputs_work_and_stay_unchanged(ops, name):
    cell, x, states, params = setup(ops, name)
    want = results(cell, x, states, params)
    frozen = [a.copy() for a in (x, *states, *params)]
    for a in frozen:
        a.flags.writeable = False
    got = results(cell, frozen[0], tuple(frozen[1:1 + len(states)]),
                  tuple(frozen[1 + len(states):]))
    assert_all_equal(got, want, exact=ops is fastrnn.kernels)
    for a, b in zip(frozen, (x, *states, *params)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_empty_batch_is_a_clear_error(ops, name):
    cell, x, states, params = setup(ops, name)
    with pytest.raises(ValueError, match="x must have T >= 1 and B >= 1"):
        cell.forward(x[:, :0], tuple(s[:0] for s in states), params)
    with pytest.raises(ValueError, match=r"x must have B >= 1, got shape \(B, D\) = \(0, 4\)"):
        cell.step_forward(x[0, :0], tuple(s[:0] for s in states), params)


def test_loss_targets_outside_the_vocabulary(ops):
    logits = np.zeros((2, 3, 5))
    for bad in (-1, 5, 10 ** 6):
        t = np.zeros((2, 3), np.int64)
        t[1, 2] = bad
        with pytest.raises(ValueError, match=r"targets must lie in \[0, V\) = \[0, 5\)"):
            ops.softmax_cross_entropy(logits, t)
    loss, _ = ops.softmax_cross_entropy(logits, np.full((2, 3), 4, np.uint8))   # any int type
    assert loss == pytest.approx(np.log(5))
    with pytest.raises(ValueError, match="T, B, V >= 1"):
        ops.softmax_cross_entropy(logits[:, :0], np.zeros((2, 0), np.int64))


# ---------------------------------------------------------------- modules

def model(dtype=np.float64, cell="lstm"):
    return nn.CharRNN(10, 8, 2, cell, dtype=dtype)


@pytest.mark.parametrize("bad", [10, 11, -1, 2 ** 40])
def test_token_ids_outside_the_vocabulary_never_reach_a_kernel(monkeypatch, bad):
    m = model()
    ids = np.zeros((4, 3), np.int64)
    ids[2, 1] = bad

    def kernel(*a, **k):
        raise AssertionError("a kernel was called with ids outside the vocabulary")
    for name in ("lstm_forward_proj", "lstm_forward"):
        monkeypatch.setattr(fastrnn.kernels, name, kernel)
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 10\) \(the vocabulary\)"):
        m.loss_and_grad(ids, np.zeros_like(ids))
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 10\)"):
        nn.Embedding(10, 4).forward(ids)


def test_token_ids_of_the_wrong_kind(monkeypatch):
    m = model()
    ids = np.zeros((4, 3), np.int64)
    with pytest.raises(TypeError, match="token ids must be an integer numpy array, got float64"):
        m.loss_and_grad(ids.astype(float), ids)
    with pytest.raises(TypeError, match="token ids must be an integer numpy array, got list"):
        m.loss_and_grad(ids.tolist(), ids)
    for bad in (ids[0], ids[:0], ids[:, :0], ids[None]):
        with pytest.raises(ValueError, match=r"token ids must have shape \(T, B\) with T, B >= 1"):
            m.loss_and_grad(bad, bad)
    with pytest.raises(ValueError, match=r"targets must have shape \(T, B\) = \(4, 3\)"):
        m.loss_and_grad(ids, ids[:2])
    with pytest.raises(ValueError, match=r"targets must lie in \[0, V\) = \[0, 10\)"):
        m.loss_and_grad(ids, ids + 10)


def test_noncontiguous_and_read_only_token_ids():
    m = model()
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 10, (4, 3))
    want, _ = m.loss(ids, ids)
    frozen = np.asfortranarray(ids)
    frozen.flags.writeable = False
    got, _ = m.loss(frozen, frozen)
    assert got == want
    for dt in (np.uint8, np.int16, np.uint32):
        assert m.loss(ids.astype(dt), ids.astype(dt))[0] == want


def test_state_of_the_wrong_shape_or_dtype():
    m = model()
    ids = np.zeros((4, 3), np.int64)
    h = np.zeros((2, 3, 8))
    with pytest.raises(ValueError, match=r"c must have shape \(num_layers, B, H\) = \(2, 3, 8\)"):
        m.loss_and_grad(ids, ids, (h, h[:, :2]))
    with pytest.raises(TypeError, match="h has dtype float32, the model has float64"):
        m.loss_and_grad(ids, ids, (h.astype(np.float32), h))
    with pytest.raises(TypeError, match=r"the LSTM state must be a tuple \(h, c\)"):
        m.loss_and_grad(ids, ids, h)


def test_recurrent_module_inputs_and_gradients():
    rec = nn.Recurrent("gru", 4, 5, 2, dtype=np.float64)
    x = np.random.default_rng(0).normal(size=(3, 2, 4))
    for bad, err, msg in [
        (x[0], ValueError, "x must have 3 dimensions"),
        (x[:0], ValueError, "T >= 1 and B >= 1"),
        (x[:, :0], ValueError, "T >= 1 and B >= 1"),
        (x.astype(np.int64), TypeError, "float32 or float64, got int64"),
        (x.astype(np.float32), ValueError, "dtype float64"),
        (x[:, :, :3], ValueError, r"x must have shape \(T, B, 4\)"),
    ]:
        with pytest.raises(err, match=msg):
            rec.forward(bad)
    out, _, cache = rec.forward(x)
    np.testing.assert_array_equal(rec.forward(np.asfortranarray(x))[0], out)
    with pytest.raises(ValueError, match=r"dhs must have shape \(T, B, H\) = \(3, 2, 5\)"):
        rec.backward(out[:2], cache)
    with pytest.raises(TypeError, match="dout must have dtype float32 or float64, got int64"):
        rec.backward(np.ones(out.shape, np.int64), cache)
    with pytest.raises(TypeError, match="dout has dtype float32, the model has float64"):
        rec.backward(out.astype(np.float32), cache)        # never cast silently


def test_linear_and_embedding_check_their_gradients():
    lin = nn.Linear(4, 3, dtype=np.float64)
    x = np.ones((2, 5, 4))
    out, cache = lin.forward(x)
    with pytest.raises(ValueError, match=r"dout must have shape \(\.\.\., 3\) with the forward "
                                         r"input's 10 rows"):
        lin.backward(out[:1], cache)                        # would read past the rows
    with pytest.raises(TypeError, match="dout must have dtype float64"):
        lin.backward(out.astype(np.float32), cache)
    with pytest.raises(ValueError, match=r"Linear expects input \(\.\.\., 4\) of dtype float64"):
        lin.forward(x.astype(np.int64))
    with pytest.raises(TypeError, match="Linear expects a numpy array, got list"):
        lin.forward(x.tolist())
    emb = nn.Embedding(10, 4, dtype=np.float64)
    ids = np.arange(6).reshape(3, 2)
    vec, ids_cache = emb.forward(ids)
    with pytest.raises(ValueError, match=r"dout must have shape = \(3, 2, 4\), got \(4, 2, 4\)"):
        emb.backward(np.ones((4, 2, 4)), ids_cache)          # would index past ids
    with pytest.raises(TypeError, match="dout must have dtype float64"):
        emb.backward(vec.astype(np.float32), ids_cache)


def test_linear_on_no_rows_is_an_empty_result():
    lin = nn.Linear(4, 3, dtype=np.float64)
    out, cache = lin.forward(np.ones((0, 2, 4)))
    assert out.shape == (0, 2, 3)
    dx = lin.backward(out, cache)
    assert dx.shape == (0, 2, 4)
    assert not lin.weight.grad.any() and not lin.bias.grad.any()


def test_sampler_inputs():
    s = model().sampler(1)
    with pytest.raises(ValueError, match=r"tokens must lie in \[0, 10\)"):
        s.step([10])
    with pytest.raises(ValueError, match=r"tokens must lie in \[0, 10\)"):
        s.step([-1])
    with pytest.raises(TypeError, match="tokens must be integers, got dtype float64"):
        s.step([1.7])                                        # was silently truncated to 1
    with pytest.raises(ValueError, match="expected 1 tokens, got 2"):
        s.step([1, 2])
    with pytest.raises(ValueError, match="n must be an int >= 0, got -1"):
        s.generate(0, -1)
    with pytest.raises(ValueError, match=r"token must be an int in \[0, 10\), got 10"):
        s.generate(10, 5)
    with pytest.raises(ValueError, match=r"token must be an int in \[0, 10\), got 1.5"):
        s.generate(1.5, 5)
    for t in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            s.generate(0, 5, temperature=t)
    assert s.generate(0, 0).shape == (0,)                    # n = 0: an empty result


def test_in_place_buffers_must_be_writeable():
    """Optimizers update .data and clipping scales .grad in place: a read-only or
    non-contiguous buffer is refused with a clear error, never silently copied."""
    p = nn.Parameter(np.zeros(5, np.float32))
    p.grad[:] = 1
    p.data.flags.writeable = False
    for opt in (optim.Adam, optim.RMSprop, optim.SGD):
        with pytest.raises(ValueError, match=r"params\[0\].data must be a C-contiguous, "
                                             "writeable array"):
            opt([p], lr=0.1).step()
    q = nn.Parameter(np.zeros(5, np.float32))
    q.grad = np.ones(5, np.float32)
    q.grad.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[0\].grad must be a C-contiguous, writeable"):
        optim.clip_grad_norm_([q], 1.0)
    m = nn.Linear(2, 2)
    m.weight.data.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        m.load_state_dict(m.state_dict())
