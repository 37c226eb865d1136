"""The drop-in APIs of ``fastrnn.compat`` against the plain-NumPy code they replace, on the same
inputs: cs231n's ``lstm_forward + lstm_backward`` / ``rnn_*`` (N in {50, 8, 1}, T=50,
D=H=128), min-char-rnn's ``lossFun``, the U,V,W tutorial's ``bptt``, the "RNN from scratch"
tutorial's ``full_forward_prop + rnn_backprop``, the binary adder's ``getParamGrads`` and one
step of its training loop, each at the tutorial's own sizes.

The cases and the NumPy originals are those of ``fastrnn.compat.speed`` (its ``CASES``),
so this suite and ``fastrnn bench --compat`` time the same code.
"""

from fastrnn.compat import speed as _speed

from .common import TIMEOUT, TIMER


def _label(factory, kwargs):
    name = factory.__name__.removesuffix("_case")
    args = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{name}({args})" if args else name


CASES = {_label(factory, kwargs): (factory, kwargs) for factory, kwargs, _ in _speed.CASES}


class Compat:
    params = (list(CASES), ["compat", "numpy"])
    param_names = ["case", "backend"]
    timer = TIMER
    timeout = TIMEOUT

    def setup(self, case, backend):
        factory, kwargs = CASES[case]
        _, _, compat, original = factory(**kwargs)
        self.fn = compat if backend == "compat" else original
        self.fn()                               # compiles / loads the kernels

    def time_call(self, case, backend):
        self.fn()
