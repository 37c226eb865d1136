"""fastrnn.kernels.optim against the reference (fastrnn.reference.optim): same results (float64
to 1e-12, float32 to 1e-6 relative) on the serial and the parallel path, NaN/Inf propagation,
any thread count; clipping on both paths against PyTorch; argument errors of the functions.
The optimizer classes, clipping and schedules as users call them: tests/test_optim.py."""

import math
from types import SimpleNamespace

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cells import rel_err
from fastrnn import optim as O
from fastrnn.kernels import optim as K
from fastrnn.reference import optim as R

TOL = {np.float64: 1e-12, np.float32: 1e-6}
DTYPES = [np.float64, np.float32]
SIZES = [1, 2, 7, 33, 1000]
PARALLEL_SIZE = 2 * K._BLOCK + 3          # three blocks, the last one short


# The parallel driver runs in float32 only: it is the same code for both dtypes, and each
# dtype costs ~3.5 s of cold compilation.
PATH_DTYPES = [("serial", np.float64), ("serial", np.float32), ("parallel", np.float32)]


@pytest.fixture
def path(request, monkeypatch):
    """'serial', or 'parallel': the parallel driver runs even for tiny arrays."""
    if request.param == "parallel":
        if numba.get_num_threads() < 2:
            pytest.skip("the parallel path needs 2 threads")
        monkeypatch.setattr(K, "PARALLEL_MIN_SIZE", 0)
    return request.param


# ---------------------------------------------------------------- functions vs reference

# name -> (call(mod, param, grad, states, step), [initial values of the states])
# initial values: "zero", "pos" (random in [0.1, 1]), "any" (standard normal)
FUNCS = {
    "sgd": (lambda m, p, g, s, t: m.sgd_update(p, g, s[0], 0.1, 0.9, 0.1, 0.01, False, t == 1),
            ["zero"]),
    "sgd_nesterov": (lambda m, p, g, s, t: m.sgd_update(p, g, s[0], 0.1, 0.9, 0.0, 0.0, True,
                                                        t == 1), ["zero"]),
    "sgd_plain": (lambda m, p, g, s, t: m.sgd_update(p, g, None, 0.1, 0.0, 0.0, 0.02, False,
                                                     False), []),
    "adagrad": (lambda m, p, g, s, t: m.adagrad_update(p, g, s[0], t, 0.1, 0.05, 0.01, 1e-10,
                                                       False), ["pos"]),
    "adagrad_min_char": (lambda m, p, g, s, t: m.adagrad_update(p, g, s[0], t, 0.1, 0.0, 0.0,
                                                                1e-8, True), ["zero"]),
    "rmsprop": (lambda m, p, g, s, t: m.rmsprop_update(p, g, s[0], None, None, 0.01, 0.99,
                                                       1e-8, 0.0, 0.0, False), ["zero"]),
    "rmsprop_all": (lambda m, p, g, s, t: m.rmsprop_update(p, g, s[0], s[1], s[2], 0.01, 0.9,
                                                           1e-6, 0.01, 0.9, True),
                    ["zero", "zero", "zero"]),
    "lookahead": (lambda m, p, g, s, t: m.rmsprop_nesterov_lookahead(p, s[0], 0.8), ["any"]),
    "nesterov": (lambda m, p, g, s, t: m.rmsprop_nesterov_update(p, g, s[0], s[1], 0.05, 0.5,
                                                                 0.8, 1e-6), ["pos", "any"]),
    "adam": (lambda m, p, g, s, t: m.adam_update(p, g, s[0], s[1], t, 1e-2, 0.9, 0.999, 1e-8,
                                                 0.0, False), ["zero", "zero"]),
    "adam_l2": (lambda m, p, g, s, t: m.adam_update(p, g, s[0], s[1], t, 1e-2, 0.8, 0.99, 1e-6,
                                                    0.05, False), ["any", "pos"]),
    "adamw": (lambda m, p, g, s, t: m.adam_update(p, g, s[0], s[1], t, 1e-2, 0.9, 0.999, 1e-8,
                                                  0.1, True), ["zero", "zero"]),
    "scale": (lambda m, p, g, s, t: m.scale(p, 0.75), []),
    "clip_value": (lambda m, p, g, s, t: m.clip_value(p, 0.6), []),
}


def make_arrays(rng, n, dtype, kinds, shape=None):
    shape = shape or (n,)

    def init(kind):
        if kind == "zero":
            return np.zeros(shape, dtype)
        if kind == "pos":
            return rng.uniform(0.1, 1.0, shape).astype(dtype)
        return rng.standard_normal(shape).astype(dtype)

    return init("any"), [init(k) for k in kinds]


def gradient(rng, shape, dtype):
    """Random values with 0.5 <= |g| <= 2: adding ``weight_decay * param`` cannot cancel them,
    which would leave only round-off (the kernel's fused multiply-add rounds differently
    from NumPy's two operations, in float32 by far more than 1e-6 of the result)."""
    return (rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 2.0, shape)).astype(dtype)


def update_err(got, want, *operands):
    """Max abs difference relative to the largest operand or result: an update ``p - lr * g``
    that nearly cancels leaves a small result with the round-off of its larger operands."""
    scale = max(np.abs(x).max(initial=0) for x in (want, *operands) if x is not None)
    return np.abs(np.asarray(got, np.float64) - want).max(initial=0) / max(scale, 1e-300)


def run_both(name, param, states, grads, dtype):
    """Applies ``name`` with every gradient of ``grads`` in turn on the kernel and the
    reference; checks the parameter and the states after every step."""
    call = FUNCS[name][0]
    kp, rp = param.copy(), param.copy()
    ks, rs = [s.copy() for s in states], [s.copy() for s in states]
    for t, g in enumerate(grads, start=1):
        before = [rp.copy()] + [s.copy() for s in rs]
        call(K, kp, g, ks, t)
        call(R, rp, g, rs, t)
        assert kp.dtype == dtype and all(s.dtype == dtype for s in ks)
        for what, a, b, old in zip(["param"] + [f"state {i}" for i in range(len(ks))],
                                   [kp] + ks, [rp] + rs, before):
            err = update_err(a, b, old, g)
            assert err <= TOL[dtype], f"{what} after step {t}: {err:.2e}"
    return kp, ks


@pytest.mark.parametrize("path, dtype", PATH_DTYPES, indirect=["path"])
@pytest.mark.parametrize("name", list(FUNCS))
def test_functions_match_reference(name, dtype, path):
    # parallel: one short block, and three blocks with a short last one
    for n in [1, PARALLEL_SIZE] if path == "parallel" else SIZES:
        rng = np.random.default_rng([n, list(FUNCS).index(name)])
        param, states = make_arrays(rng, n, dtype, FUNCS[name][1])
        grads = [gradient(rng, n, dtype) for _ in range(3)]
        run_both(name, param, states, grads, dtype)


@pytest.mark.parametrize("path, dtype", PATH_DTYPES, indirect=["path"])
def test_sum_squares_matches_reference(dtype, path):
    for n in [1, PARALLEL_SIZE] if path == "parallel" else SIZES + [PARALLEL_SIZE]:
        x = np.random.default_rng(n).standard_normal(n).astype(dtype)
        got, want = K.sum_squares(x), R.sum_squares(x)
        assert isinstance(got, float)
        assert abs(got - want) <= 1e-13 * want          # float64 accumulation either way


@pytest.mark.parametrize("name", ["adam", "rmsprop_all", "nesterov"])
def test_multidimensional_and_strided_grad(name):
    """Parameters of any shape are updated through a flat view; a strided grad is read
    correctly."""
    rng = np.random.default_rng(5)
    param, states = make_arrays(rng, None, np.float64, FUNCS[name][1], shape=(4, 3, 5))
    base = rng.standard_normal((4, 5, 3))
    strided = base.transpose(0, 2, 1)                     # (4, 3, 5), not C-contiguous
    kp, ks = run_both(name, param, states, [strided, strided], np.float64)
    cp, cs = run_both(name, param, states, [np.ascontiguousarray(strided)] * 2, np.float64)
    assert np.array_equal(kp, cp) and all(np.array_equal(a, b) for a, b in zip(ks, cs))


@given(n=st.integers(1, 300), lr=st.floats(1e-4, 1.0), beta1=st.floats(0.0, 0.99),
       beta2=st.floats(0.0, 0.9999), eps=st.floats(1e-10, 1e-2), wd=st.floats(0.0, 0.1),
       decoupled=st.booleans(), steps=st.integers(1, 4))
def test_adam_matches_reference_for_any_hyperparameters(n, lr, beta1, beta2, eps, wd,
                                                         decoupled, steps):
    rng = np.random.default_rng(n)
    for dtype in DTYPES:
        param = rng.standard_normal(n).astype(dtype)
        kst = [np.zeros(n, dtype), np.zeros(n, dtype)]
        rst = [np.zeros(n, dtype), np.zeros(n, dtype)]
        kp, rp = param.copy(), param.copy()
        for t in range(1, steps + 1):
            g = gradient(rng, n, dtype)
            K.adam_update(kp, g, *kst, t, lr, beta1, beta2, eps, wd, decoupled)
            R.adam_update(rp, g, *rst, t, lr, beta1, beta2, eps, wd, decoupled)
        assert rel_err(kp, rp) <= TOL[dtype]


@pytest.mark.parametrize("path, dtype", PATH_DTYPES, indirect=["path"])
@pytest.mark.parametrize("name", list(FUNCS))
def test_nan_and_inf_propagate_like_the_reference(name, dtype, path):
    rng = np.random.default_rng(7)
    n = PARALLEL_SIZE if path == "parallel" else 9
    param, states = make_arrays(rng, n, dtype, FUNCS[name][1])
    g = gradient(rng, n, dtype)
    # scale, clip_value and lookahead read no gradient: the bad values go into param
    bad = param if name in ("scale", "clip_value", "lookahead") else g
    bad[1], bad[3], bad[5] = np.nan, np.inf, -np.inf
    param[7] = np.nan
    kp, rp = param.copy(), param.copy()
    ks, rs = [s.copy() for s in states], [s.copy() for s in states]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        FUNCS[name][0](K, kp, g, ks, 1)
        FUNCS[name][0](R, rp, g, rs, 1)
    assert np.isnan(kp[7])
    assert np.array_equal(np.isnan(kp), np.isnan(rp))
    assert np.array_equal(np.isposinf(kp), np.isposinf(rp))
    assert np.array_equal(np.isneginf(kp), np.isneginf(rp))
    finite = np.isfinite(rp)
    assert rel_err(kp[finite], rp[finite]) <= TOL[dtype]


def test_thread_count_and_path_do_not_change_results(monkeypatch):
    """sum_squares gives the same bits on the serial path and on the parallel one with 1 and
    2 threads; so do the elementwise updates."""
    x = np.random.default_rng(8).standard_normal(5 * K._BLOCK + 17).astype(np.float32)
    e = np.empty(0, x.dtype)
    sums, params = [K.sum_squares(x)], []
    saved = numba.get_num_threads()
    try:
        for threads in range(1, saved + 1):
            numba.set_num_threads(threads)
            sums.append(K._run_parallel(K._SUM_SQUARES, x, e, e, e, e, e))
    finally:
        numba.set_num_threads(saved)
    for min_size in (1 << 62, 0):
        monkeypatch.setattr(K, "PARALLEL_MIN_SIZE", min_size)
        p, m, v = x.copy(), np.zeros_like(x), np.zeros_like(x)
        for t in (1, 2):
            K.adam_update(p, x[::-1], m, v, t, 1e-2, 0.9, 0.999, 1e-8, 0.01, True)
        params.append(p)
    assert len(set(sums)) == 1
    assert np.array_equal(params[0], params[1])


# ---------------------------------------------------------------- clipping on both paths vs PyTorch

@pytest.mark.parametrize("backend", ["reference", "kernels"])
@pytest.mark.parametrize("path, dtype", PATH_DTYPES, indirect=["path"])
@pytest.mark.parametrize("max_norm", [0.3, 1e4])
def test_clip_grad_norm_matches_torch(max_norm, dtype, backend, path):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    shapes = [(3, 4), (1,), ()] + ([(PARALLEL_SIZE,)] if path == "parallel" else [])
    params = [SimpleNamespace(data=np.zeros(s, dtype),
                              grad=np.asarray(rng.standard_normal(s), dtype)) for s in shapes]
    params.append(SimpleNamespace(data=np.zeros(2, dtype), grad=None))   # skipped
    tparams = []
    for p in params[:-1]:
        t = torch.nn.Parameter(torch.zeros(p.grad.shape, dtype=getattr(torch, dtype.__name__)))
        t.grad = torch.from_numpy(p.grad.copy())
        tparams.append(t)
    norm = O.clip_grad_norm_(params, max_norm, backend=backend)
    tnorm = float(torch.nn.utils.clip_grad_norm_(tparams, max_norm))
    assert isinstance(norm, float)
    assert abs(norm - tnorm) <= TOL[dtype] * tnorm
    for p, t in zip(params, tparams):
        assert p.grad.dtype == dtype
        assert rel_err(p.grad, t.grad.numpy()) <= TOL[dtype]
    clipped = math.sqrt(sum(float(np.sum(p.grad.astype(np.float64)**2)) for p in params[:-1]))
    if max_norm < norm:
        assert clipped == pytest.approx(max_norm, rel=1e-5)
    else:
        assert clipped == pytest.approx(norm, rel=1e-12)


@pytest.mark.parametrize("path", ["serial", "parallel"], indirect=True)
@pytest.mark.parametrize("backend", ["reference", "kernels"])
def test_clip_grad_value(backend, path):
    n = PARALLEL_SIZE if path == "parallel" else 11
    g = np.random.default_rng(9).standard_normal(n).astype(np.float32) * 3
    g[0] = np.nan
    p = SimpleNamespace(data=np.zeros_like(g), grad=g.copy())
    O.clip_grad_value_(p, 1.25, backend=backend)
    assert np.isnan(p.grad[0])
    np.testing.assert_array_equal(p.grad[1:], np.clip(g[1:], -1.25, 1.25))


@pytest.mark.parametrize("mod", [K, R], ids=["kernels", "reference"])
def test_function_argument_errors(mod):
    p, g = np.zeros(4), np.zeros(4)
    with pytest.raises(ValueError, match=r"grad must have shape \(the shape of param\)"):
        mod.adam_update(p, np.zeros(5), np.zeros(4), np.zeros(4), 1, 1e-3, 0.9, 0.999, 1e-8,
                        0.0, False)
    with pytest.raises(TypeError, match="exp_avg has dtype float32"):
        mod.adam_update(p, g, np.zeros(4, np.float32), np.zeros(4), 1, 1e-3, 0.9, 0.999, 1e-8,
                        0.0, False)
    with pytest.raises(ValueError, match="exp_avg_sq must be an array of its own"):
        m = np.zeros(4)
        mod.adam_update(p, g, m, m, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False)
    with pytest.raises(ValueError, match="square_avg must be C-contiguous"):
        mod.rmsprop_update(p, g, np.zeros(8)[::2], None, None, 0.01, 0.99, 1e-8, 0.0, 0.0,
                           False)
    with pytest.raises(ValueError, match="momentum_buffer is required"):
        mod.sgd_update(p, g, None, 0.1, 0.9, 0.0, 0.0, False, True)
    with pytest.raises(ValueError, match="grad_avg is required"):
        mod.rmsprop_update(p, g, np.zeros(4), None, None, 0.01, 0.99, 1e-8, 0.0, 0.0, True)
    ro = np.zeros(4)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="param must be writeable"):
        mod.sgd_update(ro, g, None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(ValueError, match="x must be writeable"):
        mod.clip_value(ro, 1.0)
    with pytest.raises(TypeError, match="x must have dtype float32 or float64"):
        mod.sum_squares(np.zeros(3, np.int32))
