"""fastrnn.compat.rnn_from_scratch against a corrected plain-NumPy transcription of the "RNN from
scratch" tutorial (shared/seeds/000, same code in 002), and against fastrnn's own
``truncate=`` semantics.

The transcription is the printed code with only the fixes the module docstring lists: the
state carried from ``prev_memory`` (kept in ``memory["ht-1"]``), each step's true previous
state, each look-back step's own embedding, T and the sizes from the data instead of globals,
``delta_cross_entropy`` on a copy, no ``np.asmatrix``.
"""

import contextlib
import io
import re

import numpy as np
import pytest

from cells import rel_err
from fastrnn import kernels as K
from fastrnn import reference as R
from fastrnn.compat import rnn_from_scratch as F

TOL = 1e-10


# ================================================================ the transcription

def tanh_activation(Z):
    return (np.exp(Z) - np.exp(-Z)) / (np.exp(Z) + np.exp(-Z))


def softmax_activation(Z):
    e_x = np.exp(Z - np.max(Z))
    return e_x / e_x.sum(axis=0)


def Rnn_forward(input_embedding, input_weights, internal_state_weights, prev_memory,
                output_weights):
    forward_params = []
    W_frd = np.dot(internal_state_weights, prev_memory)
    U_frd = np.dot(input_weights, input_embedding)
    sum_s = W_frd + U_frd
    ht_activated = tanh_activation(sum_s)
    yt_unactivated = np.asarray(np.dot(output_weights, tanh_activation(sum_s)))
    yt_activated = softmax_activation(yt_unactivated)
    forward_params.append([W_frd, U_frd, sum_s, yt_unactivated])
    return ht_activated, yt_activated, forward_params


def full_forward_prop(T, embeddings, input_weights, internal_state_weights, prev_memory,
                      output_weights):
    output_strings = []
    memory = {"ht-1": prev_memory}
    prev_activation = prev_memory
    for t in range(0, T):
        curr_activation, y_pred, forward_params = Rnn_forward(
            embeddings[t], input_weights, internal_state_weights, prev_activation,
            output_weights)
        output_strings.append(y_pred)
        memory["ht" + str(t)] = curr_activation
        memory["yt" + str(t)] = y_pred
        memory["params" + str(t)] = forward_params
        prev_activation = curr_activation
    return output_strings, memory


def calculate_loss(output_mapper, predicted_output):
    total_loss = 0
    layer_loss = []
    for y, y_ in zip(output_mapper.values(), predicted_output):
        loss = -sum(y[i] * np.log2(y_[i]) for i in range(len(y)))
        loss = loss / float(len(y))
        layer_loss.append(loss)
    for i in range(len(layer_loss)):
        total_loss = total_loss + layer_loss[i]
    return total_loss / float(len(predicted_output))


def delta_cross_entropy(predicted_output, original_t_output):
    grad = predicted_output.copy()
    for i, l in enumerate(original_t_output):
        if l == 1:
            grad[i] -= 1
    return grad


def multiplication_backward(weights, x, dz):
    gradient_weight = np.dot(dz, np.transpose(x))
    chain_gradient = np.dot(np.transpose(weights), dz)
    return gradient_weight, chain_gradient


def add_backward(x1, x2, dz):
    dx1 = dz * np.ones_like(x1)
    dx2 = dz * np.ones_like(x2)
    return dx1, dx2


def tanh_activation_backward(x, top_diff):
    output = np.tanh(x)
    return (1.0 - np.square(output)) * top_diff


def single_backprop(X, input_weights, internal_state_weights, output_weights, ht_activated, dLo,
                    forward_params_t, diff_s, prev_s):
    W_frd = forward_params_t[0][0]
    U_frd = forward_params_t[0][1]
    ht_unactivated = forward_params_t[0][2]
    dV, dsv = multiplication_backward(output_weights, ht_activated, dLo)
    ds = np.add(dsv, diff_s)
    dadd = tanh_activation_backward(ht_unactivated, ds)
    dmulw, dmulu = add_backward(U_frd, W_frd, dadd)
    dW, dprev_s = multiplication_backward(internal_state_weights, prev_s, dmulw)
    dU, dx = multiplication_backward(input_weights, X, dmulu)
    return (dprev_s, dU, dW, dV)


def rnn_backprop(embeddings, memory, output_t, dU, dV, dW, bptt_truncate, input_weights,
                 output_weights, internal_state_weights):
    hidden_dim, output_dim = internal_state_weights.shape[0], output_weights.shape[0]
    T = sum(1 for key in memory if key.startswith("yt"))
    for t in range(T):
        prev_s_t = memory["ht" + str(t - 1)]        # "ht-1" is prev_memory
        diff_s = np.zeros((hidden_dim, 1))
        predictions = memory["yt" + str(t)]
        ht_activated = memory["ht" + str(t)]
        forward_params_t = memory["params" + str(t)]
        dLo = delta_cross_entropy(predictions, output_t[t])
        dprev_s, dU_t, dW_t, dV_t = single_backprop(
            embeddings[t], input_weights, internal_state_weights, output_weights, ht_activated,
            dLo, forward_params_t, diff_s, prev_s_t)
        dLo = np.zeros((output_dim, 1))
        for i in range(t - 1, max(-1, t - bptt_truncate), -1):
            forward_params_t = memory["params" + str(i)]
            ht_activated = memory["ht" + str(i)]
            prev_s_i = memory["ht" + str(i - 1)]
            dprev_s, dU_i, dW_i, dV_i = single_backprop(
                embeddings[i], input_weights, internal_state_weights, output_weights,
                ht_activated, dLo, forward_params_t, dprev_s, prev_s_i)
            dU_t += dU_i
            dW_t += dW_i
        dV += dV_t
        dU += dU_t
        dW += dW_t
    return (dU, dW, dV)


def gd_step(learning_rate, dU, dW, dV, input_weights, internal_state_weights, output_weights):
    input_weights -= learning_rate * dU
    internal_state_weights -= learning_rate * dW
    output_weights -= learning_rate * dV
    return input_weights, internal_state_weights, output_weights


# ================================================================ helpers

def problem(seed, H=100, O=80, T=4, D=None, scale=None, prev=True):
    """The tutorial's setup (uniform(0, 1) weights, randn embeddings, one-hot targets) or,
    with ``scale``, smaller weights that keep tanh out of saturation."""
    rng = np.random.default_rng(seed)
    D = H if D is None else D
    if scale is None:
        U, W, V = (rng.uniform(0, 1, s) for s in ((H, D), (H, H), (O, H)))
    else:
        U, W, V = (rng.uniform(-scale, scale, s) for s in ((H, D), (H, H), (O, H)))
    emb = [rng.standard_normal((D, 1)) for _ in range(T)]
    ids = rng.integers(0, O, T)
    out = []
    for i in ids:
        y = np.zeros((O, 1))
        y[i] = 1
        out.append(y)
    prev_memory = rng.uniform(-0.5, 0.5, (H, 1)) if prev else np.zeros((H, 1))
    return U, W, V, emb, out, prev_memory


def summed_loss(U, W, V, emb, out, prev_memory, T):
    ys, _ = full_forward_prop(T, emb, U, W, prev_memory, V)
    return -sum(float(np.log(y[o.argmax(), 0])) for y, o in zip(ys, out))


# ================================================================ tests

@pytest.mark.parametrize("H,O,T,D", [(100, 80, 4, None), (7, 5, 6, 3), (1, 1, 1, None),
                                     (3, 2, 1, 4)])
def test_forward_and_memory_match(H, O, T, D):
    U, W, V, emb, out, prev = problem(0, H, O, T, D, scale=0.3)
    ys, mem = F.full_forward_prop(T, emb, U, W, prev, V)
    ys_ref, mem_ref = full_forward_prop(T, emb, U, W, prev, V)
    assert len(ys) == T and set(mem) == set(mem_ref)
    for y, y_ref in zip(ys, ys_ref):
        assert y.shape == (O, 1) and rel_err(y, y_ref) < TOL
    for t in range(T):
        assert mem[f"ht{t}"].shape == (H, 1)
        assert rel_err(mem[f"ht{t}"], mem_ref[f"ht{t}"]) < TOL
        assert rel_err(mem[f"yt{t}"], mem_ref[f"yt{t}"]) < TOL
        p, p_ref = mem[f"params{t}"], mem_ref[f"params{t}"]
        assert len(p) == 1 and len(p[0]) == 4
        for a, b in zip(p[0], p_ref[0]):
            assert a.shape == b.shape and rel_err(a, b) < TOL
    assert np.array_equal(mem["ht-1"], prev)
    h, y, fp = F.Rnn_forward(emb[0], U, W, prev, V)
    h_ref, y_ref, fp_ref = Rnn_forward(emb[0], U, W, prev, V)
    assert rel_err(h, h_ref) < TOL and rel_err(y, y_ref) < TOL
    assert all(rel_err(a, b) < TOL for a, b in zip(fp[0], fp_ref[0]))


def test_tutorial_sizes_and_saturated_tanh():
    # The tutorial's uniform(0, 1) weights drive tanh far into saturation; still 1e-10.
    U, W, V, emb, out, prev = problem(1)
    ys, mem = F.full_forward_prop(4, emb, U, W, np.zeros((100, 1)), V)
    ys_ref, _ = full_forward_prop(4, emb, U, W, np.zeros((100, 1)), V)
    assert all(rel_err(a, b) < TOL for a, b in zip(ys, ys_ref))


@pytest.mark.parametrize("bptt_truncate", [-1, 0, 1, 2, 3, 4, 5, 50])
@pytest.mark.parametrize("shape", [(100, 80, 4, None), (6, 5, 7, 3), (1, 1, 3, 1)])
def test_rnn_backprop_matches_the_corrected_transcription(bptt_truncate, shape):
    H, O, T, D = shape
    U, W, V, emb, out, prev = problem(2, H, O, T, D, scale=0.4)
    _, mem = F.full_forward_prop(T, emb, U, W, prev, V)
    _, mem_ref = full_forward_prop(T, emb, U, W, prev, V)
    g0 = [np.full(U.shape, 0.25), np.full(V.shape, -0.5), np.full(W.shape, 1.0)]  # dU, dV, dW
    got = F.rnn_backprop(emb, mem, out, *(g.copy() for g in g0), bptt_truncate, U, V, W)
    want = rnn_backprop(emb, mem_ref, out, *(g.copy() for g in g0), bptt_truncate, U, V, W)
    assert len(got) == 3                                          # (dU, dW, dV)
    for g, w in zip(got, want):
        assert g.shape == w.shape and rel_err(g, w) < TOL
    # a plain dict (no ht-1: zeros, as printed) goes through the gathering path
    plain = {k: v for k, v in mem_ref.items() if k != "ht-1"}
    zero_ref = dict(plain, **{"ht-1": np.zeros((H, 1))})
    got = F.rnn_backprop(emb, plain, out, *(g.copy() for g in g0), bptt_truncate, U, V, W)
    want = rnn_backprop(emb, zero_ref, out, *(g.copy() for g in g0), bptt_truncate, U, V, W)
    assert all(rel_err(g, w) < TOL for g, w in zip(got, want))


def test_rnn_backprop_adds_in_place_and_sees_edited_memory():
    U, W, V, emb, out, prev = problem(3, 5, 4, 5, scale=0.5)
    _, mem = F.full_forward_prop(5, emb, U, W, prev, V)
    dU, dV, dW = np.zeros_like(U), np.zeros_like(V), np.zeros_like(W)
    r = F.rnn_backprop(emb, mem, out, dU, dV, dW, 2, U, V, W)
    assert r[0] is dU and r[1] is dW and r[2] is dV and dU.any()
    first = [g.copy() for g in r]
    F.rnn_backprop(emb, mem, out, dU, dV, dW, 2, U, V, W)          # memory is not consumed
    assert all(rel_err(g, 2 * f) < TOL for g, f in zip((dU, dW, dV), first))
    # entries edited in place and replaced entries are both seen
    _, mem_ref = full_forward_prop(5, emb, U, W, prev, V)
    mem["ht1"] *= 0.5
    mem_ref["ht1"] = mem_ref["ht1"] * 0.5
    mem["params2"] = [[a * 1.5 for a in mem["params2"][0]]]
    mem_ref["params2"] = [[a * 1.5 for a in mem_ref["params2"][0]]]
    got = F.rnn_backprop(emb, mem, out, np.zeros_like(U), np.zeros_like(V), np.zeros_like(W),
                         3, U, V, W)
    want = rnn_backprop(emb, mem_ref, out, np.zeros_like(U), np.zeros_like(V),
                        np.zeros_like(W), 3, U, V, W)
    assert all(rel_err(g, w) < TOL for g, w in zip(got, want))


@pytest.mark.parametrize("bptt_truncate", [0, 1, 2, 3, 6, 9])
@pytest.mark.parametrize("backend", [R, K])
def test_gradients_equal_fastrnns_truncate_semantics(bptt_truncate, backend):
    """bptt_truncate = B is fastrnn's truncate = max(B - 1, 0): with xw[t] = U x[t], h0 =
    prev_memory, weight_hh = W, no bias and dhs[t] = V^T (y_hat[t] - y[t]), fastrnn's
    rnn_backward_proj gives dW = dweight_hh and dU = sum_t dxw[t] x[t]^T."""
    H, O, T, D = 6, 5, 7, 4
    U, W, V, emb, out, prev = problem(4, H, O, T, D, scale=0.5)
    ys, mem = F.full_forward_prop(T, emb, U, W, prev, V)
    dU, dW, dV = F.rnn_backprop(emb, mem, out, np.zeros_like(U), np.zeros_like(V),
                                np.zeros_like(W), bptt_truncate, U, V, W)
    k = F.lookback_to_truncate(bptt_truncate)
    assert k == max(bptt_truncate - 1, 0)
    X = np.stack([e[:, 0] for e in emb])                                 # (T, D)
    xw = (X @ U.T).reshape(T, 1, H)
    hs, cache = backend.rnn_forward_proj(xw, prev.reshape(1, H), W, np.zeros(H))
    assert rel_err(hs.reshape(T, H), np.stack([mem[f"ht{t}"][:, 0] for t in range(T)])) < TOL
    dlo = np.stack([(y - o)[:, 0] for y, o in zip(ys, out)])             # (T, O)
    dhs = (dlo @ V).reshape(T, 1, H)
    dxw, _, dweight_hh, _ = backend.rnn_backward_proj(dhs, cache, truncate=k)
    assert rel_err(dW, dweight_hh) < TOL
    assert rel_err(dU, dxw.reshape(T, H).T @ X) < TOL
    assert rel_err(dV, dlo.T @ hs.reshape(T, H)) < TOL


def test_full_bptt_is_the_gradient_of_the_summed_natural_log_loss():
    H, O, T, D = 4, 3, 5, 3
    U, W, V, emb, out, prev = problem(5, H, O, T, D, scale=0.6)
    _, mem = F.full_forward_prop(T, emb, U, W, prev, V)
    grads = F.rnn_backprop(emb, mem, out, np.zeros_like(U), np.zeros_like(V), np.zeros_like(W),
                           T + 1, U, V, W)                               # (dU, dW, dV)
    eps = 1e-6
    for P, G in zip((U, W, V), grads):
        num = np.zeros_like(P)
        for ix in np.ndindex(P.shape):
            v = P[ix]
            P[ix] = v + eps
            lp = summed_loss(U, W, V, emb, out, prev, T)
            P[ix] = v - eps
            lm = summed_loss(U, W, V, emb, out, prev, T)
            P[ix] = v
            num[ix] = (lp - lm) / (2 * eps)
        assert rel_err(G, num) < 1e-7


def test_small_functions_match():
    rng = np.random.default_rng(6)
    Z = rng.standard_normal((9, 1)) * 3
    assert rel_err(F.tanh_activation(Z), tanh_activation(Z)) < TOL
    assert rel_err(F.softmax_activation(Z), softmax_activation(Z)) < TOL
    y = np.zeros((9, 1))
    y[4] = 1
    p = softmax_activation(Z)
    keep = p.copy()
    assert rel_err(F.delta_cross_entropy(p, y), p - y) < TOL
    assert np.array_equal(p, keep)                          # the argument is not changed
    Wm, x, dz = rng.standard_normal((9, 5)), rng.standard_normal((5, 1)), Z
    for a, b in zip(F.multiplication_backward(Wm, x, dz), multiplication_backward(Wm, x, dz)):
        assert a.shape == b.shape and rel_err(a, b) < TOL
    for a, b in zip(F.add_backward(x, x, x), add_backward(x, x, x)):
        assert np.array_equal(a, b)
    assert rel_err(F.tanh_activation_backward(Z, x[0]), tanh_activation_backward(Z, x[0])) < TOL
    U, W, V, emb, out, prev = problem(7, 5, 4, 2, scale=0.5)
    _, mem = full_forward_prop(2, emb, U, W, prev, V)
    args = (emb[1], U, W, V, mem["ht1"], rng.standard_normal((4, 1)), mem["params1"],
            rng.standard_normal((5, 1)), mem["ht0"])
    for a, b in zip(F.single_backprop(*args), single_backprop(*args)):
        assert rel_err(a, b) < TOL
    outputs = {i: o for i, o in enumerate(out)}
    ys, _ = full_forward_prop(2, emb, U, W, prev, V)
    want = calculate_loss(outputs, ys)
    got = F.calculate_loss(outputs, ys)
    assert isinstance(got, float) and abs(got - float(want[0])) <= TOL * abs(got)
    assert F.calculate_loss(out, ys) == got
    params = [a.copy() for a in (U, W, V)]
    r = F.gd_step(0.1, U, W, V, *params)
    assert all(a is b for a, b in zip(r, params)) and F.sgd_step is F.gd_step
    assert rel_err(params[0], U - 0.1 * U) < TOL


def test_train_matches_the_corrected_loop():
    T, H, O = 4, 8, 6
    U, W, V, emb, out, prev = problem(8, H, O, T, scale=0.5)
    mapper = {i: o for i, o in enumerate(out)}
    ref = [a.copy() for a in (U, W, V)]
    buf = io.StringIO()
    dU, dW, dV = np.zeros_like(U), np.zeros_like(W), np.zeros_like(V)
    with contextlib.redirect_stdout(buf):
        losses = F.train(T, emb, out, mapper, U, W, V, dU, dW, dV, prev, learning_rate=0.05,
                         nepoch=7, evaluate_loss_after=3, bptt_truncate=3)
    want = []
    for epoch in range(7):
        ys, mem = full_forward_prop(T, emb, ref[0], ref[1], prev, ref[2])
        if epoch % 3 == 0:
            want.append(float(calculate_loss(mapper, ys)[0]))
        g = rnn_backprop(emb, mem, out, np.zeros_like(U), np.zeros_like(V), np.zeros_like(W),
                         3, ref[0], ref[2], ref[1])
        gd_step(0.05, *g, *ref)
    assert len(losses) == 3 and all(abs(a - b) <= TOL * b for a, b in zip(losses, want))
    assert losses[-1] < losses[0]
    for a, b in zip((U, W, V), ref):
        assert rel_err(a, b) < 1e-9
    lines = buf.getvalue().splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: Loss after epoch=0: \d+\.\d{6}",
                        lines[0])
    assert dU.any()                          # the caller's arrays hold the last gradient


def test_float32_close_to_float64():
    U, W, V, emb, out, prev = problem(9, 10, 7, 5, scale=0.4)
    c32 = lambda a: a.astype(np.float32)  # noqa: E731
    ys, mem = F.full_forward_prop(5, emb, U, W, prev, V)
    ys32, mem32 = F.full_forward_prop(5, [c32(e) for e in emb], c32(U), c32(W), c32(prev),
                                      c32(V))
    assert ys32[0].dtype == np.float32
    assert max(rel_err(a, b) for a, b in zip(ys, ys32)) < 1e-5
    g = F.rnn_backprop(emb, mem, out, np.zeros_like(U), np.zeros_like(V), np.zeros_like(W), 2,
                       U, V, W)
    z = lambda a: np.zeros_like(a, np.float32)  # noqa: E731
    g32 = F.rnn_backprop([c32(e) for e in emb], mem32, out, z(U), z(V), z(W), 2, c32(U),
                         c32(V), c32(W))
    assert all(b.dtype == np.float32 and rel_err(a, b) < 1e-4 for a, b in zip(g, g32))


def test_bad_input_names_the_problem():
    U, W, V, emb, out, prev = problem(10, 5, 4, 3, scale=0.5)
    with pytest.raises(ValueError, match=r"output_weights must have shape \(output_dim, "):
        F.full_forward_prop(3, emb, U, W, prev, V.T)
    with pytest.raises(ValueError, match=r"prev_memory must be a column vector of shape "
                                         r"\(5, 1\)"):
        F.full_forward_prop(3, emb, U, W, np.zeros((4, 1)), V)
    with pytest.raises(ValueError, match="embeddings has 3 vectors, fewer than the 4 steps"):
        F.full_forward_prop(4, emb, U, W, prev, V)
    with pytest.raises(ValueError, match=r"embeddings\[1\] must be a column vector"):
        F.full_forward_prop(3, [emb[0], emb[1][:3]] + emb[2:], U, W, prev, V)
    _, mem = F.full_forward_prop(3, emb, U, W, prev, V)
    z = [np.zeros_like(U), np.zeros_like(V), np.zeros_like(W)]
    with pytest.raises(ValueError, match=r"dV must be an array of shape \(4, 5\)"):
        F.rnn_backprop(emb, mem, out, z[0], z[2], z[2], 2, U, V, W)
    with pytest.raises(TypeError, match="bptt_truncate must be an int"):
        F.rnn_backprop(emb, mem, out, *z, 2.5, U, V, W)
    with pytest.raises(ValueError, match="output_t has 2 vectors, fewer than the 3 steps"):
        F.rnn_backprop(emb, mem, out[:2], *z, 2, U, V, W)
    broken = {k: v for k, v in mem.items() if k != "params1"}
    with pytest.raises(ValueError, match="memory has no entry 'params1'"):
        F.rnn_backprop(emb, broken, out, *z, 2, U, V, W)
