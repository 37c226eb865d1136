"""fastrnn.optim with the NumPy reference backend against torch.optim: every optimizer and
option, one and several steps, a learning rate changed between steps, float64 to 1e-12
relative; the schedules against torch.optim.lr_scheduler."""

from types import SimpleNamespace

import numpy as np
import pytest

from cells import rel_err
from fastrnn import optim as O

torch = pytest.importorskip("torch")

TOL = 1e-12
# every rank, odd sizes, one element, a 0-d parameter
SHAPES = [(3, 4), (5,), (1,), (), (2, 3, 7)]


def run_against_torch(make_ours, make_torch, steps, lrs=None, shapes=SHAPES, seed=0):
    """Runs both optimizers on the same parameters with gradients 0.5 * p + noise_k
    (computed by each side from its own parameters) and checks the parameters after every
    step; ``lrs``: learning rate set on both before each step."""
    rng = np.random.default_rng(seed)
    datas = [np.asarray(rng.standard_normal(s)) for s in shapes]
    ours = [SimpleNamespace(data=d.copy(), grad=None) for d in datas]
    theirs = [torch.nn.Parameter(torch.from_numpy(d.copy())) for d in datas]
    opt, topt = make_ours(ours), make_torch(theirs)
    for k in range(steps):
        for p, t in zip(ours, theirs):
            noise = rng.standard_normal(p.data.shape)
            p.grad = np.asarray(0.5 * p.data + noise)
            t.grad = torch.from_numpy(np.asarray(0.5 * t.detach().numpy() + noise))
        if lrs is not None:
            opt.lr = lrs[k]
            for group in topt.param_groups:
                group["lr"] = lrs[k]
        opt.step()
        topt.step()
        for i, (p, t) in enumerate(zip(ours, theirs)):
            want = t.detach().numpy()
            assert p.data.shape == want.shape and p.data.dtype == np.float64
            err = rel_err(p.data, want)
            assert err <= TOL, f"step {k + 1}, params[{i}]: rel err {err:.2e}"
    return ours


CASES = {
    "sgd": (dict(lr=0.1), dict(lr=0.1)),
    "sgd_momentum": (dict(lr=0.1, momentum=0.9), dict(lr=0.1, momentum=0.9)),
    "sgd_dampening": (dict(lr=0.1, momentum=0.9, dampening=0.3),
                      dict(lr=0.1, momentum=0.9, dampening=0.3)),
    "sgd_nesterov": (dict(lr=0.1, momentum=0.8, nesterov=True),
                     dict(lr=0.1, momentum=0.8, nesterov=True)),
    "sgd_weight_decay": (dict(lr=0.1, weight_decay=0.05), dict(lr=0.1, weight_decay=0.05)),
    "sgd_all": (dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True),
                dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True)),
    "adagrad": (dict(lr=0.1), dict(lr=0.1)),
    "adagrad_lr_decay": (dict(lr=0.1, lr_decay=0.2), dict(lr=0.1, lr_decay=0.2)),
    "adagrad_weight_decay": (dict(lr=0.1, weight_decay=0.05), dict(lr=0.1, weight_decay=0.05)),
    "adagrad_init_eps": (dict(lr=0.1, initial_accumulator_value=0.3, eps=1e-3),
                         dict(lr=0.1, initial_accumulator_value=0.3, eps=1e-3)),
    "rmsprop": (dict(lr=0.01), dict(lr=0.01)),
    "rmsprop_charrnn": (dict(lr=2e-3, alpha=0.95, eps=1e-8), dict(lr=2e-3, alpha=0.95, eps=1e-8)),
    "rmsprop_momentum": (dict(lr=0.01, momentum=0.9), dict(lr=0.01, momentum=0.9)),
    "rmsprop_centered": (dict(lr=0.01, centered=True), dict(lr=0.01, centered=True)),
    "rmsprop_all": (dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.02, momentum=0.5,
                         centered=True),
                    dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.02, momentum=0.5,
                         centered=True)),
    "adam": (dict(), dict()),
    "adam_options": (dict(lr=0.01, betas=(0.8, 0.99), eps=1e-4, weight_decay=0.05),
                     dict(lr=0.01, betas=(0.8, 0.99), eps=1e-4, weight_decay=0.05)),
    "adam_beta1_zero": (dict(lr=0.01, betas=(0.0, 0.9)), dict(lr=0.01, betas=(0.0, 0.9))),
    "adamw": (dict(), dict()),
    "adamw_options": (dict(lr=0.01, betas=(0.85, 0.95), eps=1e-6, weight_decay=0.1),
                      dict(lr=0.01, betas=(0.85, 0.95), eps=1e-6, weight_decay=0.1)),
    "adamw_no_decay": (dict(lr=0.01, weight_decay=0.0), dict(lr=0.01, weight_decay=0.0)),
}
CLASSES = {"sgd": ("SGD", "SGD"), "adagrad": ("Adagrad", "Adagrad"),
           "rmsprop": ("RMSprop", "RMSprop"), "adam": ("Adam", "Adam"),
           "adamw": ("AdamW", "AdamW")}


def classes_of(case):
    ours, theirs = CLASSES[case.split("_")[0]]
    return getattr(O, ours), getattr(torch.optim, theirs)


@pytest.mark.parametrize("steps", [1, 6])
@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch(case, steps):
    cls, tcls = classes_of(case)
    kw, tkw = CASES[case]
    run_against_torch(lambda ps: cls(ps, **kw, backend="reference"),
                      lambda ts: tcls(ts, **tkw, foreach=False), steps)


@pytest.mark.parametrize("case", ["sgd_momentum", "adagrad_lr_decay", "rmsprop_all", "adam",
                                  "adamw_options"])
def test_learning_rate_changed_between_steps_matches_torch(case):
    cls, tcls = classes_of(case)
    kw, tkw = CASES[case]
    lrs = [0.05, 0.02, 0.0, 0.1, 0.03]
    run_against_torch(lambda ps: cls(ps, **kw, backend="reference"),
                      lambda ts: tcls(ts, **tkw, foreach=False), len(lrs), lrs=lrs)


def test_matches_torch_on_a_large_parameter():
    run_against_torch(lambda ps: O.Adam(ps, lr=0.01, backend="reference"),
                      lambda ts: torch.optim.Adam(ts, lr=0.01, foreach=False), 3,
                      shapes=[(300, 257)])


# ---------------------------------------------------------------- clipping


@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(max_norm):
    rng = np.random.default_rng(1)
    grads = [np.asarray(rng.standard_normal(s)) for s in SHAPES]
    ours = [SimpleNamespace(data=np.zeros_like(g), grad=g.copy()) for g in grads]
    theirs = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads]
    for t, g in zip(theirs, grads):
        t.grad = torch.from_numpy(g.copy())
    norm = O.clip_grad_norm_(ours, max_norm, backend="reference")
    tnorm = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
    assert isinstance(norm, float)
    assert abs(norm - float(tnorm)) <= TOL * norm
    for p, t in zip(ours, theirs):
        assert rel_err(p.grad, t.grad.numpy()) <= TOL


def test_clip_grad_value_matches_torch():
    rng = np.random.default_rng(2)
    grads = [np.asarray(3 * rng.standard_normal(s)) for s in SHAPES]
    ours = [SimpleNamespace(data=np.zeros_like(g), grad=g.copy()) for g in grads]
    theirs = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads]
    for t, g in zip(theirs, grads):
        t.grad = torch.from_numpy(g.copy())
    O.clip_grad_value_(ours, 1.5, backend="reference")
    torch.nn.utils.clip_grad_value_(theirs, 1.5)
    for p, t in zip(ours, theirs):
        assert np.array_equal(p.grad, t.grad.numpy())
    assert max(np.abs(g).max() for g in grads) > 1.5          # something was clipped


# ---------------------------------------------------------------- schedules


def lr_sequences(make_ours, make_torch, steps, base_lr=0.1):
    p = SimpleNamespace(data=np.zeros(2), grad=np.zeros(2))
    opt = O.SGD([p], lr=base_lr)
    tp = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    topt = torch.optim.SGD([tp], lr=base_lr)
    sched, tsched = make_ours(opt), make_torch(topt)
    ours, theirs = [opt.lr], [topt.param_groups[0]["lr"]]
    for _ in range(steps):
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
        ours.append(opt.lr)
        theirs.append(topt.param_groups[0]["lr"])
    return np.array(ours), np.array(theirs)


@pytest.mark.parametrize("step_size, gamma", [(1, 0.97), (3, 0.5), (5, 0.1)])
def test_step_lr_matches_torch(step_size, gamma):
    ours, theirs = lr_sequences(lambda o: O.StepLR(o, step_size, gamma),
                                lambda t: torch.optim.lr_scheduler.StepLR(t, step_size, gamma),
                                17)
    assert rel_err(ours, theirs) <= TOL


@pytest.mark.parametrize("total, min_lr", [(10, 0.0), (7, 1e-3)])
def test_cosine_lr_matches_torch(total, min_lr):
    ours, theirs = lr_sequences(
        lambda o: O.CosineLR(o, total, min_lr=min_lr),
        lambda t: torch.optim.lr_scheduler.CosineAnnealingLR(t, T_max=total, eta_min=min_lr),
        total)
    assert rel_err(ours, theirs) <= TOL
    assert ours[-1] == pytest.approx(min_lr, abs=1e-15)


def test_warmup_lr_matches_torch_linear_lr():
    w = 4
    ours, theirs = lr_sequences(
        lambda o: O.WarmupLR(o, w),
        lambda t: torch.optim.lr_scheduler.LinearLR(t, start_factor=1 / w, end_factor=1.0,
                                                    total_iters=w - 1),
        9)
    assert rel_err(ours, theirs) <= TOL
