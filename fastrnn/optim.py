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

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

import numpy as np

from ._checks import FLOAT_DTYPES

__all__ = ["SGD", "Adagrad", "RMSprop", "RMSpropNesterov", "Adam", "AdamW",
           "clip_grad_norm_", "clip_grad_value_", "StepLR", "CosineLR", "WarmupLR", "BudgetLR"]

BACKENDS = ("kernels", "reference")


def _backend_module(backend):
    if backend == "kernels":
        from .kernels import optim as mod
    elif backend == "reference":
        from .reference import optim as mod
    else:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return mod


# ---------------------------------------------------------------- argument checks

def _real(name, value, lo=None, hi=None, hi_open=False, allow_inf=False):
    """A real number (not bool) in [lo, hi] (or [lo, hi) with ``hi_open``); returns a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must be a number, got NaN")
    if math.isinf(value) and not allow_inf:
        raise ValueError(f"{name} must be a finite number, got {value}")
    if lo is not None and value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}")
    if hi is not None and (value >= hi if hi_open else value > hi):
        raise ValueError(f"{name} must be {'<' if hi_open else '<='} {hi}, got {value}")
    return value


def _int(name, value, lo):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}")
    return int(value)


def _flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_data(where, data):
    if not isinstance(data, np.ndarray):
        raise TypeError(f"{where}.data must be a numpy array, got {type(data).__name__}")
    if data.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{where}.data must have dtype float32 or float64, got {data.dtype}")
    if not data.flags.c_contiguous or not data.flags.writeable:
        raise ValueError(f"{where}.data must be a C-contiguous, writeable array (it is "
                         "updated in place)")


def _param_list(params, what):
    """``params`` as a list: an iterable of parameters or a single parameter."""
    if hasattr(params, "data") and hasattr(params, "grad"):
        return [params]
    if isinstance(params, np.ndarray):
        raise TypeError(f"{what} takes parameters (objects with .data and .grad arrays), "
                        "not a numpy array")
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"{what} takes an iterable of parameters (objects with .data and "
                        f".grad arrays), got {type(params).__name__}") from None
    for i, p in enumerate(params):
        if not (hasattr(p, "data") and hasattr(p, "grad")):
            raise TypeError(f"params[{i}] must have .data and .grad attributes (like "
                            f"fastrnn.nn.Parameter), got {type(p).__name__}")
    return params


def _check_params(params, what):
    """-> (list of parameters, dtype): non-empty, no duplicates, one float dtype."""
    params = _param_list(params, what)
    if not params:
        raise ValueError(f"{what} got an empty parameter list: there is nothing to optimize")
    seen = {}
    for i, p in enumerate(params):
        if id(p) in seen:
            raise ValueError(f"params[{i}] is the same parameter as params[{seen[id(p)]}]; "
                             "each parameter may appear once")
        seen[id(p)] = i
        _check_data(f"params[{i}]", p.data)
    dtype = params[0].data.dtype
    for i, p in enumerate(params):
        if p.data.dtype != dtype:
            raise TypeError(f"params[{i}].data has dtype {p.data.dtype} but params[0].data has "
                            f"dtype {dtype}: all parameters of one optimizer must share one "
                            "dtype (float32 or float64)")
    return params, dtype


# ---------------------------------------------------------------- optimizers

class Optimizer:
    """Base class: parameter and state bookkeeping, validation, ``state_dict``.

    A subclass defines ``_HPARAMS`` (attribute names of its scalar hyper-parameters),
    ``_STATES`` (names of its per-parameter state arrays), ``_check_hparams(h)`` (validates
    a dict of hyper-parameters, returns it normalised), ``_active_states()`` (the states the
    current hyper-parameters use; or override ``_ensure_states``, as SGD does) and
    ``_update(i, data, grad)``.
    """

    _HPARAMS = ()
    _STATES = ()
    _EXTRA = ()          # flags saved in state_dict, kept as attributes "_<name>"

    def __init__(self, params: Iterable[Any], hparams: Dict[str, Any], backend: str) -> None:
        self.params, self.dtype = _check_params(params, type(self).__name__)
        self._shapes = [p.data.shape for p in self.params]
        self._fn = _backend_module(backend)
        self._backend = backend
        for name, value in self._check_hparams(hparams).items():
            setattr(self, name, value)
        self.step_count = 0
        self.state = {}      # state name -> list of arrays, one per parameter

    @property
    def backend(self) -> str:
        return self._backend

    def __repr__(self):
        h = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._HPARAMS)
        return (f"{type(self).__name__}({h}, backend={self._backend!r}) "
                f"[{len(self.params)} {self.dtype} parameters, {self.step_count} steps]")

    # ------------------------------------------------------------ checks
    def _hparams(self):
        return {k: getattr(self, k) for k in self._HPARAMS}

    def _check_arrays(self, need_grad=True):
        """Every parameter still has its dtype and shape, and a matching grad; -> [(data,
        grad)]. Runs before any update, so a bad parameter changes nothing."""
        out = []
        for i, p in enumerate(self.params):
            data, grad = p.data, p.grad
            _check_data(f"params[{i}]", data)
            if data.dtype != self.dtype:
                raise TypeError(f"params[{i}].data has dtype {data.dtype} but the optimizer "
                                f"was created with dtype {self.dtype}")
            if data.shape != self._shapes[i]:
                raise ValueError(f"params[{i}].data has shape {data.shape} but had shape "
                                 f"{self._shapes[i]} when the optimizer was created")
            if need_grad:
                if grad is None:
                    raise ValueError(f"params[{i}].grad is None: compute the gradients "
                                     "before step()")
                if not isinstance(grad, np.ndarray):
                    raise TypeError(f"params[{i}].grad must be a numpy array, got "
                                    f"{type(grad).__name__}")
                if grad.dtype != data.dtype:
                    raise TypeError(f"params[{i}].grad has dtype {grad.dtype} but "
                                    f"params[{i}].data has dtype {data.dtype}")
                if grad.shape != data.shape:
                    raise ValueError(f"params[{i}].grad has shape {grad.shape} but "
                                     f"params[{i}].data has shape {data.shape}")
            out.append((data, grad))
        return out

    def _ensure_states(self):
        """Creates the states the current hyper-parameters use (zeros unless overridden)."""
        for name in self._active_states():
            if name not in self.state:
                self.state[name] = [self._new_state(name, s) for s in self._shapes]

    def _new_state(self, name, shape):
        return np.zeros(shape, self.dtype)

    # ------------------------------------------------------------ public API
    def zero_grad(self, set_to_none: bool = False) -> None:
        """Sets every gradient to zero in place (``set_to_none=True``: to None)."""
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.fill(0)

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """One update of every parameter from its ``.grad``. ``closure``: a function that
        recomputes the gradients and returns the loss; it is called first and its result is
        returned."""
        loss = closure() if closure is not None else None
        for k, v in self._check_hparams(self._hparams()).items():
            setattr(self, k, v)
        arrays = self._check_arrays()
        self._ensure_states()
        self.step_count += 1
        for i, (data, grad) in enumerate(arrays):
            self._update(i, data, grad)
        return loss

    def state_dict(self) -> Dict[str, Any]:
        sd = {"optimizer": type(self).__name__, "num_params": len(self.params),
              "step": self.step_count}
        sd.update(self._hparams())
        for name in self._EXTRA:
            sd[name] = getattr(self, "_" + name)
        for name in self._STATES:
            if name in self.state:
                for i, a in enumerate(self.state[name]):
                    sd[f"{name}.{i}"] = a.copy()
        return sd

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restores a ``state_dict()``; raises ``ValueError`` (``TypeError`` for a wrong
        type) before changing anything if it does not fit this optimizer."""
        sd = state_dict
        if not isinstance(sd, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(sd).__name__}")
        cls = type(self).__name__
        if sd.get("optimizer") != cls:
            raise ValueError(f"state_dict is for optimizer {sd.get('optimizer')!r}, not {cls!r}")
        n = len(self.params)
        if sd.get("num_params") != n:
            raise ValueError(f"state_dict is for {sd.get('num_params')} parameters, this "
                             f"optimizer has {n}")
        scalar_keys = ("optimizer", "num_params", "step", *self._HPARAMS, *self._EXTRA)
        missing = [k for k in scalar_keys if k not in sd]
        if missing:
            raise ValueError(f"state_dict lacks {missing}")
        step = _int("state_dict['step']", sd["step"], 0)
        hparams = self._check_hparams({k: sd[k] for k in self._HPARAMS})
        extra = {k: _flag(f"state_dict[{k!r}]", sd[k]) for k in self._EXTRA}
        states = {}
        for key in sd:
            if key in scalar_keys:
                continue
            name, _, idx = key.rpartition(".") if isinstance(key, str) else ("", "", "")
            if (name not in self._STATES or not idx.isdigit() or str(int(idx)) != idx
                    or int(idx) >= n):
                raise ValueError(f"state_dict has an unexpected key {key!r} (expected "
                                 f"'<state>.<index>' with state in {self._STATES} and index "
                                 f"< {n})")
            states.setdefault(name, {})[int(idx)] = sd[key]
        for name, arrays in states.items():
            if len(arrays) != n:
                lacking = sorted(set(range(n)) - set(arrays))
                raise ValueError(f"state_dict has {name!r} for {len(arrays)} of {n} "
                                 f"parameters (missing indices {lacking})")
            for i, a in arrays.items():
                if not isinstance(a, np.ndarray):
                    raise ValueError(f"state_dict['{name}.{i}'] must be a numpy array, got "
                                     f"{type(a).__name__}")
                if a.dtype != self.dtype:
                    raise ValueError(f"state_dict['{name}.{i}'] has dtype {a.dtype}, the "
                                     f"parameters have dtype {self.dtype}")
                if a.shape != self._shapes[i]:
                    raise ValueError(f"state_dict['{name}.{i}'] has shape {a.shape}, "
                                     f"params[{i}] has shape {self._shapes[i]}")
        # everything checked: apply
        for k, v in hparams.items():
            setattr(self, k, v)
        for k, v in extra.items():
            setattr(self, "_" + k, v)
        self.step_count = step
        self.state = {name: [np.array(arrays[i], order="C", copy=True) for i in range(n)]
                      for name, arrays in states.items()}


class SGD(Optimizer):
    """torch.optim.SGD: ``g = grad + weight_decay * p``; with momentum ``buf = momentum * buf
    + (1 - dampening) * g`` (``buf = g`` on the first step) and ``g = buf`` (or ``g +
    momentum * buf`` with ``nesterov``); ``p -= lr * g``."""

    _HPARAMS = ("lr", "momentum", "dampening", "weight_decay", "nesterov")
    _STATES = ("momentum_buffer",)

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 backend: str = "kernels") -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov), backend)

    @staticmethod
    def _check_hparams(h):
        h = dict(lr=_real("lr", h["lr"], 0), momentum=_real("momentum", h["momentum"], 0),
                 dampening=_real("dampening", h["dampening"]),
                 weight_decay=_real("weight_decay", h["weight_decay"], 0),
                 nesterov=_flag("nesterov", h["nesterov"]))
        if h["nesterov"] and (h["momentum"] <= 0 or h["dampening"] != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening = 0, got "
                             f"momentum={h['momentum']}, dampening={h['dampening']}")
        return h

    def _ensure_states(self):
        # The buffer is created by the first step with momentum, which sets it to the gradient.
        self._first = self.momentum != 0 and "momentum_buffer" not in self.state
        if self._first:
            self.state["momentum_buffer"] = [np.empty(s, self.dtype) for s in self._shapes]

    def _update(self, i, data, grad):
        buf = self.state["momentum_buffer"][i] if self.momentum != 0 else None
        self._fn.sgd_update(data, grad, buf, self.lr, self.momentum, self.dampening,
                            self.weight_decay, self.nesterov, self._first)


class Adagrad(Optimizer):
    """torch.optim.Adagrad: ``g = grad + weight_decay * p``, ``clr = lr / (1 + (t - 1) *
    lr_decay)``, ``sum += g * g``, ``p -= clr * g / (sqrt(sum) + eps)``.

    ``eps_in_sqrt=True`` puts eps inside the root, ``p -= clr * g / sqrt(sum + eps)``: with
    ``lr=0.1, eps=1e-8`` that is min-char-rnn's update (``Adagrad.min_char_rnn``), which also
    clips every gradient to [-5, 5] first: ``clip_grad_value_(params, 5)``.
    """

    _HPARAMS = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps",
                "eps_in_sqrt")
    _STATES = ("sum",)

    def __init__(self, params: Iterable[Any], lr: float = 0.01, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, eps_in_sqrt: bool = False,
                 backend: str = "kernels") -> None:
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, eps_in_sqrt=eps_in_sqrt), backend)

    @classmethod
    def min_char_rnn(cls, params: Iterable[Any], lr: float = 0.1,
                     backend: str = "kernels") -> Adagrad:
        """min-char-rnn's Adagrad: ``mem += g * g; p -= lr * g / sqrt(mem + 1e-8)``."""
        return cls(params, lr=lr, eps=1e-8, eps_in_sqrt=True, backend=backend)

    @staticmethod
    def _check_hparams(h):
        return dict(lr=_real("lr", h["lr"], 0), lr_decay=_real("lr_decay", h["lr_decay"], 0),
                    weight_decay=_real("weight_decay", h["weight_decay"], 0),
                    initial_accumulator_value=_real("initial_accumulator_value",
                                                    h["initial_accumulator_value"], 0),
                    eps=_real("eps", h["eps"], 0),
                    eps_in_sqrt=_flag("eps_in_sqrt", h["eps_in_sqrt"]))

    def _active_states(self):
        return ("sum",)

    def _new_state(self, name, shape):
        return np.full(shape, self.initial_accumulator_value, self.dtype)

    def _update(self, i, data, grad):
        self._fn.adagrad_update(data, grad, self.state["sum"][i], self.step_count, self.lr,
                                self.lr_decay, self.weight_decay, self.eps, self.eps_in_sqrt)


class RMSprop(Optimizer):
    """torch.optim.RMSprop: ``g = grad + weight_decay * p``, ``sq = alpha * sq + (1 - alpha)
    * g * g``, ``avg = sqrt(sq) + eps`` (``centered``: ``sqrt(sq - mean(g)**2) + eps``);
    ``p -= lr * g / avg``, or with momentum ``buf = momentum * buf + g / avg; p -= lr *
    buf``. char-rnn trains with torch/optim's ``rmsprop.lua``, which also adds eps after
    the root: ``RMSprop(params, lr=2e-3, alpha=0.95)``. Roelants' variant with Nesterov
    momentum is ``RMSpropNesterov``."""

    _HPARAMS = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")
    _STATES = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params: Iterable[Any], lr: float = 0.01, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, backend: str = "kernels") -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered), backend)

    @staticmethod
    def _check_hparams(h):
        return dict(lr=_real("lr", h["lr"], 0), alpha=_real("alpha", h["alpha"], 0, 1),
                    eps=_real("eps", h["eps"], 0),
                    weight_decay=_real("weight_decay", h["weight_decay"], 0),
                    momentum=_real("momentum", h["momentum"], 0),
                    centered=_flag("centered", h["centered"]))

    def _active_states(self):
        return (("square_avg",) + (("momentum_buffer",) if self.momentum != 0 else ())
                + (("grad_avg",) if self.centered else ()))

    def _update(self, i, data, grad):
        st = self.state
        buf = st["momentum_buffer"][i] if self.momentum != 0 else None
        grad_avg = st["grad_avg"][i] if self.centered else None
        self._fn.rmsprop_update(data, grad, st["square_avg"][i], buf, grad_avg, self.lr,
                                self.alpha, self.eps, self.weight_decay, self.momentum,
                                self.centered)


class RMSpropNesterov(Optimizer):
    """RMSprop with Nesterov momentum, as in P. Roelants, "How to implement a recurrent neural
    network, part 2" (binary addition): the gradient is evaluated at the look-ahead point
    ``p + momentum_term * v``, then

        ms = lmbd * ms + (1 - lmbd) * g**2
        v = momentum_term * v - learning_rate * g / sqrt(ms + eps)
        p = p + v

    Defaults are the article's. ``learning_rate`` is stored as ``lr`` (for schedules).

    Two ways to drive it:

        opt.lookahead()                  # params -> look-ahead point
        compute gradients                # at the look-ahead point
        opt.step()                       # update, params -> p + v

        loss = opt.step(closure)         # the same: lookahead(), closure(), update

    ``step()`` without a preceding ``lookahead()`` (and without closure) raises
    ``RuntimeError``; so does a second ``lookahead()``. Between ``lookahead()`` and
    ``step()`` the parameters hold the look-ahead point (``at_lookahead`` is True), so
    evaluate the model after ``step()``.
    """

    _HPARAMS = ("lr", "lmbd", "momentum_term", "eps")
    _STATES = ("mean_square", "velocity")
    _EXTRA = ("at_lookahead",)

    def __init__(self, params: Iterable[Any], learning_rate: float = 0.05, lmbd: float = 0.5,
                 momentum_term: float = 0.8, eps: float = 1e-6,
                 backend: str = "kernels") -> None:
        super().__init__(params, dict(lr=learning_rate, lmbd=lmbd, momentum_term=momentum_term,
                                      eps=eps), backend)
        self._at_lookahead = False

    @property
    def at_lookahead(self) -> bool:
        return self._at_lookahead

    @staticmethod
    def _check_hparams(h):
        return dict(lr=_real("learning_rate", h["lr"], 0), lmbd=_real("lmbd", h["lmbd"], 0, 1),
                    momentum_term=_real("momentum_term", h["momentum_term"], 0, 1, True),
                    eps=_real("eps", h["eps"], 0))

    def _active_states(self):
        return ("mean_square", "velocity")

    def lookahead(self) -> None:
        """Moves every parameter to its look-ahead point ``p + momentum_term * v``."""
        if self._at_lookahead:
            raise RuntimeError("lookahead() was already called: call step() before the next "
                               "lookahead()")
        for k, v in self._check_hparams(self._hparams()).items():
            setattr(self, k, v)
        arrays = self._check_arrays(need_grad=False)
        self._ensure_states()
        for i, (data, _) in enumerate(arrays):
            self._fn.rmsprop_nesterov_lookahead(data, self.state["velocity"][i],
                                                self.momentum_term)
        self._at_lookahead = True

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        if closure is not None:
            if not self._at_lookahead:
                self.lookahead()
            loss = closure()
        elif not self._at_lookahead:
            raise RuntimeError("RMSpropNesterov needs the gradient at the look-ahead point: "
                               "call lookahead() before computing the gradients, then step(); "
                               "or pass step(closure)")
        else:
            loss = None
        super().step()
        self._at_lookahead = False
        return loss

    def _update(self, i, data, grad):
        self._fn.rmsprop_nesterov_update(data, grad, self.state["mean_square"][i],
                                         self.state["velocity"][i], self.lr, self.lmbd,
                                         self.momentum_term, self.eps)


class Adam(Optimizer):
    """torch.optim.Adam (L2 ``weight_decay`` added to the gradient): ``m += (1 - beta1) *
    (g - m)``, ``v = beta2 * v + (1 - beta2) * g * g``, ``p -= lr / (1 - beta1**t) * m /
    (sqrt(v) / sqrt(1 - beta2**t) + eps)`` at step t = 1, 2, ..."""

    _HPARAMS = ("lr", "beta1", "beta2", "eps", "weight_decay")
    _STATES = ("exp_avg", "exp_avg_sq")
    _DECOUPLED = False

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, backend: str = "kernels") -> None:
        beta1, beta2 = self._split_betas(betas)
        super().__init__(params, dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                                      weight_decay=weight_decay), backend)

    @staticmethod
    def _split_betas(betas):
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
        return beta1, beta2

    @property
    def betas(self) -> Tuple[float, float]:
        return (self.beta1, self.beta2)

    @betas.setter
    def betas(self, betas):
        self.beta1, self.beta2 = self._split_betas(betas)

    @staticmethod
    def _check_hparams(h):
        return dict(lr=_real("lr", h["lr"], 0),
                    beta1=_real("betas[0]", h["beta1"], 0, 1, True),
                    beta2=_real("betas[1]", h["beta2"], 0, 1, True),
                    eps=_real("eps", h["eps"], 0),
                    weight_decay=_real("weight_decay", h["weight_decay"], 0))

    def _active_states(self):
        return ("exp_avg", "exp_avg_sq")

    def _update(self, i, data, grad):
        self._fn.adam_update(data, grad, self.state["exp_avg"][i], self.state["exp_avg_sq"][i],
                             self.step_count, self.lr, self.beta1, self.beta2, self.eps,
                             self.weight_decay, self._DECOUPLED)


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay, ``p *= 1 - lr * weight_decay``
    before the Adam update (the gradient is not changed)."""

    _DECOUPLED = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, backend: str = "kernels") -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         backend=backend)


# ---------------------------------------------------------------- clipping

def _grads(params, what):
    """The non-None gradients of ``params`` (checked: float arrays updated in place)."""
    grads = []
    for i, p in enumerate(_param_list(params, what)):
        g = p.grad
        if g is None:
            continue
        if not isinstance(g, np.ndarray) or g.dtype not in FLOAT_DTYPES:
            raise TypeError(f"params[{i}].grad must be a float32 or float64 numpy array, got "
                            f"{getattr(g, 'dtype', type(g).__name__)}")
        if not g.flags.c_contiguous or not g.flags.writeable:
            raise ValueError(f"params[{i}].grad must be a C-contiguous, writeable array (it is "
                             "clipped in place)")
        grads.append(g)
    return grads


def clip_grad_norm_(params: Iterable[Any], max_norm: float, backend: str = "kernels") -> float:
    """Scales all gradients together so that their global L2 norm is at most ``max_norm``,
    like ``torch.nn.utils.clip_grad_norm_``: ``g *= max_norm / (norm + 1e-6)`` when that
    factor is below 1. The norm is accumulated in float64 over every element (grads that are
    None are skipped). Returns the norm before clipping (a float); NaN or Inf in a gradient
    gives a NaN/Inf norm and NaN gradients, as in PyTorch (check the returned norm)."""
    max_norm = _real("max_norm", max_norm, 0, allow_inf=True)
    fn = _backend_module(backend)
    grads = _grads(params, "clip_grad_norm_")
    total = math.sqrt(sum(fn.sum_squares(g) for g in grads))
    coef = max_norm / (total + 1e-6)
    if not coef >= 1.0:          # also scales by NaN when the norm is NaN, as PyTorch does
        for g in grads:
            fn.scale(g, coef)
    return total


def clip_grad_value_(params: Iterable[Any], clip_value: float,
                     backend: str = "kernels") -> None:
    """Clamps every gradient element to [-clip_value, clip_value] in place (NaN stays NaN),
    like ``torch.nn.utils.clip_grad_value_``."""
    clip_value = _real("clip_value", clip_value, 0, allow_inf=True)
    fn = _backend_module(backend)
    for g in _grads(params, "clip_grad_value_"):
        fn.clip_value(g, clip_value)


# ---------------------------------------------------------------- schedules

class _Schedule:
    """Sets ``optimizer.lr = lr_at(step_count)`` at creation and after every ``step()``;
    ``base_lr`` is ``optimizer.lr`` at creation."""

    _HPARAMS = ()

    def __init__(self, optimizer, hparams):
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"optimizer must have an lr attribute, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = _real("optimizer.lr", optimizer.lr, 0)
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
        if not isinstance(sd, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(sd).__name__}")
        if sd.get("schedule") != type(self).__name__:
            raise ValueError(f"state_dict is for schedule {sd.get('schedule')!r}, not "
                             f"{type(self).__name__!r}")
        keys = ("schedule", "base_lr", "step", *self._HPARAMS)
        missing = [k for k in keys if k not in sd]
        extra = [k for k in sd if k not in keys]
        if missing or extra:
            raise ValueError(f"state_dict lacks {missing} / has unexpected keys {extra}")
        base_lr = _real("state_dict['base_lr']", sd["base_lr"], 0)
        step = _int("state_dict['step']", sd["step"], 0)
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
        step_size = _int("step_size", h["step_size"], 1)
        first = step_size if h["first_decay"] is None else h["first_decay"]
        return dict(step_size=step_size, gamma=_real("gamma", h["gamma"], 0),
                    first_decay=_int("first_decay", first, 0))

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
        total = _int("total_steps", h["total_steps"], 1)
        warmup = _int("warmup_steps", h["warmup_steps"], 0)
        if warmup >= total:
            raise ValueError(f"warmup_steps must be < total_steps = {total}, got {warmup}")
        return dict(total_steps=total, min_lr=_real("min_lr", h["min_lr"], 0),
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
        return dict(warmup_steps=_int("warmup_steps", h["warmup_steps"], 1))

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
        plan_step = _int("plan_step", h["plan_step"], 0)
        end_step = _int("end_step", h["end_step"], 0)
        if end_step <= plan_step:
            raise ValueError(f"end_step must be > plan_step = {plan_step}, got {end_step}")
        return dict(shape=h["shape"], warmup=_real("warmup", h["warmup"], 0, 1, True),
                    min_lr=_real("min_lr", h["min_lr"], 0), plan_step=plan_step,
                    plan_progress=_real("plan_progress", h["plan_progress"], 0, 1),
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
        step = _int("step", step, 0)
        end_step = max(_int("end_step", end_step, 0), step + 1)
        u = self.progress(step) if progress is None else _real("progress", progress, 0, 1)
        self.plan_step, self.plan_progress, self.end_step = step, u, end_step
        self._apply()
