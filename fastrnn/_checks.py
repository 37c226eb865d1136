"""Input validation shared by every public entry point (reference and kernels alike).

Each check raises a ``TypeError`` (wrong type or dtype) or ``ValueError`` (wrong shape or
value) whose message names the argument, what was expected and what was given, so that no
bad input ever reaches a compiled kernel.
"""

import math
import numbers
import os
import stat
from collections.abc import Mapping

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _fmt_shape(shape):
    return "(" + ", ".join(str(s) for s in shape) + ")"


def check_float_array(name, a, ndim):
    """``a`` is a float32/float64 ndarray of rank ``ndim``; returns it unchanged."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimensions, got {a.ndim} with shape {_fmt_shape(a.shape)}"
        )
    return a


def check_shape(name, a, expected, layout=None):
    """``a.shape == expected``; ``layout`` (e.g. ``"(T, B, D)"``) is named in the message."""
    if tuple(a.shape) != tuple(expected):
        what = f" {layout}" if layout else ""
        raise ValueError(
            f"{name} must have shape{what} = {_fmt_shape(expected)}, got {_fmt_shape(a.shape)}"
        )


def check_same_dtype(**arrays):
    """All given arrays share one float dtype; returns it. ``None`` values are ignored."""
    named = [(k, v) for k, v in arrays.items() if v is not None]
    dtype = named[0][1].dtype
    for k, v in named[1:]:
        if v.dtype != dtype:
            first = named[0][0]
            raise TypeError(
                f"{k} has dtype {v.dtype} but {first} has dtype {dtype}; "
                "all arrays of one call must share one dtype (cast them with .astype)"
            )
    return dtype


def check_finite(name, a):
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or Inf")


def check_truncate(truncate):
    """``None`` (full BPTT) or a non-negative int number of recurrent transitions."""
    if truncate is None:
        return None
    if isinstance(truncate, bool) or not isinstance(truncate, (int, np.integer)):
        raise TypeError(f"truncate must be None or an int >= 0, got {truncate!r}")
    if truncate < 0:
        raise ValueError(f"truncate must be None or an int >= 0, got {truncate}")
    return int(truncate)


def check_nonlinearity(nonlinearity):
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return nonlinearity


def check_cell_params(gates, weight_ih, weight_hh, bias_ih, bias_hh):
    """PyTorch-layout parameters of a cell with ``gates`` gate blocks; returns (D, H, dtype).

    ``weight_ih`` (G*H, D), ``weight_hh`` (G*H, H), ``bias_ih`` (G*H,), ``bias_hh`` (G*H,).
    ``weight_ih`` and ``bias_ih`` are ``None`` for the projected-input entry points.
    """
    check_float_array("weight_hh", weight_hh, 2)
    gh, h = weight_hh.shape
    if h == 0 or gh != gates * h:
        raise ValueError(
            f"weight_hh must have shape (G*H, H) with G={gates} gates, "
            f"got {_fmt_shape(weight_hh.shape)}"
        )
    d = None
    if weight_ih is not None:
        check_float_array("weight_ih", weight_ih, 2)
        if weight_ih.shape[0] != gh or weight_ih.shape[1] == 0:
            raise ValueError(
                f"weight_ih must have shape (G*H, D) = ({gh}, D) with D >= 1, "
                f"got {_fmt_shape(weight_ih.shape)}"
            )
        d = weight_ih.shape[1]
    if bias_ih is not None:
        check_float_array("bias_ih", bias_ih, 1)
        check_shape("bias_ih", bias_ih, (gh,), "(G*H,)")
    check_float_array("bias_hh", bias_hh, 1)
    check_shape("bias_hh", bias_hh, (gh,), "(G*H,)")
    dtype = check_same_dtype(
        weight_hh=weight_hh, weight_ih=weight_ih, bias_ih=bias_ih, bias_hh=bias_hh
    )
    for name, a in (("weight_ih", weight_ih), ("weight_hh", weight_hh),
                    ("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        if a is not None:
            check_finite(name, a)
    return d, h, dtype


def check_sequence(name, x, width, dtype, layout):
    """A time-major sequence ``(T, B, width)`` with T >= 1, B >= 1 of the given dtype."""
    check_float_array(name, x, 3)
    t, b, w = x.shape
    if t == 0 or b == 0:
        raise ValueError(f"{name} must have T >= 1 and B >= 1, got shape {layout} = "
                         f"{_fmt_shape(x.shape)}")
    if w != width:
        raise ValueError(f"{name} must have shape {layout} with last dimension {width}, "
                         f"got {_fmt_shape(x.shape)}")
    check_same_dtype(weights=np.empty(0, dtype), **{name: x})
    return t, b


def check_state(name, h, batch, hidden, dtype, finite=True):
    """A state ``(B, H)`` of the given dtype (e.g. ``h0``, ``c0``, ``dh_n``)."""
    check_float_array(name, h, 2)
    check_shape(name, h, (batch, hidden), "(B, H)")
    check_same_dtype(weights=np.empty(0, dtype), **{name: h})
    if finite:
        check_finite(name, h)
    return h


def check_cache(cache, cls, func):
    if not isinstance(cache, cls):
        raise TypeError(
            f"{func} needs the cache returned by the matching forward ({cls.__name__}), "
            f"got {type(cache).__name__}"
        )
    return cache


def check_step(gates, x, states, weight_ih, weight_hh, bias_ih, bias_hh):
    """Arguments of a ``*_step_forward``: x (B, D) and the named states (B, H) -> D, H, dtype."""
    D, H, dtype = check_cell_params(gates, weight_ih, weight_hh, bias_ih, bias_hh)
    check_float_array("x", x, 2)
    if x.shape[0] == 0:
        raise ValueError(f"x must have B >= 1, got shape (B, D) = {_fmt_shape(x.shape)}")
    check_shape("x", x, (x.shape[0], D), "(B, D)")
    check_same_dtype(weight_hh=weight_hh, x=x)
    for name, s in states.items():
        check_state(name, s, x.shape[0], H, dtype)
    return D, H, dtype


# ---------------------------------------------------------------- optimizer arrays


def check_param(name, a):
    """A float32/float64 ndarray that can be updated in place through a flat view."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    flags = a.flags
    if not flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (it is updated in place through a flat "
                         "view); use np.ascontiguousarray once, before creating the optimizer")
    if not flags.writeable:
        raise ValueError(f"{name} must be writeable")
    return a


def check_like(name, a, param, writeable=True):
    """``a`` has the shape and dtype of ``param`` (and, if written, is C-contiguous and
    writeable)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype != param.dtype:
        raise TypeError(f"{name} has dtype {a.dtype} but param has dtype {param.dtype}; "
                        "they must match (dtypes are never converted)")
    if a.shape != param.shape:
        check_shape(name, a, param.shape, "(the shape of param)")
    if writeable:
        check_param(name, a)
    return a


def check_update_arrays(param, grad, **state):
    """Validates the arrays of an update (``grad=None``: there is none); ``None`` states are
    skipped (unused ones). Each state must be an array of its own: passing param, grad or one
    state twice is an error (overlapping views are not looked for)."""
    check_param("param", param)
    if grad is not None:
        check_like("grad", grad, param, writeable=False)
    seen = [param, grad]
    for name, a in state.items():
        if a is not None:
            check_like(name, a, param)
            if any(a is b for b in seen):
                raise ValueError(f"{name} must be an array of its own, not param, grad or "
                                 "another state")
            seen.append(a)


def check_required(name, a, when):
    if a is None:
        raise ValueError(f"{name} is required when {when}")


# ---------------------------------------------------------------- loss

def check_loss_inputs(logits, targets, mask):
    """Validates the arguments of ``softmax_cross_entropy``; returns (mask as logits' dtype)."""
    check_float_array("logits", logits, 3)
    T, B, V = logits.shape
    if T == 0 or B == 0 or V == 0:
        raise ValueError(f"logits must have shape (T, B, V) with T, B, V >= 1, "
                         f"got {logits.shape}")
    if not isinstance(targets, np.ndarray) or not np.issubdtype(targets.dtype, np.integer):
        raise TypeError("targets must be an integer numpy array of shape (T, B), got "
                        f"{getattr(targets, 'dtype', type(targets).__name__)}")
    check_shape("targets", targets, (T, B), "(T, B)")
    if targets.min() < 0 or targets.max() >= V:
        raise ValueError(f"targets must lie in [0, V) = [0, {V}), got values in "
                         f"[{targets.min()}, {targets.max()}]")
    if mask is None:
        return np.ones((T, B), logits.dtype)
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a numpy array of shape (T, B), got {type(mask).__name__}")
    check_shape("mask", mask, (T, B), "(T, B)")
    mask = mask.astype(logits.dtype)
    if not np.all(np.isfinite(mask)) or mask.min() < 0:
        raise ValueError("mask must hold finite non-negative weights (0/1 or bool)")
    if mask.sum() == 0:
        raise ValueError("mask selects no token: the mean loss over zero tokens is undefined")
    return mask


# ---------------------------------------------------------------- memory of a training run

def available_memory():
    """Bytes a new allocation can get without swapping (``MemAvailable`` on Linux, else the
    free physical pages), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def training_memory(cell, hidden, layers, vocab, batch, seq, dtype, optimizer="rmsprop",
                    rollback=False):
    """Estimated bytes of a CharRNN training run -> dict of parameters, gradients, optimizer
    state (and the rollback copy), working copies (packed weights) and activations (caches of
    one window, forward and backward, and the logits)."""
    from .cells import CELLS

    s = np.dtype(dtype).itemsize
    G, H, V, L, T, B = CELLS[cell].gates, hidden, vocab, layers, seq, batch
    params = (G * H * (V + H + 2) + (L - 1) * G * H * (2 * H + 2) + V * H + V) * s
    opt = (2 if optimizer == "adam" else 1) * params
    est = {"parameters": params, "gradients": params,
           "optimizer state": opt + (params + opt if rollback else 0),
           "working copies": params,
           "activations": (L * T * B * H * (2 * G + 6) + 3 * T * B * V) * s}
    est["total"] = sum(est.values())
    return est


def _gib(n):
    return f"{n / 2 ** 30:,.1f} GiB" if n >= 2 ** 28 else f"{n / 2 ** 20:,.1f} MiB"


def check_training_memory(cell, hidden, layers, vocab, batch, seq, dtype, optimizer="rmsprop",
                          rollback=False, available=None):
    """Refuses (ValueError) a model whose training would need more memory than the machine
    has available, before anything is allocated; the message gives the estimate."""
    est = training_memory(cell, hidden, layers, vocab, batch, seq, dtype, optimizer, rollback)
    avail = available_memory() if available is None else available
    if avail is not None and est["total"] > avail:
        parts = ", ".join(f"{k} {_gib(v)}" for k, v in est.items() if k != "total")
        raise ValueError(
            f"a {layers}-layer {cell} of hidden size {hidden} ({dtype}, batch {batch}, seq "
            f"{seq}) needs about {_gib(est['total'])} to train ({parts}), but this machine has "
            f"{_gib(avail)} available; use a smaller --hidden, --layers, --batch or --seq")
    return est


# ---------------------------------------------------------------- a training run's settings

def check_train_config(cfg, schedules):
    """A ``fastrnn.config.TrainConfig``'s settings (ValueError naming the first one out of
    range); ``schedules``: the known schedule names."""
    pos = ("hidden", "layers", "seq", "batch", "checkpoint_every", "log_every")
    if cfg.eval_every is not None and (not isinstance(cfg.eval_every, int)
                                       or cfg.eval_every < 1):
        raise ValueError(f"eval_every must be None or an int >= 1, got "
                         f"{cfg.eval_every!r}")
    if cfg.val_split not in ("tail", "streams"):
        raise ValueError(f"val_split must be 'tail' or 'streams', got {cfg.val_split!r}")
    if cfg.eval_batches is not None and (not isinstance(cfg.eval_batches, int)
                                         or cfg.eval_batches < 1):
        raise ValueError(f"eval_batches must be None or an int >= 1, got "
                         f"{cfg.eval_batches!r}")
    for name in pos:
        v = getattr(cfg, name)
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    from .cells import get as get_cell
    get_cell(cfg.cell)                          # a ValueError names the known cells
    if cfg.mode not in ("char", "byte"):
        raise ValueError(f"mode must be 'char' or 'byte', got {cfg.mode!r}")
    if cfg.optimizer not in ("adam", "rmsprop"):
        raise ValueError(f"optimizer must be adam or rmsprop, got {cfg.optimizer!r}")
    if cfg.schedule not in schedules:
        raise ValueError(f"schedule must be one of {', '.join(schedules)}, got "
                         f"{cfg.schedule!r}")
    if not (isinstance(cfg.warmup, (int, float)) and 0 <= cfg.warmup < 1):
        raise ValueError(f"warmup must be a fraction of the budget in [0, 1), got "
                         f"{cfg.warmup!r}")
    if not cfg.lr > 0 or not cfg.clip > 0:
        raise ValueError("lr and clip must be > 0")
    if not 0 <= cfg.dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout}")
    for name in ("steps", "epochs", "time"):
        v = getattr(cfg, name)
        if v is not None and not v > 0:
            raise ValueError(f"{name} must be > 0, got {v}")
    if cfg.steps is None and cfg.epochs is None and cfg.time is None:
        raise ValueError("give a budget: steps, epochs or time")
    if cfg.truncate is not None and cfg.truncate < 0:
        raise ValueError(f"truncate must be >= 0, got {cfg.truncate}")
    if cfg.dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {cfg.dtype!r}")
    if cfg.on_nan not in ("stop", "skip", "rollback"):
        raise ValueError(f"on_nan must be stop, skip or rollback, got {cfg.on_nan!r}")
    if not isinstance(cfg.nan_retries, int) or cfg.nan_retries < 1:
        raise ValueError(f"nan_retries must be an integer >= 1, got {cfg.nan_retries!r}")


# ---------------------------------------------------------------- using a model (fastrnn.sample)

def check_sampling(temperature, top_k=None, length=None):
    """``sample.generate``'s (and, but ``length``, ``sample.stream``'s) arguments."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k is not None and not 1 <= top_k:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if length is not None and length < 0:
        raise ValueError(f"length must be >= 0, got {length}")


def check_beam(length, beam):
    """``sample.beam_search``'s ``length`` and ``beam``: ints >= 1."""
    for name, v in (("length", length), ("beam", beam)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")


def check_eval_streams(streams):
    """``sample.evaluate_file``'s ``streams``: None or an int >= 1."""
    if streams is not None and (isinstance(streams, bool) or not isinstance(
            streams, (int, np.integer)) or streams < 1):
        raise ValueError(f"streams must be None or an int >= 1, got {streams!r}")


def check_regular_file(path, what=None):
    """A text file to read (a corpus, a file to evaluate) must be a regular file: a FIFO would
    block forever. ``what`` ("corpus") starts the message. Call it once ``path`` exists."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise ValueError(f"{what + ' ' if what else ''}{path} is not a regular file (a pipe or "
                         "device?); save the text to a file first")


# ---------------------------------------------------------------- the stack step (sampling)

from .cells import SAMPLER_GATES as _STACK_GATES  # noqa: E402  (code -> gate count)


def check_stack_step(tokens, cell, table, w_ih, w_hh, b_ih, b_hh, dec_w, dec_b, h, c):
    """Arguments of ``stack_step`` (see ``fastrnn.reference.stack``): float arrays of one
    dtype with the shapes ``h`` (L, B, H) and ``cell`` imply, ``h`` and ``c`` writeable
    (updated in place), ``tokens`` (B,) integers in [0, V). -> tokens, C-contiguous int64."""
    if isinstance(cell, bool) or not isinstance(cell, (int, np.integer)) \
            or int(cell) not in _STACK_GATES:
        raise ValueError(f"cell must be one of the CELL_CODES {sorted(_STACK_GATES)}, "
                         f"got {cell!r}")
    check_float_array("h", h, 3)
    L, B, H = h.shape
    if min(L, B, H) == 0:
        raise ValueError(f"h must have shape (L, B, H) with L, B, H >= 1, got "
                         f"{_fmt_shape(h.shape)}")
    GH = _STACK_GATES[int(cell)] * H
    check_float_array("table", table, 2)
    check_float_array("dec_w", dec_w, 2)
    V, V_out = table.shape[0], dec_w.shape[0]
    if V == 0 or V_out == 0:
        raise ValueError("table and dec_w must have at least one row (token)")
    for name, a, shape, layout in (("table", table, (V, GH), "(V, G*H)"),
                                   ("c", c, (L, B, H), "(L, B, H)"),
                                   ("w_ih", w_ih, (L, GH, H), "(L, G*H, H)"),
                                   ("w_hh", w_hh, (L, GH, H), "(L, G*H, H)"),
                                   ("b_ih", b_ih, (L, GH), "(L, G*H)"),
                                   ("b_hh", b_hh, (L, GH), "(L, G*H)"),
                                   ("dec_w", dec_w, (V_out, H), "(V, H)"),
                                   ("dec_b", dec_b, (V_out,), "(V,)")):
        check_float_array(name, a, len(shape))
        check_shape(name, a, shape, layout)
    check_same_dtype(h=h, c=c, table=table, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh,
                     dec_w=dec_w, dec_b=dec_b)
    for name, a in (("h", h), ("c", c)):
        if not a.flags.writeable:
            raise ValueError(f"{name} is updated in place and must be writeable")
    tokens = np.asarray(tokens)
    if tokens.dtype.kind not in "iu":
        raise TypeError(f"tokens must be integers, got dtype {tokens.dtype}")
    if tokens.shape != (B,):
        raise ValueError(f"tokens must have shape (B,) = {_fmt_shape((B,))}, got "
                         f"{_fmt_shape(tokens.shape)}")
    lo, hi = int(tokens.min()), int(tokens.max())
    if lo < 0 or hi >= V:
        raise ValueError(f"tokens must lie in [0, V) = [0, {V}) (the rows of table), got "
                         f"values in [{lo}, {hi}]")
    return np.ascontiguousarray(tokens, dtype=np.int64)


# ---------------------------------------------------------------- modules and the sampler (nn)

def check_float_dtype(dtype):
    """A dtype argument that must name float32 or float64; -> the ``np.dtype``."""
    dt = np.dtype(dtype)
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def check_recurrent(spec, input_size, hidden_size, num_layers, nonlinearity, dropout, truncate,
                    init, inits):
    """``nn.Recurrent``'s constructor arguments (``spec``: the cell's description)."""
    if init not in inits:
        raise ValueError(f"init must be one of {inits}, got {init!r}")
    for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                    ("num_layers", num_layers)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    check_truncate(truncate)
    if "nonlinearity" in spec.options:
        check_nonlinearity(nonlinearity)


def check_grad(name, g, shape, dtype):
    """A gradient array of exactly ``shape`` and ``dtype`` (never cast silently)."""
    if not isinstance(g, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(g).__name__}")
    if g.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} (the module's), got {g.dtype}")
    check_shape(name, g, shape)
    return g


def check_ids(ids: np.ndarray, vocab: int) -> np.ndarray:
    """Token ids (T, B) of an integer dtype, all in [0, vocab): checked before any gather."""
    if not isinstance(ids, np.ndarray) or not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"token ids must be an integer numpy array, got "
                        f"{getattr(ids, 'dtype', type(ids).__name__)}")
    if ids.ndim != 2 or ids.size == 0:
        raise ValueError(f"token ids must have shape (T, B) with T, B >= 1, got {ids.shape}")
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= vocab:
        raise ValueError(f"token ids must lie in [0, {vocab}) (the vocabulary), got values in "
                         f"[{lo}, {hi}]")
    return ids


def check_step_tokens(tokens, batch, vocab):
    """``Sampler.step``'s tokens: ``batch`` integers in [0, vocab) -> int64 (batch,)."""
    tokens = np.asarray(tokens)
    if tokens.dtype.kind not in "iu":
        raise TypeError(f"tokens must be integers, got dtype {tokens.dtype}")
    tokens = tokens.astype(np.int64).reshape(-1)
    if tokens.shape[0] != batch:
        raise ValueError(f"expected {batch} tokens, got {tokens.shape[0]}")
    if tokens.min() < 0 or tokens.max() >= vocab:
        raise ValueError(f"tokens must lie in [0, {vocab}), got {tokens}")
    return tokens


def check_generate(token, n, temperature, vocab, batch):
    """``Sampler.generate``'s arguments (a sampler of ``batch`` 1, ``vocab`` tokens)."""
    if batch != 1:
        raise ValueError("generate() needs a sampler with batch=1")
    if not temperature > 0 or not np.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    if not isinstance(token, (int, np.integer)) or not 0 <= token < vocab:
        raise ValueError(f"token must be an int in [0, {vocab}), got {token!r}")


# ---------------------------------------------------------------- optimizers, clipping, schedules

def check_real(name, value, lo=None, hi=None, hi_open=False, allow_inf=False):
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


def check_int(name, value, lo):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}")
    return int(value)


def check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_param_data(where, data):
    if not isinstance(data, np.ndarray):
        raise TypeError(f"{where}.data must be a numpy array, got {type(data).__name__}")
    if data.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{where}.data must have dtype float32 or float64, got {data.dtype}")
    if not data.flags.c_contiguous or not data.flags.writeable:
        raise ValueError(f"{where}.data must be a C-contiguous, writeable array (it is "
                         "updated in place)")


def check_optimizer_arrays(params, dtype, shapes, need_grad=True):
    """An optimizer's parameters at a step: each still of the ``dtype`` and the shape in
    ``shapes`` it had when the optimizer was created, with (``need_grad``) a gradient of the
    same dtype and shape; -> [(data, grad)]. Runs before any update, so a bad parameter
    changes nothing."""
    out = []
    for i, p in enumerate(params):
        data, grad = p.data, p.grad
        check_param_data(f"params[{i}]", data)
        if data.dtype != dtype:
            raise TypeError(f"params[{i}].data has dtype {data.dtype} but the optimizer "
                            f"was created with dtype {dtype}")
        if data.shape != shapes[i]:
            raise ValueError(f"params[{i}].data has shape {data.shape} but had shape "
                             f"{shapes[i]} when the optimizer was created")
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


def check_state_dict_of(sd, key, cls):
    """A ``state_dict`` handed to ``load_state_dict``: a mapping whose ``key`` entry
    ("optimizer", "schedule") names the class ``cls`` loading it."""
    if not isinstance(sd, Mapping):
        raise TypeError(f"state_dict must be a dict, got {type(sd).__name__}")
    if sd.get(key) != cls:
        raise ValueError(f"state_dict is for {key} {sd.get(key)!r}, not {cls!r}")


def param_list(params, what):
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


def check_params(params, what):
    """-> (list of parameters, dtype): non-empty, no duplicates, one float dtype."""
    params = param_list(params, what)
    if not params:
        raise ValueError(f"{what} got an empty parameter list: there is nothing to optimize")
    seen = {}
    for i, p in enumerate(params):
        if id(p) in seen:
            raise ValueError(f"params[{i}] is the same parameter as params[{seen[id(p)]}]; "
                             "each parameter may appear once")
        seen[id(p)] = i
        check_param_data(f"params[{i}]", p.data)
    dtype = params[0].data.dtype
    for i, p in enumerate(params):
        if p.data.dtype != dtype:
            raise TypeError(f"params[{i}].data has dtype {p.data.dtype} but params[0].data has "
                            f"dtype {dtype}: all parameters of one optimizer must share one "
                            "dtype (float32 or float64)")
    return params, dtype


def check_grads(params, what):
    """The non-None gradients of ``params`` (checked: float arrays updated in place)."""
    grads = []
    for i, p in enumerate(param_list(params, what)):
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
