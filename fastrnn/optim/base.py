"""The optimizers' base class: parameter and state bookkeeping, validation, ``state_dict``
(see ``fastrnn.optim`` for the contract), and the backend lookup optimizers and clipping share.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Optional

import numpy as np

from .._checks import (check_flag, check_int, check_optimizer_arrays, check_params,
                       check_state_dict_of)

BACKENDS = ("kernels", "reference")


def _backend_module(backend):
    if backend == "kernels":
        from ..kernels import optim as mod
    elif backend == "reference":
        from ..reference import optim as mod
    else:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return mod


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
        self.params, self.dtype = check_params(params, type(self).__name__)
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
        return check_optimizer_arrays(self.params, self.dtype, self._shapes, need_grad)

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
        check_state_dict_of(sd, "optimizer", type(self).__name__)
        n = len(self.params)
        if sd.get("num_params") != n:
            raise ValueError(f"state_dict is for {sd.get('num_params')} parameters, this "
                             f"optimizer has {n}")
        scalar_keys = ("optimizer", "num_params", "step", *self._HPARAMS, *self._EXTRA)
        missing = [k for k in scalar_keys if k not in sd]
        if missing:
            raise ValueError(f"state_dict lacks {missing}")
        step = check_int("state_dict['step']", sd["step"], 0)
        hparams = self._check_hparams({k: sd[k] for k in self._HPARAMS})
        extra = {k: check_flag(f"state_dict[{k!r}]", sd[k]) for k in self._EXTRA}
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
