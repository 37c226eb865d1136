"""The optimizers, clipping and schedules of fastrnn.optim (the public API): both backends give
the same results (float64 to 1e-12, float32 to 1e-6 relative), state_dict resumes
bit-identically and rejects what does not fit, training lowers a least-squares loss,
RMSpropNesterov and min-char-rnn's Adagrad follow their published update formulas, clipping
handles NaN/Inf like PyTorch, errors name the argument. The compiled update functions against
the reference, on both paths, are in tests/kernels/test_optim.py."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from cells import rel_err
from fastrnn import optim as O

TOL = {np.float64: 1e-12, np.float32: 1e-6}
DTYPES = [np.float64, np.float32]


# ---------------------------------------------------------------- optimizer classes

def make_params(dtype=np.float64, shapes=((4, 3), (5,), (1,), ()), seed=0):
    rng = np.random.default_rng(seed)
    return [SimpleNamespace(data=np.asarray(rng.standard_normal(s), dtype),
                            grad=np.zeros(s, dtype)) for s in shapes]


def set_grads(params, rng):
    for p in params:
        p.grad[...] = 0.5 * p.data + rng.standard_normal(p.data.shape)


OPTIMIZERS = {
    "sgd": lambda ps, b: O.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True,
                               backend=b),
    "sgd_plain": lambda ps, b: O.SGD(ps, lr=0.05, backend=b),
    "adagrad": lambda ps, b: O.Adagrad(ps, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1,
                                       backend=b),
    "adagrad_min_char_rnn": lambda ps, b: O.Adagrad.min_char_rnn(ps, backend=b),
    "rmsprop": lambda ps, b: O.RMSprop(ps, lr=0.01, momentum=0.5, centered=True, backend=b),
    "rmsprop_plain": lambda ps, b: O.RMSprop(ps, lr=0.01, alpha=0.95, backend=b),
    "rmsprop_nesterov": lambda ps, b: O.RMSpropNesterov(ps, backend=b),
    "adam": lambda ps, b: O.Adam(ps, lr=0.01, weight_decay=0.01, backend=b),
    "adamw": lambda ps, b: O.AdamW(ps, lr=0.01, backend=b),
}


def train_steps(opt, params, rng, steps):
    for _ in range(steps):
        if isinstance(opt, O.RMSpropNesterov):
            opt.lookahead()
        set_grads(params, rng)
        opt.step()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizers_kernels_match_reference(name, dtype):
    runs = {}
    for backend in ("kernels", "reference"):
        params = make_params(dtype)
        opt = OPTIMIZERS[name](params, backend)
        assert opt.backend == backend
        train_steps(opt, params, np.random.default_rng(1), 5)
        runs[backend] = (params, opt)
    (kp, kopt), (rp, ropt) = runs["kernels"], runs["reference"]
    for a, b in zip(kp, rp):
        assert a.data.dtype == dtype
        assert rel_err(a.data, b.data) <= TOL[dtype]
    assert kopt.step_count == ropt.step_count == 5
    ksd, rsd = kopt.state_dict(), ropt.state_dict()
    assert ksd.keys() == rsd.keys()
    for k in ksd:
        if isinstance(ksd[k], np.ndarray):
            assert rel_err(ksd[k], rsd[k]) <= TOL[dtype], k


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_state_dict_round_trip_continues_bit_identically(name):
    params = make_params(np.float32)
    opt = OPTIMIZERS[name](params, "kernels")
    rng = np.random.default_rng(2)
    train_steps(opt, params, rng, 3)
    sd = opt.state_dict()
    saved = [p.data.copy() for p in params]
    rng_state = rng.bit_generator.state
    opt.lr = opt.lr * 0.5                                 # restored by load_state_dict
    train_steps(opt, params, rng, 4)
    want = [p.data.copy() for p in params]

    params2 = make_params(np.float32, seed=99)
    for p, d in zip(params2, saved):
        p.data[...] = d
    opt2 = OPTIMIZERS[name](params2, "kernels")
    opt2.load_state_dict(sd)
    assert opt2.step_count == 3
    rng.bit_generator.state = rng_state
    opt2.lr = opt2.lr * 0.5
    train_steps(opt2, params2, rng, 4)
    for a, b in zip(params2, want):
        assert np.array_equal(a.data, b)
    for k, v in sd.items():                               # plain Python and NumPy values
        assert isinstance(v, (np.ndarray, int, float, bool, str)), k


def test_state_dict_format():
    params = make_params()
    opt = O.Adam(params, lr=0.01, betas=(0.8, 0.99))
    assert opt.state_dict() == {"optimizer": "Adam", "num_params": 4, "step": 0, "lr": 0.01,
                                "beta1": 0.8, "beta2": 0.99, "eps": 1e-8, "weight_decay": 0.0}
    train_steps(opt, params, np.random.default_rng(0), 1)
    sd = opt.state_dict()
    assert sorted(k for k in sd if "." in k) == sorted(
        f"{s}.{i}" for s in ("exp_avg", "exp_avg_sq") for i in range(4))
    assert sd["exp_avg.0"].shape == (4, 3) and sd["exp_avg.3"].shape == ()
    sd["exp_avg.0"][...] = 7                              # a copy
    assert not np.any(opt.state["exp_avg"][0] == 7)
    opt.betas = (0.5, 0.6)
    assert (opt.beta1, opt.beta2) == (0.5, 0.6) == opt.betas
    assert repr(opt).startswith("Adam(lr=0.01, beta1=0.5, beta2=0.6, eps=1e-08")


def test_rmsprop_nesterov_state_dict_saved_at_lookahead():
    params = make_params()
    opt = O.RMSpropNesterov(params)
    train_steps(opt, params, np.random.default_rng(0), 2)
    opt.lookahead()
    sd = opt.state_dict()
    assert sd["at_lookahead"] is True
    opt2 = O.RMSpropNesterov(make_params())
    opt2.load_state_dict(sd)
    assert opt2.at_lookahead
    with pytest.raises(RuntimeError, match="already"):
        opt2.lookahead()


BAD_STATE_DICTS = {
    "other optimizer": (dict(optimizer="SGD"), "is for optimizer 'SGD'"),
    "count": (dict(num_params=3), "for 3 parameters"),
    "shape": ({"exp_avg.1": np.zeros(6)}, r"exp_avg.1.*shape \(6,\)"),
    "dtype": ({"exp_avg_sq.0": np.zeros((4, 3), np.float32)}, "dtype float32"),
    "missing array": ({"exp_avg.2": None}, r"missing indices \[2\]"),
    "missing hparam": (dict(eps=None), "lacks"),
    "unexpected": ({"momentum_buffer.0": np.zeros((4, 3))}, "unexpected key"),
    "index": ({"exp_avg.4": np.zeros(1)}, "unexpected key"),
    "index spelling": ({"exp_avg.01": np.zeros(1)}, "unexpected key"),
    "bad lr": (dict(lr=-1.0), "lr must be >= 0"),
    "bad beta": (dict(beta2=1.0), r"betas\[1\]"),
    "bad step": (dict(step=-1), "step"),
    "not an array": ({"exp_avg.0": [[0.0] * 3] * 4}, "numpy array"),
}


@pytest.mark.parametrize("case", list(BAD_STATE_DICTS))
def test_load_state_dict_rejects_mismatches_and_changes_nothing(case):
    params = make_params()
    opt = O.Adam(params)
    train_steps(opt, params, np.random.default_rng(0), 1)
    changes, message = BAD_STATE_DICTS[case]
    sd = opt.state_dict()
    for k, v in changes.items():
        if v is None:
            del sd[k]
        else:
            sd[k] = v
    before = opt.state_dict()
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(sd)
    after = opt.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert np.array_equal(before[k], after[k])


def least_squares(dtype, seed=0):
    """Parameters (x, bias), a closure that sets their gradients of 0.5 * mean((A x + bias -
    b)**2) and returns it, and the minimum of that loss."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((40, 6)).astype(dtype)
    b = (A @ rng.standard_normal(6) + 0.7 + 0.1 * rng.standard_normal(40)).astype(dtype)
    x = SimpleNamespace(data=np.zeros(6, dtype), grad=np.zeros(6, dtype))
    bias = SimpleNamespace(data=np.zeros(1, dtype), grad=np.zeros(1, dtype))

    def loss_and_grad():
        r = A @ x.data + bias.data[0] - b                          # (40,)
        x.grad[...] = A.T @ r / len(b)
        bias.grad[...] = r.mean()
        return float(0.5 * np.mean(r * r))

    A1 = np.c_[A, np.ones(40)].astype(np.float64)
    r_best = A1 @ np.linalg.lstsq(A1, b, rcond=None)[0] - b
    return [x, bias], loss_and_grad, float(0.5 * np.mean(r_best**2))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make", [
    lambda ps: O.SGD(ps, lr=0.1), lambda ps: O.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    lambda ps: O.Adagrad(ps, lr=0.3), lambda ps: O.Adagrad.min_char_rnn(ps),
    lambda ps: O.RMSprop(ps, lr=0.01), lambda ps: O.RMSprop(ps, lr=0.01, centered=True,
                                                          momentum=0.5),
    lambda ps: O.RMSpropNesterov(ps), lambda ps: O.Adam(ps, lr=0.05),
    lambda ps: O.AdamW(ps, lr=0.05)],
    ids=["sgd", "sgd_nesterov", "adagrad", "adagrad_min_char_rnn", "rmsprop",
         "rmsprop_centered", "rmsprop_nesterov", "adam", "adamw"])
def test_training_lowers_a_least_squares_loss(make, dtype):
    params, loss_and_grad, best = least_squares(dtype)
    opt = make(params)
    first = loss_and_grad()
    for _ in range(300):
        loss = opt.step(loss_and_grad)
    assert loss - best < 0.01 * (first - best)


def test_learning_rate_is_read_at_every_step():
    params = make_params()
    before = [p.data.copy() for p in params]
    opt = O.SGD(params, lr=0.1)
    set_grads(params, np.random.default_rng(0))
    opt.lr = 0.0
    opt.step()
    assert all(np.array_equal(p.data, b) for p, b in zip(params, before))
    opt.lr = 0.1
    opt.step()
    assert all(np.allclose(p.data, b - 0.1 * p.grad) for p, b in zip(params, before))


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_grads_are_not_modified(name):
    params = make_params()
    opt = OPTIMIZERS[name](params, "kernels")
    set_grads(params, np.random.default_rng(0))
    grads = [p.grad.copy() for p in params]
    if name == "rmsprop_nesterov":
        opt.lookahead()
    opt.step()
    assert all(np.array_equal(p.grad, g) for p, g in zip(params, grads))


def test_zero_grad():
    params = make_params()
    set_grads(params, np.random.default_rng(0))
    grads = [p.grad for p in params]
    opt = O.Adam(params)
    opt.zero_grad()
    assert all(p.grad is g and not np.any(g) for p, g in zip(params, grads))
    opt.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in params)


# ---------------------------------------------------------------- published update rules

@pytest.mark.parametrize("backend", ["reference", "kernels"])
@pytest.mark.parametrize("use_closure", [False, True])
def test_rmsprop_nesterov_follows_the_article(backend, use_closure):
    """P. Roelants, "How to implement a recurrent neural network, part 2": the training loop
    of the article, written out (one entry per parameter), against RMSpropNesterov."""
    lmbd, learning_rate, momentum_term, eps = 0.5, 0.05, 0.80, 1e-6
    rng = np.random.default_rng(3)
    A = [rng.standard_normal(s) for s in ((3, 2), (3,), (1,))]

    def grads_at(Ps):                         # gradient of sum(sin(P) * A) + 0.5 |P|^2
        return [np.cos(P) * a + P for P, a in zip(Ps, A)]

    # the article
    Ps = [rng.standard_normal(a.shape) for a in A]
    params = [SimpleNamespace(data=P.copy(), grad=np.zeros_like(P)) for P in Ps]
    maSquare = [0.0 for _ in Ps]
    Vs = [0.0 for _ in Ps]
    opt = O.RMSpropNesterov(params, learning_rate=learning_rate, lmbd=lmbd,
                            momentum_term=momentum_term, eps=eps, backend=backend)

    def closure():
        for p, g in zip(params, grads_at([p.data for p in params])):
            p.grad[...] = g

    for _ in range(6):
        V_tmp = [v * momentum_term for v in Vs]
        for pIdx, P in enumerate(Ps):
            P += V_tmp[pIdx]
        backprop_grads = grads_at(Ps)
        for pIdx, P in enumerate(Ps):
            maSquare[pIdx] = lmbd * maSquare[pIdx] + (1 - lmbd) * backprop_grads[pIdx]**2
            pGradNorm = learning_rate * backprop_grads[pIdx] / np.sqrt(maSquare[pIdx] + eps)
            Vs[pIdx] = V_tmp[pIdx] - pGradNorm
            P -= pGradNorm

        if use_closure:
            opt.step(closure)
        else:
            opt.lookahead()
            closure()
            opt.step()
        assert not opt.at_lookahead
        for p, P, V, ms, v, m in zip(params, Ps, Vs, maSquare, opt.state["velocity"],
                                     opt.state["mean_square"]):
            if backend == "reference":      # the same operations in the same order
                assert np.array_equal(p.data, P) and np.array_equal(v, V)
                assert np.array_equal(m, ms)
            else:
                assert rel_err(p.data, P) <= 1e-12 and rel_err(v, V) <= 1e-12
                assert rel_err(m, ms) <= 1e-12


def test_rmsprop_nesterov_call_order_is_enforced():
    params = make_params()
    opt = O.RMSpropNesterov(params)
    with pytest.raises(RuntimeError, match="lookahead"):
        opt.step()
    opt.lookahead()
    with pytest.raises(RuntimeError, match="already"):
        opt.lookahead()
    opt.step()
    assert not opt.at_lookahead


@pytest.mark.parametrize("backend", ["reference", "kernels"])
def test_adagrad_min_char_rnn_follows_min_char_rnn(backend):
    """karpathy/min-char-rnn: clip to [-5, 5], mem += dparam * dparam,
    param += -learning_rate * dparam / np.sqrt(mem + 1e-8)."""
    learning_rate = 1e-1
    rng = np.random.default_rng(4)
    Ws = [rng.standard_normal(s) for s in ((5, 3), (5,))]
    params = [SimpleNamespace(data=W.copy(), grad=np.zeros_like(W)) for W in Ws]
    mems = [np.zeros_like(W) for W in Ws]
    opt = O.Adagrad.min_char_rnn(params, backend=backend)
    for _ in range(5):
        dparams = [8 * rng.standard_normal(W.shape) for W in Ws]
        for p, d in zip(params, dparams):
            p.grad[...] = d                                # unclipped: clipped below
        for param, dparam, mem in zip(Ws, dparams, mems):
            np.clip(dparam, -5, 5, out=dparam)
            mem += dparam * dparam
            param += -learning_rate * dparam / np.sqrt(mem + 1e-8)
        O.clip_grad_value_(params, 5, backend=backend)
        opt.step()
        for p, W in zip(params, Ws):
            assert rel_err(p.data, W) <= 1e-13


# ---------------------------------------------------------------- clipping vs PyTorch


@pytest.mark.parametrize("backend", ["reference", "kernels"])
def test_clip_grad_norm_with_nan_or_inf_like_torch(backend):
    torch = pytest.importorskip("torch")
    for bad in (np.nan, np.inf):
        g = np.array([1.0, bad, 2.0])
        params = [SimpleNamespace(data=np.zeros(3), grad=g.copy()),
                  SimpleNamespace(data=np.zeros(2), grad=np.array([3.0, 4.0]))]
        tparams = [torch.nn.Parameter(torch.zeros(3, dtype=torch.float64)),
                   torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))]
        for t, p in zip(tparams, params):
            t.grad = torch.from_numpy(p.grad.copy())
        with np.errstate(invalid="ignore"):            # NumPy warns about inf * 0
            norm = O.clip_grad_norm_(params, 1.0, backend=backend)
        tnorm = float(torch.nn.utils.clip_grad_norm_(tparams, 1.0))
        assert (math.isnan(norm) and math.isnan(tnorm)) or norm == tnorm
        for p, t in zip(params, tparams):
            np.testing.assert_array_equal(p.grad, t.grad.numpy())


# ---------------------------------------------------------------- schedules

def test_step_lr_char_rnn_decay():
    opt = O.SGD(make_params(), lr=2e-3)
    sched = O.StepLR(opt, step_size=1, gamma=0.97, first_decay=10)
    lrs = [opt.lr]
    for _ in range(12):
        sched.step()
        lrs.append(opt.lr)
    assert lrs[:10] == [2e-3] * 10
    assert lrs[10] == pytest.approx(2e-3 * 0.97) and lrs[12] == pytest.approx(2e-3 * 0.97**3)


def test_cosine_lr_with_warmup():
    opt = O.Adam(make_params(), lr=1.0)
    sched = O.CosineLR(opt, total_steps=10, min_lr=0.1, warmup_steps=4)
    lrs = [opt.lr]
    for _ in range(12):
        sched.step()
        lrs.append(opt.lr)
    assert lrs[:5] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert lrs[7] == pytest.approx(0.1 + 0.9 * 0.5)              # half way through the decay
    assert lrs[10:] == [pytest.approx(0.1)] * 3
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))


@pytest.mark.parametrize("make", [lambda o: O.StepLR(o, 3, 0.5),
                                  lambda o: O.CosineLR(o, 20, 1e-4, warmup_steps=3),
                                  lambda o: O.WarmupLR(o, 5)],
                         ids=["step", "cosine", "warmup"])
def test_schedule_state_dict_round_trip(make):
    opt = O.SGD(make_params(), lr=0.1)
    sched = make(opt)
    for _ in range(7):
        sched.step()
    sd = sched.state_dict()
    want = []
    for _ in range(5):
        sched.step()
        want.append(opt.lr)
    opt2 = O.SGD(make_params(), lr=0.1)
    sched2 = make(opt2)
    sched2.load_state_dict(sd)
    assert opt2.lr == sched2.lr_at(7) == sched2.lr
    got = []
    for _ in range(5):
        sched2.step()
        got.append(opt2.lr)
    assert got == want
    with pytest.raises(ValueError, match="schedule"):
        sched2.load_state_dict(dict(sd, schedule="Other"))
    with pytest.raises(ValueError, match="lacks"):
        sched2.load_state_dict({k: v for k, v in sd.items() if k != "base_lr"})


# ---------------------------------------------------------------- errors

def p64(*shape):
    return SimpleNamespace(data=np.zeros(shape), grad=np.zeros(shape))


@pytest.mark.parametrize("make, exc, message", [
    (lambda ps: O.SGD(ps, lr=-0.1), ValueError, "lr must be >= 0"),
    (lambda ps: O.SGD(ps, lr=float("nan")), ValueError, "lr must be a number, got NaN"),
    (lambda ps: O.SGD(ps, lr=float("inf")), ValueError, "lr must be a finite number"),
    (lambda ps: O.SGD(ps, lr="0.1"), TypeError, "lr must be a real number"),
    (lambda ps: O.SGD(ps, lr=0.1, momentum=-0.5), ValueError, "momentum must be >= 0"),
    (lambda ps: O.SGD(ps, lr=0.1, nesterov=True), ValueError, "nesterov=True requires"),
    (lambda ps: O.SGD(ps, lr=0.1, momentum=0.9, nesterov=1), TypeError, "nesterov"),
    (lambda ps: O.SGD(ps, lr=0.1, weight_decay=-1), ValueError, "weight_decay"),
    (lambda ps: O.Adagrad(ps, lr_decay=-1), ValueError, "lr_decay"),
    (lambda ps: O.Adagrad(ps, eps=-1e-10), ValueError, "eps must be >= 0"),
    (lambda ps: O.Adagrad(ps, initial_accumulator_value=-1), ValueError,
     "initial_accumulator_value"),
    (lambda ps: O.RMSprop(ps, alpha=1.5), ValueError, "alpha must be <= 1"),
    (lambda ps: O.RMSprop(ps, centered="yes"), TypeError, "centered"),
    (lambda ps: O.RMSpropNesterov(ps, learning_rate=-1), ValueError, "learning_rate"),
    (lambda ps: O.RMSpropNesterov(ps, lmbd=2), ValueError, "lmbd"),
    (lambda ps: O.RMSpropNesterov(ps, momentum_term=1.0), ValueError, "momentum_term"),
    (lambda ps: O.Adam(ps, betas=(1.0, 0.999)), ValueError, r"betas\[0\] must be < 1"),
    (lambda ps: O.Adam(ps, betas=(0.9, -0.1)), ValueError, r"betas\[1\] must be >= 0"),
    (lambda ps: O.Adam(ps, betas=0.9), TypeError, "betas must be a pair"),
    (lambda ps: O.AdamW(ps, eps=-1.0), ValueError, "eps"),
    (lambda ps: O.Adam(ps, backend="cuda"), ValueError, "backend must be one of"),
])
def test_bad_hyperparameters(make, exc, message):
    with pytest.raises(exc, match=message):
        make([p64(3)])


@pytest.mark.parametrize("params, exc, message", [
    ([], ValueError, "empty parameter list"),
    (np.zeros(3), TypeError, "not a numpy array"),
    (5, TypeError, "iterable of parameters"),
    ([np.zeros(3)], TypeError, r"params\[0\] must have .data and .grad"),
    ([SimpleNamespace(data=[1.0], grad=None)], TypeError, r"params\[0\].data must be a numpy"),
    ([SimpleNamespace(data=np.zeros(3, np.int64), grad=None)], TypeError, "float32 or float64"),
    ([SimpleNamespace(data=np.zeros((3, 4))[:, ::2], grad=None)], ValueError, "C-contiguous"),
    ([SimpleNamespace(data=np.zeros(3), grad=None),
      SimpleNamespace(data=np.zeros(2, np.float32), grad=None)], TypeError,
     r"params\[1\].data has dtype float32 but params\[0\].data has dtype float64"),
])
def test_bad_parameters(params, exc, message):
    with pytest.raises(exc, match=message):
        O.Adam(params)


def test_duplicate_parameter():
    p = p64(3)
    with pytest.raises(ValueError, match=r"params\[1\] is the same parameter as params\[0\]"):
        O.SGD([p, p], lr=0.1)


@pytest.mark.parametrize("spoil, exc, message", [
    (lambda ps: setattr(ps[1], "grad", None), ValueError, r"params\[1\].grad is None"),
    (lambda ps: setattr(ps[1], "grad", np.zeros(4)), ValueError,
     r"params\[1\].grad has shape \(4,\) but params\[1\].data has shape \(2, 3\)"),
    (lambda ps: setattr(ps[1], "grad", np.zeros((2, 3), np.float32)), TypeError,
     r"params\[1\].grad has dtype float32"),
    (lambda ps: setattr(ps[1], "grad", [0.0] * 6), TypeError, "must be a numpy array"),
    (lambda ps: setattr(ps[1], "data", np.zeros((3, 2))), ValueError,
     r"params\[1\].data has shape \(3, 2\) but had shape \(2, 3\)"),
    (lambda ps: setattr(ps[1], "data", np.zeros((2, 3), np.float32)), TypeError,
     "created with dtype float64"),
])
def test_bad_gradients_at_step_change_nothing(spoil, exc, message):
    params = [p64(3), p64(2, 3)]
    set_grads(params, np.random.default_rng(0))
    opt = O.Adam(params)
    before = [p.data.copy() for p in params]
    spoil(params)
    with pytest.raises(exc, match=message):
        opt.step()
    assert opt.step_count == 0 and opt.state == {}
    assert np.array_equal(params[0].data, before[0])


def test_bad_learning_rate_set_between_steps():
    opt = O.Adam([p64(3)])
    opt.lr = -1e-3
    with pytest.raises(ValueError, match="lr must be >= 0"):
        opt.step()


def test_clip_errors():
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        O.clip_grad_norm_([p64(2)], -1.0)
    with pytest.raises(ValueError, match="clip_value"):
        O.clip_grad_value_([p64(2)], float("nan"))
    with pytest.raises(TypeError, match=r"params\[0\].grad must be a float32 or float64"):
        O.clip_grad_norm_([SimpleNamespace(data=np.zeros(2), grad=np.zeros(2, np.int64))], 1.0)
    with pytest.raises(ValueError, match="C-contiguous"):
        O.clip_grad_value_([SimpleNamespace(data=None, grad=np.zeros((2, 4))[:, ::2])], 1.0)
    assert O.clip_grad_norm_([SimpleNamespace(data=np.zeros(2), grad=None)], 1.0) == 0.0


def test_schedule_errors():
    opt = O.SGD([p64(2)], lr=0.1)
    with pytest.raises(ValueError, match="step_size must be >= 1"):
        O.StepLR(opt, 0)
    with pytest.raises(ValueError, match="warmup_steps must be < total_steps"):
        O.CosineLR(opt, 5, warmup_steps=5)
    with pytest.raises(TypeError, match="total_steps must be an int"):
        O.CosineLR(opt, 5.5)
    with pytest.raises(ValueError, match="warmup_steps must be >= 1"):
        O.WarmupLR(opt, 0)
    with pytest.raises(TypeError, match="lr attribute"):
        O.StepLR(object(), 2)
