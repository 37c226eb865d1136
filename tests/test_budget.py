"""fastrnn.budget: the budget-shaped learning-rate schedule (``optim.BudgetLR``) and the
trainer's deadline re-estimation with a fake clock: a slower machine still ends at the bottom
of the schedule."""

import math
import types

import numpy as np
import pytest

from fastrnn import checkpoint as ckpt
from fastrnn import optim, train


def opt(lr=1.0):
    p = types.SimpleNamespace(data=np.zeros(2, np.float32), grad=np.zeros(2, np.float32))
    return optim.SGD([p], lr=lr)


def lrs(sched, n):
    out = []
    for _ in range(n):
        out.append(sched.optimizer.lr)
        sched.step()
    return out


@pytest.mark.parametrize("shape", ["cosine", "linear"])
def test_warmup_then_decay_to_zero_at_the_end(shape):
    s = optim.BudgetLR(opt(2.0), 100, shape=shape, warmup=0.1)
    v = lrs(s, 100)
    np.testing.assert_allclose(v[:10], 2.0 * np.arange(1, 11) / 10)       # linear warm-up
    assert all(a >= b for a, b in zip(v[10:], v[11:]))                   # then decreasing
    mid = 2.0 * ((1 + math.cos(math.pi * 0.5)) / 2 if shape == "cosine" else 0.5)
    assert v[55] == pytest.approx(mid)                 # progress 0.55: half-way through decay
    assert 0 < v[-1] < 2.0 / 90 * 1.01 and s.optimizer.lr == 0.0 and s.finished   # 1 step left


def test_replan_moves_the_end_without_a_jump():
    s = optim.BudgetLR(opt(), 100, warmup=0.0)
    lrs(s, 40)
    before = s.optimizer.lr
    s.replan(40, 200)                                  # a slower machine: more steps left
    assert s.optimizer.lr == before and s.progress(40) == pytest.approx(0.4)
    assert s.progress(120) == pytest.approx(0.7) and s.progress(200) == 1.0
    s.replan(40, 10)                                   # an end before now: the next step
    assert s.end_step == 41
    with pytest.raises(ValueError, match="shape must be one of"):
        optim.BudgetLR(opt(), 10, shape="exp")


def test_state_dict_continues_exactly():
    a = optim.BudgetLR(opt(), 50, warmup=0.1)
    lrs(a, 7)
    a.replan(7, 80)
    b = optim.BudgetLR(opt(), 1)
    b.load_state_dict(a.state_dict())
    assert lrs(a, 60) == lrs(b, 60)


class FakeClock:
    """Seconds that pass only when a training step runs (``dt`` per step)."""

    def __init__(self, dt):
        self.now, self.dt = 0.0, dt

    def __call__(self):
        return self.now


def timed_trainer(corpus, out, clock, **kw):
    base = dict(corpus=str(corpus), hidden=8, layers=1, seq=8, batch=4, time=10.0,
                eval_every=10_000, checkpoint_every=10_000, out=str(out), warmup=0.05)
    base.update(kw)
    t = train.Trainer(train.TrainConfig(**base), progress=False, clock=clock,
                      log=lambda *a: None)
    real = t._step

    def step(x, y):
        clock.now += clock.dt() if callable(clock.dt) else clock.dt
        return real(x, y)
    t._step = step
    return t


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("the cat sat on the mat. " * 400)
    return p


def test_a_time_budget_ends_at_the_bottom_of_the_schedule(corpus, tmp_path):
    clock = FakeClock(0.02)                            # 500 steps in 10 s
    t = timed_trainer(corpus, tmp_path / "even", clock)
    lr_log = []
    real_update = t._update
    t._update = lambda: (lr_log.append(t.opt.lr), real_update())[1]
    assert t.run() == "done"
    assert 495 <= t.step <= 501
    assert max(lr_log) == pytest.approx(t.cfg.lr, rel=1e-3)
    assert lr_log[-1] < 0.01 * t.cfg.lr                # the last step is at the bottom

    # a machine that becomes 3x slower half-way: the decay is stretched, no step at lr=0
    clock = FakeClock(None)
    clock.dt = lambda: 0.02 if clock.now < 5 else 0.06
    t = timed_trainer(corpus, tmp_path / "slow", clock)
    lr_log = []
    real_update2 = t._update
    t._update = lambda: (lr_log.append(t.opt.lr), real_update2())[1]
    assert t.run() == "done"
    assert 320 <= t.step <= 340                        # 250 fast + ~83 slow steps
    assert lr_log[-1] < 0.02 * t.cfg.lr
    assert min(lr_log[:-1]) > 0                        # it did not sit at 0 before the end


def test_time_shorter_than_the_first_step_says_so_and_keeps_a_checkpoint(corpus, tmp_path):
    clock = FakeClock(7.5)                             # compiling: the first step takes 7.5 s
    messages = []
    t = timed_trainer(corpus, tmp_path / "short", clock, time=1.0)
    t.log = messages.append
    assert t.run() == "done" and t.step == 1
    assert "shorter than the first step, which took 7.5 s" in messages[-1]
    assert ckpt.load(t.checkpoint_path)["step"] == 1


def test_resumed_time_run_continues_the_saved_plan(corpus, tmp_path):
    clock = FakeClock(0.02)
    t = timed_trainer(corpus, tmp_path / "r", clock, time=4.0)
    assert t.run() == "done" and t.sched.finished
    saved = ckpt.load(t.checkpoint_path)["scheduler"]
    assert saved["schedule"] == "BudgetLR" and saved["step"] == t.step
    # interrupted half-way (the plan is not finished): the resumed run starts at its LR
    tree = ckpt.load(t.checkpoint_path)
    r = train.Trainer(t.cfg, resume=t.checkpoint_path, progress=False)
    assert r.sched.finished is False and r.sched.progress(r.step) == 0.0   # a new schedule
    s = optim.BudgetLR(opt(), 100)
    lrs(s, 30)
    tree["scheduler"] = s.state_dict()
    tree["step"] = 30
    tree["optimizer"]["step"] = 30
    ckpt.save(str(tmp_path / "mid.npz"), tree)
    r = train.Trainer(t.cfg, resume=str(tmp_path / "mid.npz"), progress=False)
    assert r.opt.lr == s.optimizer.lr and r.sched.progress(30) == pytest.approx(0.3)
