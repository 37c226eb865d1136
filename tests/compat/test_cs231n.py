"""fastrnn.compat.cs231n against a plain-NumPy transcription of cs231n's rnn_layers.py.

The transcription below is written from the published equations (cs231n assignment 3: a
per-step forward, a per-step hand-derived backward, loops over time), batch-major, with
right-multiplied weights and the LSTM gate order i, f, o, g; the GRU twins follow the
equations in ``fastrnn.compat.cs231n``'s docstring. Every compat function must match it to
1e-10 in float64, forward values and every gradient.
"""

import io
import contextlib

import numpy as np
import pytest

from cells import rel_err
from fastrnn.compat import cs231n as C

TOL = 1e-10


# ================================================================ the transcription

def sigmoid(x):
    """A numerically stable version of the logistic sigmoid function."""
    pos_mask = (x >= 0)
    neg_mask = (x < 0)
    z = np.zeros_like(x)
    z[pos_mask] = np.exp(-x[pos_mask])
    z[neg_mask] = np.exp(x[neg_mask])
    top = np.ones_like(x)
    top[neg_mask] = z[neg_mask]
    return top / (1 + z)


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x.dot(Wx) + prev_h.dot(Wh) + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h ** 2)
    return da.dot(Wx.T), da.dot(Wh.T), x.T.dot(da), prev_h.T.dot(da), da.sum(axis=0)


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x.dot(Wx) + prev_h.dot(Wh) + b
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H:2 * H])
    o = sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c)


def lstm_step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tc = np.tanh(next_c)
    do = dnext_h * tc
    dc = dnext_c + dnext_h * o * (1 - tc ** 2)
    di, df, dg = dc * g, dc * prev_c, dc * i
    dprev_c = dc * f
    da = np.hstack([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g ** 2)])
    return (da.dot(Wx.T), da.dot(Wh.T), dprev_c, x.T.dot(da), prev_h.T.dot(da),
            da.sum(axis=0))


def gru_step_forward(x, prev_h, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x.dot(Wx) + b
    ah = prev_h.dot(Wh)
    r = sigmoid(a[:, :H] + ah[:, :H])
    z = sigmoid(a[:, H:2 * H] + ah[:, H:2 * H])
    n = np.tanh(a[:, 2 * H:] + r * ah[:, 2 * H:])
    next_h = (1 - z) * n + z * prev_h
    return next_h, (x, prev_h, Wx, Wh, r, z, n, ah[:, 2 * H:])


def gru_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, r, z, n, ah_n = cache
    dn = dnext_h * (1 - z)
    dz = dnext_h * (prev_h - n)
    dan = dn * (1 - n ** 2)
    dar = dan * ah_n * r * (1 - r)
    daz = dz * z * (1 - z)
    da = np.hstack([dar, daz, dan])                      # w.r.t. x @ Wx + b
    dah = np.hstack([dar, daz, dan * r])                 # w.r.t. prev_h @ Wh
    return (da.dot(Wx.T), dnext_h * z + dah.dot(Wh.T), x.T.dot(da), prev_h.T.dot(dah),
            da.sum(axis=0))


def seq_forward(step, x, h0, Wx, Wh, b, lstm=False):
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]))
    prev_h, prev_c, caches = h0, np.zeros_like(h0), []
    for t in range(T):
        if lstm:
            prev_h, prev_c, c = step(x[:, t, :], prev_h, prev_c, Wx, Wh, b)
        else:
            prev_h, c = step(x[:, t, :], prev_h, Wx, Wh, b)
        h[:, t, :] = prev_h
        caches.append(c)
    return h, caches


def seq_backward(step_back, dh, caches, D, lstm=False):
    N, T, H = dh.shape
    dx = np.zeros((N, T, D))
    dprev_h, dprev_c = np.zeros((N, H)), np.zeros((N, H))
    dWx = dWh = db = 0
    for t in reversed(range(T)):
        if lstm:
            dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = step_back(
                dh[:, t] + dprev_h, dprev_c, caches[t])
        else:
            dx[:, t], dprev_h, dWx_t, dWh_t, db_t = step_back(dh[:, t] + dprev_h, caches[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dprev_h, dWx, dWh, db


def temporal_softmax_loss(x, y, mask):
    N, T, V = x.shape
    x_flat, y_flat, mask_flat = x.reshape(N * T, V), y.reshape(N * T), mask.reshape(N * T)
    probs = np.exp(x_flat - np.max(x_flat, axis=1, keepdims=True))
    probs /= np.sum(probs, axis=1, keepdims=True)
    loss = -np.sum(mask_flat * np.log(probs[np.arange(N * T), y_flat])) / N
    dx_flat = probs.copy()
    dx_flat[np.arange(N * T), y_flat] -= 1
    dx_flat /= N
    dx_flat *= mask_flat[:, None]
    return loss, dx_flat.reshape(N, T, V)


# ================================================================ helpers

CELLS = {  # name -> (gates, step forward, step backward, is lstm)
    "rnn": (1, rnn_step_forward, rnn_step_backward, False),
    "lstm": (4, lstm_step_forward, lstm_step_backward, True),
    "gru": (3, gru_step_forward, gru_step_backward, False),
}


def make(rng, gates, N=3, T=4, D=5, H=6, scale=0.5):
    u = lambda *s: rng.uniform(-scale, scale, s)  # noqa: E731
    return u(N, T, D), u(N, H), u(D, gates * H), u(H, gates * H), u(gates * H)


def close(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert np.shape(g) == np.shape(w)
        assert rel_err(g, w) < TOL, rel_err(g, w)


# ================================================================ cells

@pytest.mark.parametrize("cell", list(CELLS))
def test_step_forward_and_backward_match(cell):
    rng = np.random.default_rng(1)
    gates, fwd, bwd, lstm = CELLS[cell]
    x, h0, Wx, Wh, b = make(rng, gates)
    x = x[:, 0]
    dnext = rng.standard_normal(h0.shape)
    if lstm:
        c0 = rng.uniform(-1, 1, h0.shape)
        dnext_c = rng.standard_normal(h0.shape)
        h, c, cache = C.lstm_step_forward(x, h0, c0, Wx, Wh, b)
        h_ref, c_ref, cache_ref = fwd(x, h0, c0, Wx, Wh, b)
        close((h, c), (h_ref, c_ref))
        close(C.lstm_step_backward(dnext, dnext_c, cache), bwd(dnext, dnext_c, cache_ref))
    else:
        h, cache = getattr(C, f"{cell}_step_forward")(x, h0, Wx, Wh, b)
        h_ref, cache_ref = fwd(x, h0, Wx, Wh, b)
        close((h,), (h_ref,))
        close(getattr(C, f"{cell}_step_backward")(dnext, cache), bwd(dnext, cache_ref))


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("N,T,D,H", [(3, 4, 5, 6), (1, 7, 2, 3), (4, 1, 3, 2)])
def test_sequence_forward_and_backward_match(cell, N, T, D, H):
    rng = np.random.default_rng(2)
    gates, fwd, bwd, lstm = CELLS[cell]
    x, h0, Wx, Wh, b = make(rng, gates, N, T, D, H)
    h, cache = getattr(C, f"{cell}_forward")(x, h0, Wx, Wh, b)
    h_ref, caches = seq_forward(fwd, x, h0, Wx, Wh, b, lstm)
    close((h,), (h_ref,))
    dh = rng.standard_normal(h.shape)
    got = getattr(C, f"{cell}_backward")(dh, cache)
    close(got, seq_backward(bwd, dh, caches, D, lstm))
    # the cache can be used again, and the outputs are fresh C-ordered arrays
    close(getattr(C, f"{cell}_backward")(dh, cache), got)
    assert all(a.flags.c_contiguous for a in (h,) + tuple(got))


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("N,T,D,H", [(1, 1, 1, 1), (1, 5, 3, 9), (7, 3, 4, 5)])
def test_sequence_serial_and_split_paths_match(cell, N, T, D, H, monkeypatch):
    """Both ways a sequence call runs: one serial call per loop with micro-GEMM products
    (small problems) and the products and loops split over threads (here forced with a
    tiny work threshold), float64 and float32, incl. T=1, N=1, H=1 and odd sizes."""
    from fastrnn.kernels import _blocks

    rng = np.random.default_rng(7)
    gates, fwd, bwd, lstm = CELLS[cell]
    x, h0, Wx, Wh, b = make(rng, gates, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    h_ref, caches = seq_forward(fwd, x, h0, Wx, Wh, b, lstm)
    want = (h_ref,) + tuple(seq_backward(bwd, dh, caches, D, lstm))
    for rule in (_blocks.MIN_MACS_PER_THREAD, 1):
        monkeypatch.setattr(_blocks, "MIN_MACS_PER_THREAD", rule)
        h, cache = getattr(C, f"{cell}_forward")(x, h0, Wx, Wh, b)
        close((h,) + tuple(getattr(C, f"{cell}_backward")(dh, cache)), want)
        f32 = [a.astype(np.float32) for a in (x, h0, Wx, Wh, b)]
        h, cache = getattr(C, f"{cell}_forward")(*f32)
        got = (h,) + tuple(getattr(C, f"{cell}_backward")(dh.astype(np.float32), cache))
        for g, w in zip(got, want):
            assert g.dtype == np.float32 and rel_err(g, w) < 1e-5


@pytest.mark.parametrize("cell", list(CELLS))
def test_converted_weights_follow_in_place_changes(cell):
    """The weights' conversion is kept between calls only while their bits are unchanged:
    an element changed in place (as a gradient check does), a new array and a float32 copy
    all give the results of the weights as they are now."""
    rng = np.random.default_rng(8)
    gates, fwd, bwd, lstm = CELLS[cell]
    x, h0, Wx, Wh, b = make(rng, gates, 2, 3, 4, 5)
    dh = rng.standard_normal((2, 3, 5))
    run = getattr(C, f"{cell}_forward"), getattr(C, f"{cell}_backward")

    def check():
        h, cache = run[0](x, h0, Wx, Wh, b)
        h_ref, caches = seq_forward(fwd, x, h0, Wx, Wh, b, lstm)
        close((h,) + tuple(run[1](dh, cache)),
              (h_ref,) + tuple(seq_backward(bwd, dh, caches, D=4, lstm=lstm)))

    check()
    for W in (Wx, Wh):
        for ix in [(0, 0), (W.shape[0] - 1, W.shape[1] - 1)]:
            W[ix] += 1e-3                                # one element, in place
            check()
        W *= -1.0                                        # all of them
        check()
    Wh = Wh.copy()                                       # a new array
    check()
    h_ref, caches = seq_forward(fwd, x, h0, Wx.copy(), Wh.copy(), b, lstm)
    want = seq_backward(bwd, dh, caches, 4, lstm)
    h, cache = run[0](x, h0, Wx, Wh, b)                  # a backward uses the weights its
    Wh[...] = 0                                          # own forward used
    Wx[...] = 0
    close(run[1](dh, cache), want)


def test_converted_weights_see_a_change_in_any_block():
    """The bits are compared block by block: a change past the first block of a weight of
    several thousand elements (here in the middle and at the end) is seen too."""
    rng = np.random.default_rng(10)
    gates, fwd, bwd, lstm = CELLS["lstm"]
    N, T, D, H = 1, 3, 40, 30                            # Wx 4800 elements, Wh 3600
    x, h0, Wx, Wh, b = make(rng, gates, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    for W in (Wx, Wh):
        for ix in [(W.shape[0] // 2, 7), (W.shape[0] - 1, W.shape[1] - 1)]:
            C.lstm_forward(x, h0, Wx, Wh, b)             # converted and kept
            W[ix] += 1e-3                                # then changed in place
            h, cache = C.lstm_forward(x, h0, Wx, Wh, b)
            h_ref, caches = seq_forward(fwd, x, h0, Wx, Wh, b, lstm)
            close((h,) + tuple(C.lstm_backward(dh, cache)),
                  (h_ref,) + tuple(seq_backward(bwd, dh, caches, D, lstm)))


@pytest.mark.parametrize("name", ["x", "h0", "Wx", "Wh", "b"])
def test_nan_or_inf_is_refused(name):
    rng = np.random.default_rng(9)
    args = dict(zip(["x", "h0", "Wx", "Wh", "b"], make(rng, 4)))
    C.lstm_forward(**args)                               # cached conversion of the weights
    args[name] = args[name].copy()
    args[name].reshape(-1)[-1] = np.inf if name == "Wh" else np.nan
    with pytest.raises(ValueError, match=f"lstm_forward: {name} contains NaN or Inf"):
        C.lstm_forward(**args)


def test_gru_transcription_against_finite_differences():
    """The GRU twins have no published original: check the transcribed backward (which the
    compat functions match above) against central differences of the compat forward."""
    rng = np.random.default_rng(3)
    x, h0, Wx, Wh, b = make(rng, 3, N=2, T=3, D=3, H=2)
    args = [x, h0, Wx, Wh, b]
    dh = rng.standard_normal((2, 3, 2))
    _, caches = seq_forward(gru_step_forward, x, h0, Wx, Wh, b)
    dx, dh0, dWx, dWh, db = seq_backward(gru_step_backward, dh, caches, 3)
    for k, grad in zip([0, 1, 2, 3, 4], [dx, dh0, dWx, dWh, db]):
        num = np.zeros_like(args[k])
        for ix in np.ndindex(*args[k].shape):
            old = args[k][ix]
            args[k][ix] = old + 1e-6
            fp = np.sum(C.gru_forward(*args)[0] * dh)
            args[k][ix] = old - 1e-6
            fm = np.sum(C.gru_forward(*args)[0] * dh)
            args[k][ix] = old
            num[ix] = (fp - fm) / 2e-6
        assert rel_err(num, grad) < 1e-7


# The values printed in cs231n's RNN_Captioning / LSTM_Captioning notebooks for these inputs.

def test_notebook_rnn_step_forward():
    N, D, H = 3, 10, 4
    x = np.linspace(-0.4, 0.7, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.2, 0.5, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.1, 0.9, num=D * H).reshape(D, H)
    Wh = np.linspace(-0.3, 0.7, num=H * H).reshape(H, H)
    b = np.linspace(-0.2, 0.4, num=H)
    next_h, _ = C.rnn_step_forward(x, prev_h, Wx, Wh, b)
    expected_next_h = np.asarray([
        [-0.58172089, -0.50182032, -0.41232771, -0.31410098],
        [0.66854692, 0.79562378, 0.87755553, 0.92795967],
        [0.97934501, 0.99144213, 0.99646691, 0.99854353]])
    assert rel_err(next_h, expected_next_h) < 1e-8


def test_notebook_lstm_step_forward():
    N, D, H = 3, 4, 5
    x = np.linspace(-0.4, 1.2, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.3, 0.7, num=N * H).reshape(N, H)
    prev_c = np.linspace(-0.4, 0.9, num=N * H).reshape(N, H)
    Wx = np.linspace(-2.1, 1.3, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.7, 2.2, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.3, 0.7, num=4 * H)
    next_h, next_c, _ = C.lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    expected_next_h = np.asarray([
        [0.24635157, 0.28610883, 0.32240467, 0.35525807, 0.38474904],
        [0.49223563, 0.55611431, 0.61507696, 0.66844003, 0.7159181],
        [0.56735664, 0.66310127, 0.74419266, 0.80889665, 0.858299]])
    expected_next_c = np.asarray([
        [0.32986176, 0.39145139, 0.451556, 0.51014116, 0.56717407],
        [0.66382255, 0.76674007, 0.87195994, 0.97902709, 1.08751345],
        [0.74192008, 0.90592151, 1.07717006, 1.25120233, 1.42395676]])
    assert rel_err(next_h, expected_next_h) < 1e-8
    assert rel_err(next_c, expected_next_c) < 1e-8


def test_float32_and_mixed_dtypes():
    rng = np.random.default_rng(4)
    x, h0, Wx, Wh, b = make(rng, 4)
    h_ref, _ = seq_forward(lstm_step_forward, x, h0, Wx, Wh, b, lstm=True)
    f32 = [a.astype(np.float32) for a in (x, h0, Wx, Wh, b)]
    h32, cache = C.lstm_forward(*f32)
    assert h32.dtype == np.float32 and rel_err(h32, h_ref) < 1e-5
    assert all(g.dtype == np.float32 for g in C.lstm_backward(np.ones_like(h32), cache))
    h_mixed, _ = C.lstm_forward(f32[0], h0, Wx, Wh, b)          # promoted as NumPy would
    assert h_mixed.dtype == np.float64


# ================================================================ the other layers

def test_sigmoid_is_the_original_bit_for_bit():
    x = np.concatenate([np.linspace(-800, 800, 2001), np.random.default_rng(5).normal(0, 5, 500),
                        [0.0, -0.0, 1e-300, -1e-300]])
    assert np.array_equal(C.sigmoid(x), sigmoid(x))


def test_word_embedding_matches_add_at():
    rng = np.random.default_rng(6)
    V, D = 7, 4
    x = rng.integers(0, V, (5, 6))                  # repeats every id several times
    W = rng.standard_normal((V, D))
    out, cache = C.word_embedding_forward(x, W)
    assert np.array_equal(out, W[x])
    dout = rng.standard_normal(out.shape)
    dW = np.zeros_like(W)
    np.add.at(dW, x, dout)
    assert rel_err(C.word_embedding_backward(dout, cache), dW) < TOL


def test_temporal_affine_matches():
    rng = np.random.default_rng(7)
    N, T, D, M = 2, 3, 4, 5
    x, w, b = rng.standard_normal((N, T, D)), rng.standard_normal((D, M)), rng.standard_normal(M)
    out, cache = C.temporal_affine_forward(x, w, b)
    assert rel_err(out, (x.reshape(N * T, D) @ w).reshape(N, T, M) + b) < TOL
    dout = rng.standard_normal((N, T, M))
    dx, dw, db = C.temporal_affine_backward(dout, cache)
    assert rel_err(dx, dout @ w.T) < TOL
    assert rel_err(dw, x.reshape(-1, D).T @ dout.reshape(-1, M)) < TOL
    assert rel_err(db, dout.sum(axis=(0, 1))) < TOL


@pytest.mark.parametrize("p_mask", [1.0, 0.3])
def test_temporal_softmax_loss_matches(p_mask):
    rng = np.random.default_rng(8)
    N, T, V = 4, 6, 9
    x = rng.standard_normal((N, T, V)) * 3
    y = rng.integers(0, V, (N, T))
    mask = rng.random((N, T)) < p_mask
    mask[0, 0] = True
    loss, dx = C.temporal_softmax_loss(x, y, mask)
    loss_ref, dx_ref = temporal_softmax_loss(x, y, mask)
    assert abs(loss - loss_ref) <= TOL * abs(loss_ref)
    assert rel_err(dx, dx_ref) < TOL
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        C.temporal_softmax_loss(x, y, mask, verbose=True)
    assert buf.getvalue() == f"dx_flat:  {(N * T, V)}\n"


def test_temporal_softmax_loss_sums_over_time_and_averages_over_batch():
    # cs231n's sanity check: ~2.3 per counted step with small random scores, 10 classes
    rng = np.random.default_rng(9)
    for N, T, p, expect in [(100, 1, 1.0, 2.3), (100, 10, 1.0, 23), (5000, 10, 0.1, 2.3)]:
        x = 0.001 * rng.standard_normal((N, T, 10))
        y = rng.integers(0, 10, (N, T))
        loss, _ = C.temporal_softmax_loss(x, y, rng.random((N, T)) <= p)
        assert abs(loss - expect) < 0.05 * expect
    x = rng.standard_normal((2, 3, 4))
    loss, dx = C.temporal_softmax_loss(x, np.zeros((2, 3), int), np.zeros((2, 3), bool))
    assert loss == 0 and not dx.any()                # nothing counted: the original's 0


# ================================================================ errors

def test_backward_accepts_only_its_own_forwards_cache():
    rng = np.random.default_rng(10)
    x, h0, Wx, Wh, b = make(rng, 1)
    _, rnn_cache = C.rnn_forward(x, h0, Wx, Wh, b)
    _, step_cache = C.rnn_step_forward(x[:, 0], h0, Wx, Wh, b)
    dh = np.ones((3, 4, 6))
    with pytest.raises(TypeError, match="lstm_backward needs the cache returned by "
                                        "lstm_forward, got the cache of rnn_forward"):
        C.lstm_backward(dh, rnn_cache)
    with pytest.raises(TypeError, match="rnn_forward, got the cache of rnn_step_forward"):
        C.rnn_backward(dh, step_cache)
    with pytest.raises(TypeError, match="got a tuple"):
        C.rnn_step_backward(dh[:, 0], (x, h0, Wx, Wh, b))
    _, emb_cache = C.word_embedding_forward(np.zeros((2, 2), int), np.ones((3, 4)))
    with pytest.raises(TypeError, match="temporal_affine_forward"):
        C.temporal_affine_backward(np.ones((2, 2, 4)), emb_cache)


def test_time_major_input_names_the_batch_major_layout():
    rng = np.random.default_rng(11)
    for cell, (gates, *_) in CELLS.items():
        x, h0, Wx, Wh, b = make(rng, gates, N=3, T=4)
        with pytest.raises(ValueError, match=r"batch-major \(N, T, D\) = \(3, T, 5\).*"
                                             r"time-major \(T, N, D\)"):
            getattr(C, f"{cell}_forward")(x.transpose(1, 0, 2), h0, Wx, Wh, b)
        h, cache = getattr(C, f"{cell}_forward")(x, h0, Wx, Wh, b)
        with pytest.raises(ValueError, match=r"dh must have shape \(N, T, H\) = \(3, 4, 6\)"
                                             r".*time-major"):
            getattr(C, f"{cell}_backward")(h.transpose(1, 0, 2), cache)
    x = rng.standard_normal((3, 4, 5))
    with pytest.raises(ValueError, match=r"y must have shape \(N, T\) = \(3, 4\).*time-major"):
        C.temporal_softmax_loss(x, np.zeros((4, 3), int), np.ones((3, 4), bool))


def test_pytorch_layout_weights_name_the_right_layout():
    rng = np.random.default_rng(12)
    x, h0, Wx, Wh, b = make(rng, 4)
    with pytest.raises(ValueError, match=r"Wx must have shape \(D, 4H\) = \(D, 24\).*"
                                         r"PyTorch weight_ih"):
        C.lstm_forward(x, h0, Wx.T, Wh, b)
    with pytest.raises(ValueError, match=r"Wh must have shape \(H, 4H\).*PyTorch weight_hh"):
        C.lstm_forward(x, h0, Wx, Wh.T, b)
    with pytest.raises(ValueError, match=r"h0 must have shape \(N, H\)"):
        C.lstm_forward(x, h0[:, :2], Wx, Wh, b)
    with pytest.raises(ValueError, match=r"x must have shape \(N, D\)"):
        C.lstm_step_forward(x[:, 0, :2], h0, h0, Wx, Wh, b)


def test_bad_token_ids():
    W = np.ones((5, 3))
    with pytest.raises(ValueError, match=r"x must lie in \[0, 5\)"):
        C.word_embedding_forward(np.array([[0, 5]]), W)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 5\)"):
        C.word_embedding_forward(np.array([[0, -1]]), W)
    with pytest.raises(TypeError, match="integer token ids"):
        C.word_embedding_forward(np.array([[0.0, 1.0]]), W)
    with pytest.raises(ValueError, match=r"y must lie in \[0, 5\)"):
        C.temporal_softmax_loss(np.ones((1, 2, 5)), np.array([[0, 7]]), np.ones((1, 2), bool))
