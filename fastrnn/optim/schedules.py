"""Learning-rate schedules (see ``fastrnn.optim``): each sets ``optimizer.lr`` from the base
learning rate and the number of ``step()`` calls so far. StepLR, CosineLR, WarmupLR, BudgetLR.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

from .._checks import check_int, check_real, check_state_dict_of
from .base import Optimizer


class _Schedule:
    """Sets ``optimizer.lr = lr_at(step_count)`` at creation and after every ``step()``;
    ``base_lr`` is ``optimizer.lr`` at creation."""

    _HPARAMS = ()

    def __init__(self, optimizer, hparams):
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"optimizer must have an lr attribute, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = check_real("optimizer.lr", optimizer.lr, 0)
        for k, v in self._check_hparams(hparams).items():
            setattr(self, k, v)
        self.step_count = 0
        self._apply()

    def lr_at(self, t: int) -> float:
        raise NotImplementedError

    @property
    def lr(self) -> float:
        """The learning rate for the next optimizer step."""
        return self.lr_at(self.step_count)

    def _apply(self):
        self.optimizer.lr = self.lr_at(self.step_count)

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def state_dict(self) -> Dict[str, Any]:
        sd = {"schedule": type(self).__name__, "base_lr": self.base_lr,
              "step": self.step_count}
        sd.update({k: getattr(self, k) for k in self._HPARAMS})
        return sd

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        sd = state_dict
        check_state_dict_of(sd, "schedule", type(self).__name__)
        keys = ("schedule", "base_lr", "step", *self._HPARAMS)
        missing = [k for k in keys if k not in sd]
        extra = [k for k in sd if k not in keys]
        if missing or extra:
            raise ValueError(f"state_dict lacks {missing} / has unexpected keys {extra}")
        base_lr = check_real("state_dict['base_lr']", sd["base_lr"], 0)
        step = check_int("state_dict['step']", sd["step"], 0)
        hparams = self._check_hparams({k: sd[k] for k in self._HPARAMS})
        self.base_lr, self.step_count = base_lr, step
        for k, v in hparams.items():
            setattr(self, k, v)
        self._apply()

    def __repr__(self):
        h = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._HPARAMS)
        return f"{type(self).__name__}({h}) [base_lr={self.base_lr}, step {self.step_count}]"


class StepLR(_Schedule):
    """Multiplies the learning rate by ``gamma`` every ``step_size`` steps:
    ``lr = base_lr * gamma ** k`` with k decays so far, the first at step ``first_decay``
    (default ``step_size``: ``torch.optim.lr_scheduler.StepLR``), then every ``step_size``.

    char-rnn (decay by 0.97 after every epoch from epoch 10 on): ``StepLR(opt, step_size=1,
    gamma=0.97, first_decay=10)`` with ``step()`` once per epoch; torch-rnn (halve every 5
    epochs): ``StepLR(opt, 5, 0.5)``.
    """

    _HPARAMS = ("step_size", "gamma", "first_decay")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 first_decay: Optional[int] = None) -> None:
        super().__init__(optimizer, dict(step_size=step_size, gamma=gamma,
                                         first_decay=first_decay))

    @staticmethod
    def _check_hparams(h):
        step_size = check_int("step_size", h["step_size"], 1)
        first = step_size if h["first_decay"] is None else h["first_decay"]
        return dict(step_size=step_size, gamma=check_real("gamma", h["gamma"], 0),
                    first_decay=check_int("first_decay", first, 0))

    def lr_at(self, t: int) -> float:
        decays = 0 if t < self.first_decay else (t - self.first_decay) // self.step_size + 1
        return self.base_lr * self.gamma**decays


class CosineLR(_Schedule):
    """Linear warm-up over ``warmup_steps`` steps (``base_lr * (t + 1) / warmup_steps``),
    then cosine decay from ``base_lr`` to ``min_lr`` at step ``total_steps``, constant after:

        lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * (t - warmup) / (total - warmup))) / 2

    Without warm-up this is ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=total_steps,
    eta_min=min_lr)`` up to step ``total_steps``.
    """

    _HPARAMS = ("total_steps", "min_lr", "warmup_steps")

    def __init__(self, optimizer: Optimizer, total_steps: int, min_lr: float = 0.0,
                 warmup_steps: int = 0) -> None:
        super().__init__(optimizer, dict(total_steps=total_steps, min_lr=min_lr,
                                         warmup_steps=warmup_steps))

    @staticmethod
    def _check_hparams(h):
        total = check_int("total_steps", h["total_steps"], 1)
        warmup = check_int("warmup_steps", h["warmup_steps"], 0)
        if warmup >= total:
            raise ValueError(f"warmup_steps must be < total_steps = {total}, got {warmup}")
        return dict(total_steps=total, min_lr=check_real("min_lr", h["min_lr"], 0),
                    warmup_steps=warmup)

    def lr_at(self, t: int) -> float:
        if t < self.warmup_steps:
            return self.base_lr * (t + 1) / self.warmup_steps
        progress = min(1.0, (t - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2


class WarmupLR(_Schedule):
    """Linear warm-up, then constant: ``lr = base_lr * min(1, (t + 1) / warmup_steps)``
    (``torch.optim.lr_scheduler.LinearLR(start_factor=1 / warmup_steps,
    total_iters=warmup_steps - 1)``). For warm-up followed by decay use ``CosineLR``."""

    _HPARAMS = ("warmup_steps",)

    def __init__(self, optimizer: Optimizer, warmup_steps: int) -> None:
        super().__init__(optimizer, dict(warmup_steps=warmup_steps))

    @staticmethod
    def _check_hparams(h):
        return dict(warmup_steps=check_int("warmup_steps", h["warmup_steps"], 1))

    def lr_at(self, t: int) -> float:
        return self.base_lr * min(1.0, (t + 1) / self.warmup_steps)


class BudgetLR(_Schedule):
    """Warm-up, then cosine (or linear) decay to ``min_lr`` at the end of a budget whose length
    in steps may be re-estimated while training (a wall-time budget).

    The schedule is a function of a *progress* ``u`` in [0, 1]; the current *plan* says that
    progress grows linearly from ``plan_progress`` at step ``plan_step`` to 1 at ``end_step``:

        u(t) = plan_progress + (1 - plan_progress) * (t - plan_step) / (end_step - plan_step)

    (clipped to [0, 1]). With ``w = warmup`` (a fraction of the progress, 0 for none) and
    ``p = (max(u, w) - w) / (1 - w)``:

        decay(u) = min_lr + (base_lr - min_lr) * (1 + cos(pi p)) / 2       (shape "cosine")
                 = min_lr + (base_lr - min_lr) * (1 - p)                   (shape "linear")
        lr(t)    = decay(u(t)) * min(1, u(t + 1) / w)      (the second factor: warm-up)

    ``replan(step, end_step)`` starts a new plan at ``step`` from the progress reached there,
    so the learning rate of ``step`` is unchanged and only the speed of the remaining decay
    changes: a trainer with a wall-time budget calls it with its latest estimate of the last
    step, so a slower machine still ends at the bottom of the schedule. A fixed budget of N
    steps is one plan, ``BudgetLR(opt, N)``. The plan is part of ``state_dict()``, so a
    resumed schedule continues exactly (the learning rates depend only on the plans, never on
    a clock).
    """

    _HPARAMS = ("shape", "warmup", "min_lr", "plan_step", "plan_progress", "end_step")
    SHAPES = ("cosine", "linear")

    def __init__(self, optimizer, end_step, shape="cosine", warmup=0.02, min_lr=0.0):
        super().__init__(optimizer, dict(shape=shape, warmup=warmup, min_lr=min_lr,
                                         plan_step=0, plan_progress=0.0, end_step=end_step))

    @classmethod
    def _check_hparams(cls, h):
        if h["shape"] not in cls.SHAPES:
            raise ValueError(f"shape must be one of {cls.SHAPES}, got {h['shape']!r}")
        plan_step = check_int("plan_step", h["plan_step"], 0)
        end_step = check_int("end_step", h["end_step"], 0)
        if end_step <= plan_step:
            raise ValueError(f"end_step must be > plan_step = {plan_step}, got {end_step}")
        return dict(shape=h["shape"], warmup=check_real("warmup", h["warmup"], 0, 1, True),
                    min_lr=check_real("min_lr", h["min_lr"], 0), plan_step=plan_step,
                    plan_progress=check_real("plan_progress", h["plan_progress"], 0, 1),
                    end_step=end_step)

    def progress(self, t):
        """u(t), the fraction of the schedule done before step t, in [0, 1]."""
        u = self.plan_progress + (1.0 - self.plan_progress) * (t - self.plan_step) / (
            self.end_step - self.plan_step)
        return min(1.0, max(0.0, u))

    def lr_at(self, t):
        u, w = self.progress(t), self.warmup
        p = (max(u, w) - w) / (1.0 - w)
        if self.shape == "cosine":
            f = (1.0 + math.cos(math.pi * p)) / 2
        else:
            f = 1.0 - p
        lr = self.min_lr + (self.base_lr - self.min_lr) * f
        if w > 0 and u < w:
            lr *= min(1.0, self.progress(t + 1) / w)
        return lr

    @property
    def finished(self):
        """True once the progress has reached 1 (the learning rate is at ``min_lr``)."""
        return self.progress(self.step_count) >= 1.0

    def replan(self, step, end_step, progress=None):
        """A new plan from ``step`` (default progress: the current plan's at ``step``) to 1
        at ``end_step`` (raised to ``step + 1`` if it is not after ``step``)."""
        step = check_int("step", step, 0)
        end_step = max(check_int("end_step", end_step, 0), step + 1)
        u = self.progress(step) if progress is None else check_real("progress", progress, 0, 1)
        self.plan_step, self.plan_progress, self.end_step = step, u, end_step
        self._apply()
