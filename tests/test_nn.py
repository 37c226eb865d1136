"""The module layer: same results as the reference path, token tables equal one-hot products,
gradients match finite differences, weights move to and from PyTorch exactly."""

import numpy as np
import pytest

from fastrnn import nn
from cells import rel_err

CELLS = [("lstm", "tanh"), ("gru", "tanh"), ("rnn", "tanh"), ("rnn", "relu")]


def grads(m):
    return {k: p.grad.copy() for k, p in m.named_parameters()}


@pytest.mark.parametrize("cell,nl", CELLS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_recurrent_kernels_equal_reference_backend(cell, nl, dtype):
    T, B, D, H = 5, 3, 4, 36
    kw = dict(num_layers=2, nonlinearity=nl, dtype=dtype, seed=3, learn_initial_state=True)
    mk = nn.Recurrent(cell, D, H, backend="kernels", **kw)
    mr = nn.Recurrent(cell, D, H, backend="reference", **kw)
    rng = np.random.default_rng(0)
    for p in mk.parameters():
        p.data[...] = rng.uniform(-0.3, 0.3, p.data.shape)
    mr.load_state_dict(mk.state_dict())
    x = rng.normal(size=(T, B, D)).astype(dtype)
    dout = rng.normal(size=(T, B, H)).astype(dtype)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    outs = []
    for m in (mk, mr):
        y, state, cache = m.forward(x)
        dx, ds0 = m.backward(dout, cache)
        outs.append((y, state, dx, ds0, grads(m)))
    (yk, sk, dxk, dsk, gk), (yr, sr, dxr, dsr, gr) = outs
    assert rel_err(yk, yr) < tol and rel_err(dxk, dxr) < tol
    as_tuple = (lambda s: s) if cell == "lstm" else (lambda s: (s,))  # noqa: E731
    for a, b in zip(as_tuple(sk) + as_tuple(dsk), as_tuple(sr) + as_tuple(dsr)):
        assert rel_err(a, b) < tol
    for k in gk:
        assert gk[k].dtype == dtype
        assert rel_err(gk[k], gr[k]) < tol, k


@pytest.mark.parametrize("cell,nl", CELLS)
def test_token_table_equals_one_hot_product(cell, nl):
    T, B, V, H = 6, 4, 11, 20
    kw = dict(num_layers=2, nonlinearity=nl, dtype=np.float64, seed=1, truncate=None)
    tok = nn.Recurrent(cell, V, H, token_input=True, **kw)
    dense = nn.Recurrent(cell, V, H, **kw)
    dense.load_state_dict(tok.state_dict())
    rng = np.random.default_rng(2)
    ids = rng.integers(0, V, (T, B))
    dout = rng.normal(size=(T, B, H))
    y1, _, c1 = tok.forward(ids)
    y2, _, c2 = dense.forward(np.eye(V)[ids])
    np.testing.assert_allclose(y1, y2, rtol=1e-12, atol=1e-13)
    tok.backward(dout, c1)
    dense.backward(dout, c2)
    g1, g2 = grads(tok), grads(dense)
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-10, atol=1e-12, err_msg=k)


def numeric(f, a, idx, eps=1e-6):
    old = a[idx]
    a[idx] = old + eps
    fp = f()
    a[idx] = old - eps
    fm = f()
    a[idx] = old
    return (fp - fm) / (2 * eps)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_charrnn_gradients_match_finite_differences(cell):
    V, H, T, B = 7, 9, 5, 3
    m = nn.CharRNN(V, H, num_layers=2, cell=cell, dtype=np.float64, seed=4)
    rng = np.random.default_rng(5)
    ids = rng.integers(0, V, (T, B))
    y = rng.integers(0, V, (T, B))
    m.zero_grad()
    m.loss_and_grad(ids, y)
    for name, p in m.named_parameters():
        for _ in range(3):
            idx = tuple(rng.integers(0, s) for s in p.data.shape)
            num = numeric(lambda: m.loss(ids, y)[0], p.data, idx)
            assert abs(num - p.grad[idx]) <= 1e-6 * max(1.0, abs(num)), (name, idx)


def test_learnable_initial_state_gradient():
    m = nn.Recurrent("lstm", 3, 5, num_layers=2, learn_initial_state=True, dtype=np.float64)
    rng = np.random.default_rng(0)
    m.h0.data[...] = rng.normal(size=m.h0.data.shape)
    m.c0.data[...] = rng.normal(size=m.c0.data.shape)
    x = rng.normal(size=(4, 2, 3))
    G = rng.normal(size=(4, 2, 5))
    y, _, cache = m.forward(x)
    m.backward(G, cache)
    for p in (m.h0, m.c0):
        for idx in [(0, 1), (1, 4)]:
            num = numeric(lambda: np.sum(m.forward(x)[0] * G), p.data, idx)
            assert abs(num - p.grad[idx]) < 1e-7 * max(1, abs(num))


def test_dropout_is_inverted_seeded_and_off_in_eval():
    kw = dict(num_layers=2, dropout=0.5, dtype=np.float64, seed=9)
    a, b = nn.Recurrent("gru", 4, 64, **kw), nn.Recurrent("gru", 4, 64, **kw)
    x = np.random.default_rng(0).normal(size=(3, 2, 4))
    ya, _, ca = a.forward(x)
    yb, _, _ = b.forward(x)
    np.testing.assert_array_equal(ya, yb)                        # same seed, same masks
    mask = ca[0][0].mask
    assert set(np.unique(mask)) == {0.0, 2.0}
    a.training = False
    y_eval, _, ce = a.forward(x)
    assert ce[0][0].mask is None


def test_step_equals_sequence_forward():
    m = nn.CharRNN(13, 24, num_layers=2, cell="lstm", dtype=np.float64)
    ids = np.random.default_rng(1).integers(0, 13, (6, 2))
    logits, _, _ = m.forward(ids)
    state = None
    for t in range(6):
        out, state = m.step(ids[t], state)
        np.testing.assert_allclose(out, logits[t], rtol=1e-12, atol=1e-12)


def test_bad_token_ids_and_states():
    m = nn.CharRNN(5, 8, num_layers=1, cell="gru")
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 5\)"):
        m.forward(np.array([[0, 5]]))
    with pytest.raises(TypeError, match="token ids must be an integer numpy array"):
        m.forward(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"h must have shape \(num_layers, B, H\)"):
        m.forward(np.zeros((2, 2), int), np.zeros((1, 3, 8), np.float32))
    with pytest.raises(ValueError, match="state dict does not match the model"):
        m.load_state_dict({"x": np.zeros(1)})


# ---------------------------------------------------------------- PyTorch parity

@pytest.mark.parametrize("cell,nl", CELLS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_from_torch_matches_torch_forward_and_gradients(cell, nl, dtype):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    kw = {"nonlinearity": nl} if cell == "rnn" else {}
    T, B, D, H = 7, 3, 5, 34
    tm = cls(D, H, num_layers=2, **kw).to(tdt)
    m = nn.from_torch(tm)
    x = np.random.default_rng(0).normal(size=(T, B, D)).astype(dtype)
    G = np.random.default_rng(1).normal(size=(T, B, H)).astype(dtype)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt, st = tm(xt)
    (yt * torch.from_numpy(G)).sum().backward()
    y, state, cache = m.forward(x)
    dx, _ = m.backward(G, cache)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    assert rel_err(y, yt.detach().numpy()) < tol
    hn = state[0] if cell == "lstm" else state
    hn_t = st[0] if cell == "lstm" else st
    assert rel_err(hn, hn_t.detach().numpy()) < tol
    assert rel_err(dx, xt.grad.numpy()) < tol
    for name, p in tm.named_parameters():
        assert rel_err(dict(m.named_parameters())[name].grad, p.grad.numpy()) < tol, name
    # and back
    back = nn.to_torch(m)
    for k, v in back.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), tm.state_dict()[k].numpy())


def test_linear_and_embedding_round_trip_torch():
    torch = pytest.importorskip("torch")
    lin, emb = torch.nn.Linear(6, 4), torch.nn.Embedding(9, 3)
    for tmod in (lin, emb):
        back = nn.to_torch(nn.from_torch(tmod))
        for k, v in back.state_dict().items():
            np.testing.assert_array_equal(v.numpy(), tmod.state_dict()[k].numpy())
