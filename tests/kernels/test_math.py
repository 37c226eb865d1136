"""The scalar math of the kernels (fastrnn.kernels._math) against float64 NumPy / SciPy.

float32 inputs cover the whole float32 range: a dense grid of bit patterns (every 4099th of
the 2**32, so every exponent and sign with scattered mantissas) plus the special values. The
functions are called from a compiled loop (so the numba overloads are what is tested) and
from plain Python (the NumPy fallbacks, which NUMBA_DISABLE_JIT=1 also uses inside kernels).
"""

import math
import platform
import re

import numpy as np
import pytest
from scipy.special import expit

from fastrnn._jit import DISABLED, njit
from fastrnn.kernels._math import exp, fmax, sigmoid, tanh

F32 = np.finfo(np.float32)

# Documented bounds (the maxima found by an exhaustive check over all 2**32 float32 inputs).
# Without the JIT the functions are NumPy's float32 ufuncs, whose exp is off by up to 1.6 ulp
# and whose tanh reaches 1 only from x = 10.
TANH_ABS = 3e-7
SIGMOID_ABS = 2e-7
EXP_REL = 2.5e-7 if DISABLED else 1e-7
TANH_ONE_FROM = 10.0 if DISABLED else 9.0


def float32_grid():
    step = 65537 if DISABLED else 4099  # plain Python calls per element are ~1000x slower
    bits = np.arange(0, 2**32, step, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    special = np.array([0.0, -0.0, 1.0, -1.0, 0.5, F32.max, -F32.max, F32.tiny, -F32.tiny,
                        F32.smallest_subnormal, -F32.smallest_subnormal, 1e-30, -1e-30,
                        7.90531110763549805, -7.90531110763549805, 7.9, 8.0, -8.0, 9.0, -9.0,
                        15.8, -15.8, 16.0, -16.0, 20.0, -20.0, 1e4, -1e4, 3e38, -3e38,
                        88.72283, 88.72284, 88.7, 88.0, 89.0, -87.0, -87.33, -87.34, -88.0,
                        -103.0, -104.0, -1e4], np.float32)
    with np.errstate(over="ignore"):  # nextafter(max, inf) = inf, dropped below
        near = np.concatenate([np.nextafter(special, np.float32(np.inf)),
                               np.nextafter(special, np.float32(-np.inf))])
    x = np.concatenate([x, special, near])
    return x[np.isfinite(x)]


X32 = float32_grid()


def _loop(fn):
    @njit(cache=False)
    def apply(x, out):
        for i in range(x.shape[0]):
            out[i] = fn(x[i])

    def call(x):
        x = np.asarray(x)
        out = np.empty_like(x)
        apply(x, out)
        return out

    call.kernel = apply
    return call


TANH = _loop(tanh)
SIGMOID = _loop(sigmoid)
EXP = _loop(exp)


@njit(cache=False)
def _row_max(x):
    m = x[0]
    for j in range(1, x.shape[0]):
        m = fmax(m, x[j])
    return m


def ref_exp32(x):
    """exp of float32 x in float64, and the correctly rounded float32 result."""
    with np.errstate(over="ignore"):
        r = np.exp(x.astype(np.float64))
        return r, r.astype(np.float32)


# ---------------------------------------------------------------- float32, whole range

def test_tanh32_whole_range():
    y = TANH(X32)
    assert y.dtype == np.float32
    err = np.abs(y.astype(np.float64) - np.tanh(X32.astype(np.float64)))
    assert err.max() <= TANH_ABS, X32[err.argmax()]
    assert np.all(np.abs(y) <= 1)
    assert np.all(np.abs(y[np.abs(X32) > TANH_ONE_FROM]) == 1)  # true tanh: from 9.0109
    normal = np.abs(X32) >= F32.tiny
    assert np.all(np.sign(y[normal]) == np.sign(X32[normal]))     # odd, 0 only at 0


def test_sigmoid32_whole_range():
    y = SIGMOID(X32)
    assert y.dtype == np.float32
    err = np.abs(y.astype(np.float64) - expit(X32.astype(np.float64)))
    assert err.max() <= SIGMOID_ABS, X32[err.argmax()]
    assert np.all((y >= 0) & (y <= 1))


def test_exp32_whole_range():
    y = EXP(X32)
    assert y.dtype == np.float32
    r, r32 = ref_exp32(X32)
    normal = (r32 >= F32.tiny) & np.isfinite(r32)
    rel = np.abs(y[normal] / r[normal] - 1)
    assert rel.max() <= EXP_REL, X32[normal][rel.argmax()]
    assert np.all(y[np.isinf(r32)] == np.inf)                   # overflow: inf, from 88.7228
    small = r32 < F32.tiny                                       # underflow: 0 (or subnormal)
    assert np.all((y[small] >= 0) & (y[small] <= F32.tiny))
    assert np.all(y[X32 <= -104] == 0)


def test_exp32_softmax_range():
    """The inputs softmax feeds it (x - max <= 0), dense near 0 where the sum is decided."""
    x = np.concatenate([-np.geomspace(1e-8, 87, 200_001), np.linspace(-87, 0, 200_001)])
    x = x.astype(np.float32)
    r, _ = ref_exp32(x)
    assert np.abs(EXP(x) / r - 1).max() <= EXP_REL


@pytest.mark.parametrize("name, f, expected", [
    ("tanh", TANH, [1.0, -1.0, 1.0, -1.0]),
    ("sigmoid", SIGMOID, [1.0, 0.0, 1.0, 0.0]),
    ("exp", EXP, [np.inf, 0.0, np.inf, 0.0]),
])
def test_float32_special_values(name, f, expected):
    x = np.array([np.inf, -np.inf, F32.max, -F32.max, np.nan, -np.nan], np.float32)
    y = f(x)
    np.testing.assert_array_equal(y[:4], np.array(expected, np.float32))
    assert np.all(np.isnan(y[4:])), f"{name}(NaN) must be NaN"


def test_float32_subnormal_and_zero_inputs():
    x = np.array([0.0, -0.0, F32.smallest_subnormal, -F32.smallest_subnormal, 1e-40], np.float32)
    assert np.abs(TANH(x) - x).max() <= 1e-43      # tanh(x) = x in float32, to subnormal rounding
    np.testing.assert_array_equal(SIGMOID(x), np.float32(0.5))
    np.testing.assert_array_equal(EXP(x), np.float32(1.0))


# ---------------------------------------------------------------- float64: accurate

def float64_samples():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-20, 20, 20_000), rng.uniform(-700, 700, 20_000),
                        rng.normal(0, 1e-3, 1000), [0.0, -0.0, 1e-310, -1e-310, 1e-300, 40.0,
                                                    -40.0, 700.0, -700.0, -745.0, 709.7]])
    return x


def test_float64_accurate():
    """1-3 ulp against NumPy (checked to 4 ulp); results below the smallest normal double
    are flushed to 0 (as in float32), so they are compared with an absolute bound."""
    x = float64_samples()
    tiny = np.finfo(np.float64).tiny
    for got, want in ((TANH(x), np.tanh(x)), (SIGMOID(x), expit(x)), (EXP(x), np.exp(x))):
        normal = np.abs(want) >= tiny
        ulps = np.abs(got[normal] - want[normal]) / np.spacing(np.abs(want[normal]))
        assert ulps.max() <= 4
        assert np.all(np.abs(got[~normal] - want[~normal]) <= tiny)


def test_float64_special_values():
    x = np.array([np.inf, -np.inf, 1e308, -1e308, 800.0, -800.0, np.nan])
    np.testing.assert_array_equal(TANH(x)[:6], [1, -1, 1, -1, 1, -1])
    np.testing.assert_array_equal(SIGMOID(x)[:6], [1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(EXP(x)[:6], [np.inf, 0, np.inf, 0, np.inf, 0])
    for f in (TANH, SIGMOID, EXP):
        assert np.isnan(f(x)[6])


# ---------------------------------------------------------------- fmax

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fmax_reduction_skips_nan(dtype):
    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 8, 65, 1000):
        x = rng.normal(0, 1e4, n).astype(dtype)
        assert _row_max(x) == x.max()
        if n > 1:
            x[n // 2] = np.nan
            assert _row_max(x) == np.nanmax(x)
    assert _row_max(np.array([-np.inf, -np.inf], dtype)) == -np.inf
    assert np.isnan(_row_max(np.array([np.nan, np.nan], dtype)))


def test_fmax_scalar():
    f = njit(cache=False)(lambda a, b: fmax(a, b))
    for g in (f, fmax):
        assert g(1.0, np.nan) == 1.0
        assert g(np.nan, 1.0) == 1.0
        assert g(np.float32(-2), np.float32(3)) == 3
        assert math.isnan(g(np.nan, np.nan))


# ---------------------------------------------------------------- pure Python

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pure_python_scalars_keep_dtype_and_never_warn(dtype):
    # filterwarnings=error: an overflow RuntimeWarning from np.exp would fail here
    cases = [(tanh, np.tanh), (sigmoid, expit), (exp, np.exp)]
    x = np.array([-1e4, -100, -88.0, -3.0, -0.5, 0.0, 0.5, 3.0, 88.0, 100, 1e4, np.inf, -np.inf],
                 dtype)
    with np.errstate(over="ignore"):
        for f, ref in cases:
            for v in x:
                y = f(v)
                assert np.asarray(y).dtype == dtype
                assert y == pytest.approx(ref(v), rel=1e-6, abs=1e-7)
            assert np.isnan(f(dtype(np.nan)))
    assert isinstance(tanh(0.5), float) and tanh(0.5) == pytest.approx(math.tanh(0.5))
    assert sigmoid(-1000.0) == 0.0 and sigmoid(1000.0) == 1.0
    assert exp(1000.0) == math.inf


def test_compiled_scalar_call():
    """Scalar calls (not only loops) compile, for both float types and Python ints."""
    f = njit(cache=False)(lambda x: (tanh(x), sigmoid(x), exp(x)))
    for x in (np.float32(0.3), 0.3, 2):
        t, s, e = f(x)
        assert t == pytest.approx(math.tanh(x), abs=3e-7)
        assert s == pytest.approx(1 / (1 + math.exp(-x)), abs=2e-7)
        assert e == pytest.approx(math.exp(x), rel=1e-7)


# ---------------------------------------------------------------- vectorisation

@pytest.mark.skipif(DISABLED, reason="NUMBA_DISABLE_JIT: nothing is compiled")
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 assembly")
@pytest.mark.parametrize("loop", [TANH, SIGMOID, EXP], ids=["tanh", "sigmoid", "exp"])
@pytest.mark.parametrize("dtype,suffix", [(np.float32, "ps"), (np.float64, "pd")])
def test_loops_vectorise(loop, dtype, suffix):
    """The point of these functions: a loop over them compiles to packed SIMD arithmetic with
    no libm call (a call would also stop the vectoriser)."""
    x = np.ones(16, dtype)
    loop(x)
    k = loop.kernel
    sig = [s for s in k.signatures if str(s[0].dtype) == np.dtype(dtype).name][0]
    asm = k.inspect_asm(sig)
    assert re.search(r"\bv?(mul|fmadd\d*|fmsub\d*|fnmadd\d*|add|sub)" + suffix + r"\s", asm)
    assert not re.search(r"\b(tanhf?|expf?|exp2f?)\b", asm)
