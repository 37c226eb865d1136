"""PyTorch interchange: fastrnn modules to and from ``torch.nn`` modules with the same weights.

- ``to_torch(module)`` / ``from_torch(module)``: ``Recurrent`` <-> ``torch.nn.LSTM``/``GRU``/
  ``RNN`` (the cell's ``torch_class`` in ``fastrnn.cells``, its options passed by name),
  ``Linear`` <-> ``torch.nn.Linear``, ``Embedding`` <-> ``torch.nn.Embedding``, and
  ``CharRNN`` <-> ``TorchCharRNN``. Weights are copied bit for bit both ways: parameter names,
  shapes and gate orders are PyTorch's already (LSTM i, f, g, o; GRU r, z, n).
- ``TorchCharRNN``: fastrnn's character model as a small ``torch.nn.Module``: token ids ->
  one-hot -> ``nn.LSTM/GRU/RNN(V, H, L)`` -> ``nn.Linear(H, V)``. Its ``state_dict()`` keys and
  shapes are ``CharRNN.state_dict()``'s (``rnn.weight_ih_l0`` ... ``decoder.bias``). fastrnn's
  first layer reads a token as a row of its ``(V, G*H)`` table ``W_ih^T + b_ih``, which is
  exactly ``W_ih @ onehot + b_ih``: the same weights, no conversion.
- A torch model with an ``nn.Embedding`` in front (torch-rnn's architecture: attributes
  ``embedding`` or ``encoder``, ``rnn``, ``decoder``) converts with ``from_torch`` too: the
  embedding is folded into the first layer (``W_ih @ E^T``, computed in float64), which gives
  the same logits up to rounding.
- ``export(checkpoint, out, format)``: a checkpoint's model as a torch file (``torch.save`` of
  the state dict, config and vocabulary; loads with ``weights_only=True``), a safetensors file
  (weights, config and vocabulary in its metadata) or a plain ``.npz``.

PyTorch is optional (the ``torch`` extra) and imported only by the functions that need it.
"""

import json
import os

import numpy as np

from . import cells, nn

FORMATS = ("torch", "safetensors", "npz")
SUFFIXES = {".pt": "torch", ".pth": "torch", ".safetensors": "safetensors", ".npz": "npz"}
EXPORT_FORMAT = "fastrnn-charrnn"


def _torch():
    try:
        import torch
    except ImportError as e:
        raise ImportError("this needs PyTorch, which is not installed: pip install "
                          "'fastrnn[torch]' (the README shows how to get the CPU build)") from e
    return torch


_CLASSES = {}


def _cell_classes(torch):
    """cell name -> its torch.nn class, for every cell that has one (``Cell.torch_class``)."""
    return {c.name: getattr(torch.nn, c.torch_class) for c in cells.CELLS.values()
            if c.torch_class}


def _class_names():
    """"nn.RNN/LSTM/GRU": the torch classes of the cells, for messages."""
    return "nn." + "/".join(c.torch_class for c in cells.CELLS.values() if c.torch_class)


def _options(cell, module):
    """A torch RNN module's values of the cell's options (torch's keyword names)."""
    return {key: getattr(module, key) for key in cell.options}


def _torch_char_rnn_class():
    """``TorchCharRNN``, defined on first use (torch is an optional dependency)."""
    if "TorchCharRNN" in _CLASSES:
        return _CLASSES["TorchCharRNN"]
    torch = _torch()

    class TorchCharRNN(torch.nn.Module):
        """fastrnn's ``CharRNN`` in PyTorch: ids (T, B) -> one-hot -> ``rnn`` -> ``decoder``.

        ``forward(ids, state=None)`` takes int64 token ids (T, B) (time-major, as fastrnn) and
        returns ``logits (T, B, V), state`` (``h_n``, or ``(h_n, c_n)`` for the LSTM).
        """

        def __init__(self, vocab_size, hidden_size=128, num_layers=2, cell="lstm",
                     dropout=0.0, dtype=torch.float32):
            super().__init__()
            classes = _cell_classes(torch)
            if cell not in classes:
                raise ValueError(f"cell must be one of {sorted(classes)}, got {cell!r}")
            self.vocab_size, self.cell = int(vocab_size), cell
            self.rnn = classes[cell](vocab_size, hidden_size, num_layers, dropout=dropout)
            self.decoder = torch.nn.Linear(hidden_size, vocab_size)
            self.to(dtype)

        def forward(self, ids, state=None):
            x = torch.nn.functional.one_hot(ids, self.vocab_size).to(self.decoder.weight.dtype)
            out, state = self.rnn(x, state)                     # (T, B, H)
            return self.decoder(out), state                     # (T, B, V)

    _CLASSES["TorchCharRNN"] = TorchCharRNN
    return TorchCharRNN


def __getattr__(name):                 # ``from fastrnn.torch_interop import TorchCharRNN``
    if name == "TorchCharRNN":
        return _torch_char_rnn_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _numpy_state(module):
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def _torch_dtype(torch, np_dtype):
    return torch.float64 if np.dtype(np_dtype) == np.float64 else torch.float32


# ---------------------------------------------------------------- fastrnn -> torch

def to_torch(module):
    """The equivalent torch module with the same weights (float32/float64 as ``module``).

    ``CharRNN`` -> ``TorchCharRNN``; ``Recurrent`` -> ``torch.nn.LSTM``/``GRU``/``RNN`` (a
    token-input ``Recurrent``, such as ``CharRNN.rnn``, becomes the module that reads one-hot
    vectors of the vocabulary size); ``Linear``, ``Embedding`` -> their torch namesakes."""
    torch = _torch()
    if isinstance(module, nn.CharRNN):
        rnn = module.rnn
        if rnn._kw() != rnn.spec.defaults:
            raise ValueError(f"TorchCharRNN builds the {rnn.cell} cell with its default "
                             f"options {rnn.spec.defaults}, the model has {rnn._kw()}")
        t = _torch_char_rnn_class()(module.vocab_size, rnn.hidden_size, rnn.num_layers,
                                    rnn.cell, rnn.dropout, _torch_dtype(torch, rnn.dtype))
        state = module.state_dict()
    elif isinstance(module, nn.Linear):
        out, inp = module.weight.data.shape
        t, state = torch.nn.Linear(inp, out), module.state_dict()
    elif isinstance(module, nn.Embedding):
        t, state = torch.nn.Embedding(*module.weight.data.shape), module.state_dict()
    elif isinstance(module, nn.Recurrent):
        if hasattr(module, "h0"):
            raise ValueError("a learnable initial state (learn_initial_state=True) has no "
                             f"torch.{_class_names()} equivalent: pass it as the initial "
                             "state (module.initial_state(batch)) instead")
        classes = _cell_classes(torch)
        if module.cell not in classes:
            raise ValueError(f"the {module.cell} cell has no torch.nn equivalent")
        t = classes[module.cell](module.input_size, module.hidden_size, module.num_layers,
                                 dropout=module.dropout, batch_first=module.batch_first,
                                 **module._kw())
        state = module.state_dict()
    else:
        raise TypeError(f"cannot convert {type(module).__name__} to torch (expected a "
                        "fastrnn CharRNN, Recurrent, Linear or Embedding)")
    dtype = next(iter(state.values())).dtype
    t = t.to(_torch_dtype(torch, dtype))
    t.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return t


# ---------------------------------------------------------------- torch -> fastrnn

def _torch_cell(torch, module):
    """The cell (``fastrnn.cells.Cell``) whose torch class ``module`` is, or None."""
    for name, cls in _cell_classes(torch).items():
        if isinstance(module, cls):
            return cells.CELLS[name]
    return None


def _check_plain_rnn(module):
    if module.bidirectional or getattr(module, "proj_size", 0) or not module.bias:
        raise ValueError("bidirectional, projected or bias-free torch RNNs are not supported")


def from_torch(module, dtype=None, backend="kernels"):
    """A fastrnn module with the weights of a torch module.

    ``torch.nn.LSTM``/``GRU``/``RNN`` -> ``Recurrent``; ``Linear``/``Embedding`` -> their
    fastrnn namesakes; ``TorchCharRNN``, or any module with ``rnn`` (a one-layer-input torch
    RNN reading one-hot vectors) and ``decoder`` (``Linear``) attributes -> ``CharRNN``; with an
    ``embedding`` or ``encoder`` (``nn.Embedding``) attribute as well, the embedding is folded
    into the first layer. ``dtype``: float32/float64 (default: the module's);
    ``backend``: ``"kernels"`` (compiled) or ``"reference"`` (NumPy)."""
    torch = _torch()
    if isinstance(module, torch.nn.Linear):
        sd = _numpy_state(module)
        m = nn.Linear(module.in_features, module.out_features, dtype=dtype or sd["weight"].dtype)
        m.load_state_dict(sd)
        return m
    if isinstance(module, torch.nn.Embedding):
        sd = _numpy_state(module)
        m = nn.Embedding(module.num_embeddings, module.embedding_dim,
                         dtype=dtype or sd["weight"].dtype)
        m.load_state_dict(sd)
        return m
    cell = _torch_cell(torch, module)
    if cell is not None:
        _check_plain_rnn(module)
        sd = _numpy_state(module)
        m = nn.Recurrent(cell.name, module.input_size, module.hidden_size, module.num_layers,
                         dropout=module.dropout, batch_first=module.batch_first,
                         dtype=dtype or sd["weight_ih_l0"].dtype, backend=backend,
                         **_options(cell, module))
        m.load_state_dict(sd)
        return m
    if isinstance(module, torch.nn.Module) and hasattr(module, "rnn") \
            and hasattr(module, "decoder"):
        return _char_rnn_from_torch(torch, module, dtype, backend)
    raise TypeError(f"cannot convert {type(module).__name__} from torch (expected "
                    f"{_class_names()}, nn.Linear, nn.Embedding, or a character model with "
                    "rnn and decoder attributes such as TorchCharRNN)")


def _char_rnn_from_torch(torch, module, dtype, backend):
    rnn, decoder = module.rnn, module.decoder
    embedding = getattr(module, "embedding", None) or getattr(module, "encoder", None)
    cell = _torch_cell(torch, rnn)
    if cell is None or not isinstance(decoder, torch.nn.Linear):
        raise TypeError(f"a character model needs rnn = {_class_names()} and decoder = "
                        "nn.Linear")
    _check_plain_rnn(rnn)
    if rnn.batch_first:
        raise ValueError("batch_first torch RNNs are not supported as a character model "
                         "(fastrnn's CharRNN is time-major)")
    if _options(cell, rnn) != cell.defaults:
        raise ValueError(f"CharRNN's {cell.name} cell uses its default options "
                         f"{cell.defaults}, the torch module has {_options(cell, rnn)}")
    sd = {"rnn." + k: v for k, v in _numpy_state(rnn).items()}
    sd.update({"decoder." + k: v for k, v in _numpy_state(decoder).items()})
    if embedding is not None:
        if not isinstance(embedding, torch.nn.Embedding) or embedding.max_norm is not None:
            raise TypeError("the embedding must be an nn.Embedding without max_norm")
        table = embedding.weight.detach().cpu().numpy()                 # (V, E)
        w = sd["rnn.weight_ih_l0"]                                       # (G*H, E)
        sd["rnn.weight_ih_l0"] = (w.astype(np.float64) @ table.astype(np.float64).T
                                  ).astype(w.dtype)                      # (G*H, V)
    vocab = sd["rnn.weight_ih_l0"].shape[1]
    if decoder.out_features != vocab or decoder.in_features != rnn.hidden_size:
        raise ValueError(f"decoder must be Linear({rnn.hidden_size}, {vocab}), got "
                         f"Linear({decoder.in_features}, {decoder.out_features})")
    m = nn.CharRNN(vocab, rnn.hidden_size, rnn.num_layers, cell.name, dropout=rnn.dropout,
                   dtype=dtype or sd["rnn.weight_ih_l0"].dtype, backend=backend)
    m.load_state_dict(sd)
    return m


# ---------------------------------------------------------------- export

def format_for(path, format=None):
    """The export format: ``format`` if given, else from the file name's suffix."""
    if format is None:
        format = SUFFIXES.get(os.path.splitext(str(path))[1].lower())
        if format is None:
            raise ValueError(f"cannot tell the format from the name {path}: give --format "
                             f"{'|'.join(FORMATS)} (or name it .pt, .safetensors or .npz)")
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    return format


def require(format):
    """Import the optional package a format needs, or raise ImportError naming the extra."""
    if format == "torch":
        _torch()
    elif format == "safetensors":
        try:
            import safetensors.numpy  # noqa: F401
        except ImportError as e:
            raise ImportError("--format safetensors needs the safetensors package, which is "
                              "not installed: pip install 'fastrnn[safetensors]'") from e


def export(checkpoint, out, format=None):
    """Write the model of ``checkpoint`` (a file or run directory) to ``out`` as ``format``
    (``torch``, ``safetensors`` or ``npz``; default: from ``out``'s suffix). Every format holds
    the ``CharRNN`` state dict (the same keys as ``TorchCharRNN``'s), the model config
    (``TorchCharRNN(**config)``) and the vocabulary (``fastrnn.data.Vocab.from_json``).
    Returns the format written."""
    from .sample import load_model
    format = format_for(out, format)
    require(format)                                # before any work
    model, vocab, tree = load_model(checkpoint)
    cfg = tree["config"]
    config = {"vocab_size": model.vocab_size, "hidden_size": cfg["hidden"],
              "num_layers": cfg["layers"], "cell": cfg["cell"], "dropout": cfg["dropout"]}
    state = {k: np.ascontiguousarray(v) for k, v in model.state_dict().items()}
    meta = {"format": EXPORT_FORMAT, "config": config, "vocab": vocab.to_json(),
            "dtype": cfg["dtype"], "step": tree["step"]}
    from . import _files
    tmp = _files.temp_name(out)                    # the one temporary-name scheme
    try:
        if format == "torch":
            torch = _torch()
            torch.save({**meta, "state_dict": {k: torch.from_numpy(v) for k, v in state.items()}},
                       tmp)
        elif format == "safetensors":
            from safetensors.numpy import save_file
            save_file(state, tmp, metadata={k: json.dumps(v) for k, v in meta.items()})
        else:
            with open(tmp, "wb") as f:
                np.savez(f, **state, **{f"__{k}__": np.array(json.dumps(v))
                                        for k, v in meta.items()})
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return format
