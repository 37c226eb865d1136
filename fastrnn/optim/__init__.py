"""Optimizers, gradient clipping and learning-rate schedules, with PyTorch's names and
semantics.

Parameters are any objects with ``.data`` and ``.grad`` ndarrays of one shape and dtype
(``fastrnn.nn.Parameter``, or ``types.SimpleNamespace(data=..., grad=...)``). All parameters
of one optimizer share one dtype (float32 or float64, never converted); ``.data`` is updated
in place and must be C-contiguous; ``.grad`` is only read.

    opt = Adam(model.parameters(), lr=2e-3)
    sched = StepLR(opt, step_size=1, gamma=0.97, first_decay=10)   # char-rnn's decay
    for epoch in range(epochs):
        for x, y in batches:
            opt.zero_grad()
            loss = forward_backward(x, y)          # fills p.grad
            clip_grad_norm_(params, 5.0)
            opt.step()
        sched.step()                               # once per epoch here

Optimizers (``backend='kernels'``: the compiled ``fastrnn.kernels.optim``, default;
``'reference'``: the NumPy ``fastrnn.reference.optim``, same results to round-off):

    SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False)
    Adagrad(params, lr=0.01, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
            eps=1e-10, eps_in_sqrt=False)        Adagrad.min_char_rnn(params, lr=0.1)
    RMSprop(params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False)
    RMSpropNesterov(params, learning_rate=0.05, lmbd=0.5, momentum_term=0.8, eps=1e-6)
    Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)
    AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)

Each has ``step(closure=None)``, ``zero_grad()``, ``state_dict()``, ``load_state_dict(sd)``,
``step_count`` (updates done) and its hyper-parameters as attributes (``opt.lr`` for
schedules; all are validated again at every step). States are created, as zeros, at the first
step that uses them (SGD's momentum buffer starts as the first gradient, as in PyTorch).

``state_dict()`` is a flat dict of Python scalars, strings and NumPy arrays (copies)::

    {"optimizer": "Adam", "num_params": 2, "step": 10,       # class name, len(params), steps
     "lr": 0.001, "beta1": 0.9, "beta2": 0.999, ...,          # every hyper-parameter
     "exp_avg.0": ndarray, "exp_avg.1": ndarray,              # "<state>.<param index>"
     "exp_avg_sq.0": ndarray, ...}

(``RMSpropNesterov`` adds ``"at_lookahead": bool``.) ``load_state_dict`` checks the class name,
the number of parameters, every hyper-parameter, and the shape and dtype of every array
against the parameters, and raises ``ValueError`` before changing anything; afterwards the
optimizer continues bit-identically (the parameters themselves are saved by the model).

Clipping: ``clip_grad_norm_(params, max_norm)`` (global L2 norm, PyTorch's formula with
``eps=1e-6``; returns the norm before clipping) and ``clip_grad_value_(params, clip_value)``.

Schedules set ``optimizer.lr`` from the base learning rate (``optimizer.lr`` when the schedule
is created) and the number of ``schedule.step()`` calls so far; whether that is once per
iteration or once per epoch is the caller's choice (``step_size``, ``total_steps`` and
``warmup_steps`` count those calls):

    StepLR(optimizer, step_size, gamma=0.1, first_decay=None)
    CosineLR(optimizer, total_steps, min_lr=0.0, warmup_steps=0)
    WarmupLR(optimizer, warmup_steps)
    BudgetLR(optimizer, end_step, shape="cosine", warmup=0.02, min_lr=0.0)

``BudgetLR`` is the trainer's schedule for a budget whose length in steps is only estimated
(a wall-time budget): warm-up then decay to ``min_lr``, driven by a *progress* that reaches 1
at ``end_step``; ``replan(step, end_step)`` moves the end without a jump in the learning rate.

One schedule per optimizer: they set ``lr`` and do not compose (``CosineLR`` has its own
warm-up).
"""

from .base import BACKENDS, Optimizer
from .clipping import clip_grad_norm_, clip_grad_value_
from .optimizers import SGD, Adagrad, Adam, AdamW, RMSprop, RMSpropNesterov
from .schedules import BudgetLR, CosineLR, StepLR, WarmupLR

__all__ = ["SGD", "Adagrad", "RMSprop", "RMSpropNesterov", "Adam", "AdamW",
           "clip_grad_norm_", "clip_grad_value_", "StepLR", "CosineLR", "WarmupLR", "BudgetLR"]
