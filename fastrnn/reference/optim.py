"""Optimizer updates and gradient clipping in plain NumPy: readable, and the oracle for
``fastrnn.kernels.optim`` (same function names, signatures and results).

Every ``*_update`` function changes ``param`` and its state arrays in place from ``grad`` and
returns nothing; ``grad`` is only read. ``param``, the state arrays and ``grad`` share one
shape and one dtype (float32 or float64, never changed); ``param`` and the state arrays are
C-contiguous and writeable (the compiled twin updates them through flat views). Scalars are
Python floats: in float32 every operation runs in float32, as in PyTorch.

The arrays are validated here (so that the compiled twin can never index out of bounds); the
hyper-parameters are not: ``fastrnn.optim`` validates them and names the wrong argument.

    function                      semantics
    sgd_update                    torch.optim.SGD (momentum, dampening, Nesterov, L2 decay)
    adagrad_update                torch.optim.Adagrad; eps_in_sqrt=True: min-char-rnn's
                                  ``mem += g*g; p -= lr * g / sqrt(mem + 1e-8)``
    rmsprop_update                torch.optim.RMSprop (momentum, centered, L2 decay)
    rmsprop_nesterov_lookahead    RMSprop with Nesterov momentum as in P. Roelants, "How to
    rmsprop_nesterov_update       implement a recurrent neural network, part 2": the gradient
                                  is taken at the look-ahead point
    adam_update                   torch.optim.Adam (decoupled=False) and AdamW (True)
    sum_squares                   sum of x*x in float64 (global gradient norm)
    scale                         x *= factor (clip by norm)
    clip_value                    x = clamp(x, -clip, clip) (clip by value)

NaN and Inf propagate: nothing here tests for them or clamps them away.
"""

import math

import numpy as np

from .._checks import check_param, check_required, check_update_arrays

__all__ = ["sgd_update", "adagrad_update", "rmsprop_update", "rmsprop_nesterov_lookahead",
           "rmsprop_nesterov_update", "adam_update", "sum_squares", "scale", "clip_value"]


# ---------------------------------------------------------------- SGD

def sgd_update(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov,
               first):
    """torch.optim.SGD. ``momentum_buffer`` may be None when ``momentum == 0``; ``first``:
    the buffer holds nothing yet and is set to the (decayed) gradient, as PyTorch does on the
    first step, instead of ``momentum * buf + (1 - dampening) * g``.

        g = grad + weight_decay * param
        buf = g                                    (first step)
        buf = momentum * buf + (1 - dampening) * g (later steps)
        g = g + momentum * buf  if nesterov  else  buf
        param -= lr * g
    """
    check_update_arrays(param, grad, momentum_buffer=momentum_buffer)
    if momentum != 0:
        check_required("momentum_buffer", momentum_buffer, "momentum != 0")
    g = grad
    if weight_decay != 0:
        g = g + weight_decay * param
    if momentum != 0:
        if first:
            momentum_buffer[...] = g
        else:
            momentum_buffer[...] = momentum * momentum_buffer + (1 - dampening) * g
        if nesterov:
            g = g + momentum * momentum_buffer
        else:
            g = momentum_buffer
    param -= lr * g


# ---------------------------------------------------------------- Adagrad

def adagrad_update(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, eps_in_sqrt):
    """torch.optim.Adagrad at step ``step`` (1 for the first update); ``state_sum`` starts at
    ``initial_accumulator_value``.

        g = grad + weight_decay * param
        clr = lr / (1 + (step - 1) * lr_decay)
        state_sum += g * g
        param -= clr * g / (sqrt(state_sum) + eps)      eps_in_sqrt=False (PyTorch)
        param -= clr * g / sqrt(state_sum + eps)        eps_in_sqrt=True  (min-char-rnn)
    """
    check_update_arrays(param, grad, state_sum=state_sum)
    g = grad
    if weight_decay != 0:
        g = g + weight_decay * param
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum += g * g
    if eps_in_sqrt:
        std = np.sqrt(state_sum + eps)
    else:
        std = np.sqrt(state_sum) + eps
    param -= clr * (g / std)


# ---------------------------------------------------------------- RMSprop

def rmsprop_update(param, grad, square_avg, momentum_buffer, grad_avg, lr, alpha, eps,
                   weight_decay, momentum, centered):
    """torch.optim.RMSprop. ``momentum_buffer`` may be None when ``momentum == 0``,
    ``grad_avg`` when not ``centered``; all states start at zero.

        g = grad + weight_decay * param
        square_avg = alpha * square_avg + (1 - alpha) * g * g
        grad_avg += (1 - alpha) * (g - grad_avg)                   (centered)
        avg = sqrt(square_avg - grad_avg**2) + eps  if centered  else  sqrt(square_avg) + eps
        buf = momentum * buf + g / avg; param -= lr * buf          (momentum > 0)
        param -= lr * g / avg                                      (momentum == 0)
    """
    check_update_arrays(param, grad, square_avg=square_avg, momentum_buffer=momentum_buffer,
                        grad_avg=grad_avg)
    if momentum != 0:
        check_required("momentum_buffer", momentum_buffer, "momentum != 0")
    if centered:
        check_required("grad_avg", grad_avg, "centered is True")
    g = grad
    if weight_decay != 0:
        g = g + weight_decay * param
    square_avg[...] = alpha * square_avg + (1 - alpha) * (g * g)
    if centered:
        grad_avg += (1 - alpha) * (g - grad_avg)
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = np.sqrt(square_avg) + eps
    if momentum != 0:
        momentum_buffer[...] = momentum * momentum_buffer + g / avg
        param -= lr * momentum_buffer
    else:
        param -= lr * (g / avg)


# ---------------------------------------------------------------- RMSprop + Nesterov momentum

def rmsprop_nesterov_lookahead(param, velocity, momentum_term):
    """Moves ``param`` to the look-ahead point where the next gradient is evaluated:

        param += momentum_term * velocity
    """
    check_update_arrays(param, None, velocity=velocity)
    param += momentum_term * velocity


def rmsprop_nesterov_update(param, grad, mean_square, velocity, learning_rate, lmbd,
                            momentum_term, eps):
    """The update of P. Roelants' RNN tutorial (part 2), from the look-ahead point: ``param``
    holds ``p + momentum_term * velocity`` and ``grad`` was evaluated there. Afterwards
    ``param`` is ``p + velocity`` with the new velocity. Both states start at zero.

        mean_square = lmbd * mean_square + (1 - lmbd) * grad**2
        step = learning_rate * grad / sqrt(mean_square + eps)
        velocity = momentum_term * velocity - step
        param -= step
    """
    check_update_arrays(param, grad, mean_square=mean_square, velocity=velocity)
    mean_square[...] = lmbd * mean_square + (1 - lmbd) * grad**2
    step = learning_rate * grad / np.sqrt(mean_square + eps)
    velocity[...] = momentum_term * velocity - step
    param -= step


# ---------------------------------------------------------------- Adam / AdamW

def adam_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
                decoupled):
    """torch.optim.Adam (``decoupled=False``: L2 penalty added to the gradient) and
    torch.optim.AdamW (``decoupled=True``: the parameter decays by ``1 - lr * weight_decay``),
    at step ``step`` (1 for the first update); both moments start at zero.

        param *= 1 - lr * weight_decay  (decoupled)  /  g = grad + weight_decay * param
        exp_avg += (1 - beta1) * (g - exp_avg)
        exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g * g
        denom = sqrt(exp_avg_sq) / sqrt(1 - beta2**step) + eps
        param -= lr / (1 - beta1**step) * exp_avg / denom
    """
    check_update_arrays(param, grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)
    g = grad
    if weight_decay != 0:
        if decoupled:
            param *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * param
    exp_avg += (1 - beta1) * (g - exp_avg)
    exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * (g * g)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    denom = np.sqrt(exp_avg_sq) / math.sqrt(bias_correction2) + eps
    param -= step_size * (exp_avg / denom)


# ---------------------------------------------------------------- clipping

def sum_squares(x):
    """Sum of ``x * x`` over all elements, accumulated in float64; returns a Python float."""
    check_param("x", x)
    x64 = x.reshape(-1).astype(np.float64)
    return float(np.dot(x64, x64))


def scale(x, factor):
    """``x *= factor`` in place (factor cast to x's dtype)."""
    check_param("x", x)
    x *= factor


def clip_value(x, clip):
    """``x = clamp(x, -clip, clip)`` in place; NaN stays NaN."""
    check_param("x", x)
    np.clip(x, -clip, clip, out=x)
