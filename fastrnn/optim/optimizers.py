"""The optimizers, with PyTorch's names and semantics (see ``fastrnn.optim``): SGD, Adagrad,
RMSprop, RMSpropNesterov, Adam, AdamW. Each validates its hyper-parameters and keeps its
states; the update itself is one call of ``fastrnn.kernels.optim`` (or the reference).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Tuple

import numpy as np

from .._checks import check_flag, check_real
from .base import Optimizer


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
        h = dict(lr=check_real("lr", h["lr"], 0),
                 momentum=check_real("momentum", h["momentum"], 0),
                 dampening=check_real("dampening", h["dampening"]),
                 weight_decay=check_real("weight_decay", h["weight_decay"], 0),
                 nesterov=check_flag("nesterov", h["nesterov"]))
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
        return dict(lr=check_real("lr", h["lr"], 0),
                    lr_decay=check_real("lr_decay", h["lr_decay"], 0),
                    weight_decay=check_real("weight_decay", h["weight_decay"], 0),
                    initial_accumulator_value=check_real("initial_accumulator_value",
                                                         h["initial_accumulator_value"], 0),
                    eps=check_real("eps", h["eps"], 0),
                    eps_in_sqrt=check_flag("eps_in_sqrt", h["eps_in_sqrt"]))

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
        return dict(lr=check_real("lr", h["lr"], 0), alpha=check_real("alpha", h["alpha"], 0, 1),
                    eps=check_real("eps", h["eps"], 0),
                    weight_decay=check_real("weight_decay", h["weight_decay"], 0),
                    momentum=check_real("momentum", h["momentum"], 0),
                    centered=check_flag("centered", h["centered"]))

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
        return dict(lr=check_real("learning_rate", h["lr"], 0),
                    lmbd=check_real("lmbd", h["lmbd"], 0, 1),
                    momentum_term=check_real("momentum_term", h["momentum_term"], 0, 1, True),
                    eps=check_real("eps", h["eps"], 0))

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
        return dict(lr=check_real("lr", h["lr"], 0),
                    beta1=check_real("betas[0]", h["beta1"], 0, 1, True),
                    beta2=check_real("betas[1]", h["beta2"], 0, 1, True),
                    eps=check_real("eps", h["eps"], 0),
                    weight_decay=check_real("weight_decay", h["weight_decay"], 0))

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
