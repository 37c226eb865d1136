"""Scalar math for the kernels: ``tanh``, ``sigmoid``, ``exp``, ``fmax`` that LLVM can vectorise.

Call them from ``@njit`` code like ``math.tanh``; the numba type of the argument picks the
implementation:

    float32: branch-free approximations (selects and bit operations, no calls), so a contiguous
             loop over them compiles to SIMD code (~0.3-0.4 ns/element). Max error over every
             float32 input (checked exhaustively): tanh 2.9e-7 abs, sigmoid 1.7e-7 abs,
             exp 9.7e-8 relative wherever e^x is a normal float (x in [-87.33, 88.72]).
    float64: branch-free too, accurate to 1-3 ulp (~1.7-2.6 ns/element against 7-20 ns
             for libm's scalar calls); sigmoid written so that it never overflows; exp
             flushes results below the smallest normal double (x < -708.4) to 0.

NaN gives NaN; +-inf give the limits (tanh -> +-1, sigmoid -> 1 / 0, exp -> inf / 0). float32
``exp`` flushes results below the smallest normal float (x < -87.33) to 0 and returns inf from
x = 88.7228 on, where e^x exceeds the largest float32.

``fmax(a, b)`` is IEEE maxNum (``np.fmax``: a NaN operand is ignored), lowered to
``llvm.maxnum``, which LLVM vectorises as a reduction (``if v > m: m = v`` stays a scalar
compare chain, as it must keep NaN semantics). Use it where a NaN makes the result NaN anyway,
like the row maximum of a softmax.

Outside numba (``NUMBA_DISABLE_JIT=1`` or a plain Python call) the same names are the exact
NumPy functions on floats and NumPy scalars, keeping their dtype.

Why not ``math.tanh`` everywhere: numba lowers it to a scalar libm call (~14-20 ns) and the
loop does not vectorise (see NOTES.md, "What made numba gate math fast here"). The
implementations are compiled with ``error_model='numpy'`` (a Python-style zero-division check on
a division stops vectorisation) and with fastrnn's fastmath flags (``_jit.FASTMATH``), which
leave out ``reassoc``: with it, LLVM could fold exp's two-constant (Cody-Waite) range reduction
into one rounded constant. They are not inlined at the numba IR level (that would
compile them with the caller's flags); LLVM inlines them into the caller's loop. float64 tanh
does not call ``exp`` (a loop over a tanh that did stayed scalar, 14 ns per element: LLVM did
not inline it) but shares exp's core, ``_exp_reduced``, a small jitted function of its own.

numba's ``cache=True`` checks only the source file of the cached kernel itself; fastrnn's
kernels also check this module and the others compiled code reaches (``fastrnn._jit``), so an
edit here recompiles the kernels that call these functions.
"""

import math

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload, register_jitable

from .._jit import FASTMATH

__all__ = ["tanh", "sigmoid", "exp", "fmax", "flush"]


# ------------------------------------------------------------------ pure Python (exact)

def tanh(x):
    """tanh(x); float32 in njit code: rational approximation, abs error <= 2.9e-7."""
    return np.tanh(x)


def sigmoid(x):
    """1 / (1 + exp(-x)) without overflow; float32 in njit code: 0.5 * tanh(0.5 x) + 0.5."""
    if x >= 0:
        return 1 / (1 + np.exp(-x))
    e = np.exp(x)  # NaN also lands here and stays NaN
    return e / (1 + e)


def exp(x):
    """exp(x); float32 in njit code: relative error <= 9.7e-8, 0 below x = -87.33."""
    with np.errstate(over="ignore", under="ignore"):
        return np.exp(x)


def fmax(a, b):
    """The larger of a and b, ignoring a NaN operand (``np.fmax``, ``llvm.maxnum``)."""
    return np.fmax(a, b)


# Flush to zero: states and gradients that decay below FLUSH (the smallest normal number
# divided by the machine epsilon: ~9.9e-32 in float32, ~1.0e-292 in float64) are set to 0, so
# neither they nor their products with weights (|w| >= eps) are subnormal numbers, which cost
# 10-70x per operation on x86 (measured: an LSTM forward over decayed states ran 23x slower in
# float32 and 57x in float64). The change is below 1e-31 absolute, far under the round-off of
# any value that matters. A per-element select, not MXCSR's FTZ/DAZ: those are per-thread
# (numba's worker threads would miss them) and would change the caller's NumPy arithmetic.
FLUSH32 = np.float32(np.finfo(np.float32).tiny / np.finfo(np.float32).eps)
FLUSH64 = np.float64(np.finfo(np.float64).tiny / np.finfo(np.float64).eps)


def flush(x, out):
    """``x`` converted to the dtype of the array ``out`` (where it is stored), or 0 where its
    magnitude is below that dtype's FLUSH (NaN and Inf pass through)."""
    y = out.dtype.type(x)
    return y * 0 if abs(y) < (FLUSH32 if out.dtype == np.float32 else FLUSH64) else y


# ------------------------------------------------------------------ float32 approximations

_f32 = np.float32

# tanh: Eigen's rational approximation (Eigen/src/Core/MathFunctionsImpl.h,
# generic_fast_tanh_float): odd degree-13 numerator over even degree-6 denominator on
# [-c, c]; it gives 1 - 2.4e-7 at +-c, so beyond |x| = 9 (where tanh rounds to 1 within 3e-8)
# the result is set to +-1 exactly.
_TANH_CLAMP = _f32(7.90531110763549805)
_TANH_ONE = _f32(9.0)
_A1 = _f32(4.89352455891786e-03)
_A3 = _f32(6.37261928875436e-04)
_A5 = _f32(1.48572235717979e-05)
_A7 = _f32(5.12229709037114e-08)
_A9 = _f32(-8.60467152213735e-11)
_A11 = _f32(2.00018790482477e-13)
_A13 = _f32(-2.76076847742355e-16)
_B0 = _f32(4.89352518554385e-03)
_B2 = _f32(2.26843463243900e-03)
_B4 = _f32(1.18534705686654e-04)
_B6 = _f32(1.19825839466702e-06)
_HALF = _f32(0.5)
_ONE = _f32(1.0)


def _tanh32(x):
    # Clamp with comparisons that are false for NaN, so NaN passes through (min/max need not).
    y = x
    if y > _TANH_CLAMP:
        y = _TANH_CLAMP
    elif y < -_TANH_CLAMP:
        y = -_TANH_CLAMP
    y2 = y * y
    p = y2 * _A13 + _A11
    p = y2 * p + _A9
    p = y2 * p + _A7
    p = y2 * p + _A5
    p = y2 * p + _A3
    p = y2 * p + _A1
    p = y * p
    q = y2 * _B6 + _B4
    q = y2 * q + _B2
    q = y2 * q + _B0
    r = p / q
    if x > _TANH_ONE:
        r = _ONE
    elif x < -_TANH_ONE:
        r = -_ONE
    return r


def _sigmoid32(x):
    return _HALF * tanh(_HALF * x) + _HALF


# exp: x = n ln2 + f with n = floor(x / ln2), 0 <= f < ln2 (Cody-Waite: ln2 = C1 + C2, C1 with
# few bits so that n * C1 is exact), e^f by a degree-6 polynomial, 2^n from exponent bits.
# n is clamped to [-127, 127]: x below ~-87.34 (where e^x leaves the normal floats) gives
# 2^-127 -> bits 0 -> 0 (flush to zero), and x >= 88.7228 overflows in the final product to
# inf exactly where the true result does. Max relative error 9.7e-8 for every float32 x whose
# e^x is a normal float (checked exhaustively).
_EXP_LO = _f32(-88.0)     # floor(-88 / ln2) = -127: the result is exactly 0
_N_HI = _f32(127.0)
_LOG2E = _f32(1.44269504088896341)
_C1 = _f32(0.693359375)
_C2 = _f32(-2.12194440e-4)
# e^f ~ 1 + f (Q1 + f (Q2 + ... f Q6)) on [0, ln2]: minimax relative error fit (Lawson
# iterations on Chebyshev points, 2e-9 in float64; ~9e-8 evaluated in float32).
_Q1 = _f32(0.9999998211860657)
_Q2 = _f32(0.5000059008598328)
_Q3 = _f32(0.16660945117473602)
_Q4 = _f32(0.041917286813259125)
_Q5 = _f32(0.0077888378873467445)
_Q6 = _f32(0.0019506561802700162)


@intrinsic
def _exp2i32(typingctx, n):
    """2.0**n as float32 for an integer n in [-127, 127] (n = -127 gives 0), built from the
    exponent bits: ``((n + 127) << 23)`` bitcast to float32 (numba has no scalar bitcast)."""
    if not isinstance(n, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        (v,) = args
        if v.type.width > 32:
            v = builder.trunc(v, i32)
        elif v.type.width < 32:
            v = builder.sext(v, i32) if n.signed else builder.zext(v, i32)
        bits = builder.shl(builder.add(v, ir.Constant(i32, 127)), ir.Constant(i32, 23))
        return builder.bitcast(bits, ir.FloatType())

    return types.float32(n), codegen


def _exp32(x):
    if x < _EXP_LO:  # false for NaN, which passes through
        x = _EXP_LO
    nf = np.floor(x * _LOG2E)
    nf = nf if nf <= _N_HI else _N_HI  # also maps NaN to a valid exponent (f stays NaN)
    f = x - nf * _C1
    f = f - nf * _C2
    p = _Q6 * f + _Q5
    p = p * f + _Q4
    p = p * f + _Q3
    p = p * f + _Q2
    p = p * f + _Q1
    p = p * f + _ONE
    return p * _exp2i32(np.int32(nf))


# ------------------------------------------------------------------ float64 (accurate)

# Branch-free too (libm's scalar calls cost 7-20 ns and stop the vectoriser), but accurate to
# 1-3 ulp: exp: x = n ln2 + r, |r| <= ln2/2 (Cody-Waite with Cephes' split of ln2), e^r by its
# Taylor polynomial of degree 13 (truncation < 5e-18 relative), 2^n from exponent bits (as
# 2^(n-1) * 2, so that n = 1024 still overflows to inf exactly where e^x does). Results below
# the smallest normal double (x < -708.3964) are flushed to 0, like float32's.
# tanh: |x| < 0.625: Cephes' rational approximation x + x z P(z) / Q(z), z = x^2 (no
# cancellation near 0); else 1 - 2 / (e^(2|x|) + 1) with the sign of x (|x| clamped at 40, where
# tanh is 1 to double precision). sigmoid: 1 / (1 + e^-|x|), mirrored for x < 0.
_EXP64_LO = -708.3964185322641    # e^x below the smallest normal double
_LOG2E64 = 1.4426950408889634
_LN2_HI = 6.93145751953125e-1
_LN2_LO = 1.42860682030941723212e-6
_R = [1.0 / math.factorial(k) for k in range(14)]
_R2, _R3, _R4, _R5, _R6, _R7, _R8, _R9, _R10, _R11, _R12, _R13 = _R[2:]
_TP0 = -9.64399179425052238628e-1
_TP1 = -9.92877231001918586564e1
_TP2 = -1.61468768441708447952e3
_TQ0 = 1.12811678491632931402e2
_TQ1 = 2.23548839060100448583e3
_TQ2 = 4.84406305325125486048e3


@intrinsic
def _exp2i64(typingctx, n):
    """2.0**n as float64 for an integer n in [-1022, 1023], from the exponent bits."""
    if not isinstance(n, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        (v,) = args
        if v.type.width < 64:
            v = builder.sext(v, i64) if n.signed else builder.zext(v, i64)
        bits = builder.shl(builder.add(v, ir.Constant(i64, 1023)), ir.Constant(i64, 52))
        return builder.bitcast(bits, ir.DoubleType())

    return types.float64(n), codegen


def _exp_reduced(x, nf):
    """e^(x - nf ln2) for |x - nf ln2| <= ln2/2 (and a little beyond)."""
    r = x - nf * _LN2_HI
    r = r - nf * _LN2_LO
    p = _R13 * r + _R12
    p = p * r + _R11
    p = p * r + _R10
    p = p * r + _R9
    p = p * r + _R8
    p = p * r + _R7
    p = p * r + _R6
    p = p * r + _R5
    p = p * r + _R4
    p = p * r + _R3
    p = p * r + _R2
    p = p * r + 1.0
    return p * r + 1.0


def _exp64(x):
    nf = np.floor(x * _LOG2E64 + 0.5)
    nf = nf if nf <= 1024.0 else 1024.0   # false for NaN: a valid exponent, r stays NaN
    nf = nf if nf >= -1021.0 else -1021.0
    y = (_exp_reduced(x, nf) * _exp2i64(np.int64(nf) - 1)) * 2.0
    return 0.0 if x < _EXP64_LO else y


def _tanh64(x):
    ax = abs(x)
    z = x * x
    small = x + x * z * (((_TP0 * z + _TP1) * z + _TP2) / (((z + _TQ0) * z + _TQ1) * z + _TQ2))
    y = 2.0 * (40.0 if ax > 40.0 else ax)     # NaN stays NaN; e^80 is far from overflow
    nf = np.floor(y * _LOG2E64 + 0.5)
    nf = nf if nf <= 1024.0 else 1024.0       # a valid exponent for NaN too
    big = 1.0 - 2.0 / (_exp_reduced(y, nf) * _exp2i64(np.int64(nf)) + 1.0)
    big = big if x >= 0.0 else -big
    return small if ax < 0.625 else big


def _sigmoid64(x):
    e = exp(-abs(x))  # <= 1: no overflow
    s = 1.0 / (1.0 + e)
    return s if x >= 0.0 else e * s


def _flush32(x, out):
    y = _f32(x)
    return _f32(0.0) if abs(y) < FLUSH32 else y     # false for NaN, which passes through


def _flush64(x, out):
    y = np.float64(x)
    return 0.0 if abs(y) < FLUSH64 else y


def _flush_impl(x, out):
    if isinstance(x, (types.Float, types.Integer)) and isinstance(out, types.Array):
        return _flush32 if out.dtype == types.float32 else _flush64
    return None


# ------------------------------------------------------------------ fmax

@intrinsic
def _maxnum(typingctx, a, b):
    """llvm.maxnum: the larger of a and b, the other one if one is NaN."""
    if not (isinstance(a, types.Float) and a == b):
        return None

    def codegen(context, builder, signature, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic("llvm.maxnum", [ty], ir.FunctionType(ty, [ty, ty]))
        return builder.call(fn, args)

    return a(a, b), codegen


# ------------------------------------------------------------------ dispatch on numba type

_OPTS = dict(fastmath=FASTMATH, error_model="numpy")


def _dispatch(f32, f64):
    def impl(x):
        if x == types.float32:
            return f32
        if isinstance(x, (types.Float, types.Integer)):
            return f64
        return None

    return impl


def _fmax_impl(a, b):
    if isinstance(a, types.Float) and a == b:
        return lambda a, b: _maxnum(a, b)
    return None


_exp_reduced = register_jitable(**_OPTS)(_exp_reduced)   # called by both exp and tanh
overload(tanh, jit_options=_OPTS, inline="never")(_dispatch(_tanh32, _tanh64))
overload(sigmoid, jit_options=_OPTS, inline="never")(_dispatch(_sigmoid32, _sigmoid64))
overload(exp, jit_options=_OPTS, inline="never")(_dispatch(_exp32, _exp64))
overload(fmax, jit_options=_OPTS, inline="never")(_fmax_impl)
overload(flush, jit_options=_OPTS, inline="never")(_flush_impl)
