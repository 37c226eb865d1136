"""The public API is typed (PEP 561 marker shipped) and documents its parameters."""

import inspect
import os

import pytest

import fastrnn
from fastrnn import data, nn, optim, sample
from fastrnn.compat import binary_adder, cs231n, minchar, numpy_rnn, rnn_from_scratch

PUBLIC = {nn: ["Parameter", "Module", "Embedding", "Linear", "Recurrent", "CrossEntropy",
               "CharRNN", "Sampler", "check_ids", "from_torch", "to_torch"],
          data: ["Vocab", "StreamBatcher", "load_corpus", "default_corpus_path", "cache_root"],
          optim: ["Optimizer", "SGD", "Adagrad", "RMSprop", "RMSpropNesterov", "Adam", "AdamW",
                  "clip_grad_norm_", "clip_grad_value_", "StepLR", "CosineLR", "WarmupLR"],
          cs231n: [n for n in cs231n.__all__ if not n.startswith("_")]
          if hasattr(cs231n, "__all__") else
          [n for n, f in vars(cs231n).items() if callable(f) and not n.startswith("_")
           and getattr(f, "__module__", "") == cs231n.__name__],
          minchar: ["lossFun", "sample", "MinCharRNN", "main"],
          numpy_rnn: ["softmax", "RNNNumpy", "train_with_sgd"],
          rnn_from_scratch: rnn_from_scratch.__all__,
          binary_adder: binary_adder.__all__,
          sample: ["load_model", "generate", "stream", "beam_search", "evaluate_file",
                   "eval_streams", "resolve", "bits"]}


def _functions(obj):
    if inspect.isclass(obj):
        for name, f in vars(obj).items():
            if isinstance(f, (classmethod, staticmethod)):
                f = f.__func__
            if isinstance(f, property):
                f = f.fget
            if inspect.isfunction(f) and (not name.startswith("_") or name in ("__init__",
                                                                             "__call__")):
                yield f"{obj.__name__}.{name}", f
    else:
        yield obj.__name__, obj


@pytest.mark.parametrize("module", list(PUBLIC), ids=lambda m: m.__name__)
def test_public_functions_are_annotated(module):
    missing = []
    for name in PUBLIC[module]:
        for qual, f in _functions(getattr(module, name)):
            sig = inspect.signature(f)
            for p in sig.parameters.values():
                if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty:
                    missing.append(f"{qual}({p.name})")
            if sig.return_annotation is inspect.Signature.empty:
                missing.append(f"{qual} -> ?")
    assert not missing, missing


def test_py_typed_marker_is_shipped():
    assert os.path.exists(os.path.join(os.path.dirname(fastrnn.__file__), "py.typed"))


@pytest.mark.parametrize("cls,params", [
    (nn.Recurrent, ["cell", "nonlinearity", "input_size", "hidden_size", "num_layers",
                    "dropout", "batch_first", "truncate", "learn_initial_state", "token_input",
                    "init", "forget_bias", "dtype", "seed", "backend", "backward"]),
    (nn.CharRNN, ["vocab_size", "cell", "hidden_size", "num_layers", "dropout", "truncate",
                  "init", "forget_bias", "dtype", "seed", "backend", "backward"]),
])
def test_every_parameter_is_documented(cls, params):
    doc = cls.__doc__
    assert all(f"``{p}``" in doc for p in params), [p for p in params if f"``{p}``" not in doc]
    assert set(inspect.signature(cls).parameters) <= set(params)
