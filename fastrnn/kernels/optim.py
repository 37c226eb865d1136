"""Optimizer updates and gradient clipping: the compiled twin of ``fastrnn.reference.optim``
(same names, signatures, validation and results; read that module for the maths).

Each update is ONE fused pass over the flat arrays: every element of ``param``, ``grad`` and
the states is read once and written once, with no temporary array. The scalar constants
(bias corrections, ``1 - beta``, ...) are computed once per call in float64, as in the
reference, and cast to the parameter dtype, so float32 arithmetic stays float32.

Structure:

    _<name>_block(arrays..., s)        the update as a serial loop over flat arrays, in the
                                       statement order of the reference; ``s`` holds the
                                       scalars in the arrays' dtype, unpacked by name first
    _run_parallel(op, x0..x4, s)       the block function of ``op`` over fixed blocks of
                                       ``_BLOCK`` elements, in parallel (prange)

The Python wrappers validate, flatten (views: param and states are C-contiguous, checked),
and call the block function directly, or ``_run_parallel`` for arrays of at least
``PARALLEL_MIN_SIZE`` elements when numba has more than one thread. Measured on 2 cores: a
parallel launch costs ~10-20 us (milliseconds when another process keeps a core busy); it
breaks even around 64-128k elements on a quiet machine, and the threshold sits higher
(256k: ~180 us serial, ~100 us parallel for Adam) so that only updates long enough to absorb
that jitter go parallel. A 1M-element float32 Adam update: ~0.42 ms parallel, ~0.74 ms
serial.

Compilation cost drove this layout. A block function compiles in 0.1-0.3 s and only the ones
used are compiled (training with Adam compiles the Adam block and the clipping helpers). A
parallel function costs ~0.8 s for the parfor machinery alone plus the re-optimisation of
every function it calls, so there is ONE parallel driver dispatching on ``op`` (~3.5 s cold
per dtype, compiled on the first large array, cached on disk afterwards) instead of one per
update. Scalars travel in an array: numba types a tuple of NumPy scalars far more slowly than
an array, and the call overhead is what a small bias pays. Elementwise updates do not depend
on the split; ``sum_squares`` adds float64 partial sums of the same fixed blocks in block
order on both paths, so its result depends on the data alone (any thread count, serial or
parallel, gives the same bits).

Loops index slices by the loop variable alone (``for i in range(x.size): x[i]``), so LLVM
proves the index non-negative and vectorises; the hyper-parameter branches inside the loops
are loop-invariant and hoisted out of them.
"""

import math

import numba
import numpy as np

from .._jit import njit, prange
from .._checks import check_param, check_required, check_update_arrays

__all__ = ["sgd_update", "adagrad_update", "rmsprop_update", "rmsprop_nesterov_lookahead",
           "rmsprop_nesterov_update", "adam_update", "sum_squares", "scale", "clip_value"]

PARALLEL_MIN_SIZE = 1 << 18   # elements; smaller arrays are updated on the calling thread
_BLOCK = 1 << 14              # elements per parallel work item and per partial sum

# ---------------------------------------------------------------- elementwise updates
#
# Each block function updates all elements of its (flat) arrays; ``s`` holds the scalars in
# the arrays' dtype (flags as 0/1), unpacked by name on the first lines.


@njit
def _sgd_block(param, grad, buf, s):
    lr, momentum, one_minus_dampening, weight_decay = s[0], s[1], s[2], s[3]
    nesterov, first = s[4] != 0, s[5] != 0
    for i in range(param.size):
        p = param[i]
        g = grad[i]
        if weight_decay != 0:
            g = g + weight_decay * p
        if momentum != 0:
            if first:
                b = g
            else:
                b = momentum * buf[i] + one_minus_dampening * g
            buf[i] = b
            if nesterov:
                g = g + momentum * b
            else:
                g = b
        param[i] = p - lr * g


@njit
def _adagrad_block(param, grad, state_sum, s):
    clr, weight_decay, eps, eps_in_sqrt = s[0], s[1], s[2], s[3] != 0
    for i in range(param.size):
        p = param[i]
        g = grad[i]
        if weight_decay != 0:
            g = g + weight_decay * p
        sq = state_sum[i] + g * g
        state_sum[i] = sq
        if eps_in_sqrt:
            std = math.sqrt(sq + eps)
        else:
            std = math.sqrt(sq) + eps
        param[i] = p - clr * (g / std)


@njit
def _rmsprop_block(param, grad, square_avg, buf, grad_avg, s):
    lr, alpha, one_minus_alpha, eps, weight_decay, momentum = s[0], s[1], s[2], s[3], s[4], s[5]
    centered = s[6] != 0
    for i in range(param.size):
        p = param[i]
        g = grad[i]
        if weight_decay != 0:
            g = g + weight_decay * p
        sq = alpha * square_avg[i] + one_minus_alpha * (g * g)
        square_avg[i] = sq
        if centered:
            ga = grad_avg[i]
            ga = ga + one_minus_alpha * (g - ga)
            grad_avg[i] = ga
            avg = math.sqrt(sq - ga * ga) + eps
        else:
            avg = math.sqrt(sq) + eps
        if momentum != 0:
            b = momentum * buf[i] + g / avg
            buf[i] = b
            param[i] = p - lr * b
        else:
            param[i] = p - lr * (g / avg)


@njit
def _lookahead_block(param, velocity, s):
    momentum_term = s[0]
    for i in range(param.size):
        param[i] = param[i] + momentum_term * velocity[i]


@njit
def _nesterov_block(param, grad, mean_square, velocity, s):
    learning_rate, lmbd, one_minus_lmbd, momentum_term, eps = s[0], s[1], s[2], s[3], s[4]
    for i in range(param.size):
        g = grad[i]
        ms = lmbd * mean_square[i] + one_minus_lmbd * (g * g)
        mean_square[i] = ms
        step = learning_rate * g / math.sqrt(ms + eps)
        velocity[i] = momentum_term * velocity[i] - step
        param[i] = param[i] - step


@njit
def _adam_block(param, grad, exp_avg, exp_avg_sq, s):
    decay, weight_decay, decoupled = s[0], s[1], s[2] != 0
    one_minus_beta1, beta2, one_minus_beta2 = s[3], s[4], s[5]
    step_size, bias_correction2_sqrt, eps = s[6], s[7], s[8]
    for i in range(param.size):
        p = param[i]
        g = grad[i]
        if weight_decay != 0:
            if decoupled:
                p = p * decay
            else:
                g = g + weight_decay * p
        m = exp_avg[i]
        m = m + one_minus_beta1 * (g - m)
        v = beta2 * exp_avg_sq[i] + one_minus_beta2 * (g * g)
        exp_avg[i] = m
        exp_avg_sq[i] = v
        denom = math.sqrt(v) / bias_correction2_sqrt + eps
        param[i] = p - step_size * (m / denom)


@njit
def _sum_squares_block(x, s):
    """float64 sums of consecutive ``_BLOCK``-element blocks, added in block order (a slice
    of one block gives that block's sum, so both paths give the same bits)."""
    n = x.size
    total = 0.0
    for lo in range(0, n, _BLOCK):
        y = x[lo:min(lo + _BLOCK, n)]
        acc = 0.0
        for i in range(y.size):
            v = np.float64(y[i])
            acc += v * v
        total += acc
    return total


@njit
def _scale_block(x, s):
    factor = s[0]
    for i in range(x.size):
        x[i] = x[i] * factor


@njit
def _clip_value_block(x, s):
    clip = s[0]
    for i in range(x.size):
        v = x[i]
        if v > clip:            # both comparisons are false for NaN, which stays NaN
            v = clip
        elif v < -clip:
            v = -clip
        x[i] = v


# ---------------------------------------------------------------- the parallel driver

_SGD, _ADAGRAD, _RMSPROP, _LOOKAHEAD, _NESTEROV, _ADAM, _SUM_SQUARES, _SCALE, _CLIP = range(9)


@njit(parallel=True)
def _run_parallel(op, x0, x1, x2, x3, x4, s):
    """The block function of ``op`` over blocks of ``_BLOCK`` elements of x0..x4 in parallel
    (x0 sets the length; unused slots are empty, and so are their slices); returns the sum of
    the block results (``_SUM_SQUARES``; 0 otherwise), added in block order."""
    n = x0.size
    nblocks = (n + _BLOCK - 1) // _BLOCK
    partial = np.zeros(nblocks)                                          # (nblocks,) float64
    for k in prange(nblocks):
        lo = k * _BLOCK
        hi = min(lo + _BLOCK, n)
        a, b, c, d, e = x0[lo:hi], x1[lo:hi], x2[lo:hi], x3[lo:hi], x4[lo:hi]
        if op == _SGD:
            _sgd_block(a, b, c, s)
        elif op == _ADAGRAD:
            _adagrad_block(a, b, c, s)
        elif op == _RMSPROP:
            _rmsprop_block(a, b, c, d, e, s)
        elif op == _LOOKAHEAD:
            _lookahead_block(a, b, s)
        elif op == _NESTEROV:
            _nesterov_block(a, b, c, d, s)
        elif op == _ADAM:
            _adam_block(a, b, c, d, s)
        elif op == _SUM_SQUARES:
            partial[k] = _sum_squares_block(a, s)
        elif op == _SCALE:
            _scale_block(a, s)
        elif op == _CLIP:
            _clip_value_block(a, s)
    total = 0.0
    for k in range(nblocks):
        total += partial[k]
    return total


def _flat(a):
    """A 1-D C-contiguous view of ``a`` (the arrays written are C-contiguous, checked); a copy
    only for a strided ``grad``, which is only read."""
    return a.reshape(-1) if a.flags.c_contiguous else np.ascontiguousarray(a).reshape(-1)


def _call(op, block, arrays, scalars):
    """Runs ``block(*flat arrays, s)`` (serial) or the parallel driver for ``op``; ``arrays``:
    the first sets the length, None marks an unused optional state; ``scalars`` are packed in
    an array of the arrays' dtype."""
    x0 = arrays[0]
    empty = np.empty(0, x0.dtype)
    flat = [empty if a is None else _flat(a) for a in arrays]
    s = np.array(scalars, x0.dtype)
    if x0.size >= PARALLEL_MIN_SIZE and numba.get_num_threads() > 1:
        return _run_parallel(op, *flat, *[empty] * (5 - len(flat)), s)
    return block(*flat, s)


# ---------------------------------------------------------------- public functions

def sgd_update(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov,
               first):
    """torch.optim.SGD (see ``fastrnn.reference.optim.sgd_update``)."""
    check_update_arrays(param, grad, momentum_buffer=momentum_buffer)
    if momentum != 0:
        check_required("momentum_buffer", momentum_buffer, "momentum != 0")
    _call(_SGD, _sgd_block, (param, grad, momentum_buffer),
          (lr, momentum, 1 - dampening, weight_decay, bool(nesterov), bool(first)))


def adagrad_update(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, eps_in_sqrt):
    """torch.optim.Adagrad / min-char-rnn (see ``fastrnn.reference.optim.adagrad_update``)."""
    check_update_arrays(param, grad, state_sum=state_sum)
    clr = lr / (1 + (step - 1) * lr_decay)
    _call(_ADAGRAD, _adagrad_block, (param, grad, state_sum),
          (clr, weight_decay, eps, bool(eps_in_sqrt)))


def rmsprop_update(param, grad, square_avg, momentum_buffer, grad_avg, lr, alpha, eps,
                   weight_decay, momentum, centered):
    """torch.optim.RMSprop (see ``fastrnn.reference.optim.rmsprop_update``)."""
    check_update_arrays(param, grad, square_avg=square_avg, momentum_buffer=momentum_buffer,
                        grad_avg=grad_avg)
    if momentum != 0:
        check_required("momentum_buffer", momentum_buffer, "momentum != 0")
    if centered:
        check_required("grad_avg", grad_avg, "centered is True")
    _call(_RMSPROP, _rmsprop_block, (param, grad, square_avg, momentum_buffer, grad_avg),
          (lr, alpha, 1 - alpha, eps, weight_decay, momentum, bool(centered)))


def rmsprop_nesterov_lookahead(param, velocity, momentum_term):
    """param += momentum_term * velocity (see ``fastrnn.reference.optim``)."""
    check_update_arrays(param, None, velocity=velocity)
    _call(_LOOKAHEAD, _lookahead_block, (param, velocity), (momentum_term,))


def rmsprop_nesterov_update(param, grad, mean_square, velocity, learning_rate, lmbd,
                            momentum_term, eps):
    """The Roelants RMSprop + Nesterov update (see ``fastrnn.reference.optim``)."""
    check_update_arrays(param, grad, mean_square=mean_square, velocity=velocity)
    _call(_NESTEROV, _nesterov_block, (param, grad, mean_square, velocity),
          (learning_rate, lmbd, 1 - lmbd, momentum_term, eps))


def adam_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
                decoupled):
    """torch.optim.Adam / AdamW (see ``fastrnn.reference.optim.adam_update``)."""
    check_update_arrays(param, grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    _call(_ADAM, _adam_block, (param, grad, exp_avg, exp_avg_sq),
          (1 - lr * weight_decay, weight_decay, bool(decoupled), 1 - beta1, beta2, 1 - beta2,
           step_size, math.sqrt(bias_correction2), eps))


def sum_squares(x):
    """Sum of ``x * x`` accumulated in float64 (a Python float)."""
    check_param("x", x)
    return float(_call(_SUM_SQUARES, _sum_squares_block, (x,), ()))


def scale(x, factor):
    """``x *= factor`` in place (factor cast to x's dtype)."""
    check_param("x", x)
    _call(_SCALE, _scale_block, (x,), (factor,))


def clip_value(x, clip):
    """``x = clamp(x, -clip, clip)`` in place; NaN stays NaN."""
    check_param("x", x)
    _call(_CLIP, _clip_value_block, (x,), (clip,))


# ---------------------------------------------------------------- warm-up

def warmup(dtypes=("float32", "float64"), parallel=True):
    """Compiles (or loads from numba's cache) every block function and, with ``parallel``
    (and more than one numba thread), the parallel driver, for the given dtypes; returns the
    number of kernel calls made."""
    calls = 0
    for dtype in map(np.dtype, dtypes):
        def z():
            return np.zeros(3, dtype)

        p, g = z(), np.full(3, 0.5, dtype)
        sgd_update(p, g, z(), 0.1, 0.9, 0.0, 0.0, False, True)
        adagrad_update(p, g, z(), 1, 0.1, 0.0, 0.0, 1e-10, False)
        rmsprop_update(p, g, z(), z(), z(), 0.01, 0.99, 1e-8, 0.0, 0.9, True)
        rmsprop_nesterov_lookahead(p, z(), 0.8)
        rmsprop_nesterov_update(p, g, z(), z(), 0.05, 0.5, 0.8, 1e-6)
        adam_update(p, g, z(), z(), 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False)
        sum_squares(g)
        scale(g, 0.5)
        clip_value(g, 1.0)
        calls += 9
        if parallel and numba.get_num_threads() > 1:
            e = np.empty(0, dtype)
            _run_parallel(_SCALE, g, e, e, e, e, np.ones(1, dtype))
            calls += 1
    return calls
