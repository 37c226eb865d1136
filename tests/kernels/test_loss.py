"""fastrnn.kernels.loss against the reference (fastrnn.reference.loss): same results (float64 to
1e-10, float32 to 1e-4), same errors, same results for any number of threads."""

import re

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cells import rel_err
from fastrnn.kernels.loss import softmax_cross_entropy as kernel_xent
from fastrnn.reference.loss import softmax_cross_entropy as ref_xent

TOL = {np.float64: 1e-10, np.float32: 1e-4}

# (T, B, V): ones in every place, odd sizes, more rows than row blocks (64), a wide vocabulary
SHAPES = [(1, 1, 1), (1, 1, 2), (1, 1, 5), (1, 3, 1), (4, 1, 1), (3, 1, 7), (1, 4, 65),
          (5, 3, 65), (7, 11, 13), (13, 11, 9), (2, 3, 1000)]


def make_inputs(rng, shape, dtype, scale=3.0, mask=None):
    T, B, V = shape
    logits = rng.normal(0, scale, shape).astype(dtype)
    targets = rng.integers(0, V, (T, B))
    if mask == "binary":
        mask = (rng.random((T, B)) < 0.7).astype(dtype)
        mask.flat[0] = 1                          # at least one counted token
    elif mask == "weights":
        mask = rng.uniform(0, 2, (T, B)).astype(dtype)
    elif mask == "bool":
        mask = rng.random((T, B)) < 0.7
        mask.flat[0] = True
    return logits, targets, mask


def check_close(got, want, dtype):
    (loss, d), (loss_ref, d_ref) = got, want
    assert isinstance(loss, float)
    assert d.dtype == dtype and d.shape == d_ref.shape
    tol = TOL[dtype]
    assert abs(loss - loss_ref) <= tol * max(abs(loss_ref), 1e-30)
    assert rel_err(d, d_ref) <= tol


@pytest.mark.parametrize("mask", [None, "binary", "weights", "bool"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_reference(shape, dtype, mask):
    rng = np.random.default_rng([*shape, [None, "binary", "weights", "bool"].index(mask)])
    logits, targets, m = make_inputs(rng, shape, dtype, mask=mask)
    check_close(kernel_xent(logits, targets, m), ref_xent(logits, targets, m), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", [1e2, 1e4])
def test_large_logits_are_stable(dtype, scale):
    rng = np.random.default_rng(0)
    logits, targets, mask = make_inputs(rng, (6, 5, 33), dtype, scale=scale, mask="binary")
    logits[0, 0, :] = scale                      # ties at the maximum
    logits[1, 0, :] = -scale                     # a row far below zero
    loss, d = kernel_xent(logits, targets, mask)
    assert np.isfinite(loss) and np.all(np.isfinite(d))
    check_close((loss, d), ref_xent(logits, targets, mask), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradient_rows_sum_to_zero_and_masked_rows_are_zero(dtype):
    rng = np.random.default_rng(2)
    logits, targets, mask = make_inputs(rng, (9, 7, 21), dtype, mask="binary")
    _, d = kernel_xent(logits, targets, mask)
    assert np.abs(d.sum(axis=2)).max() <= 10 * np.finfo(dtype).eps
    assert np.all(d[mask == 0] == 0)


def test_non_contiguous_inputs():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(5, 9, 4)).transpose(1, 0, 2)[::2]      # (5, 5, 4), strided
    targets = rng.integers(0, 4, (10, 5))[::2]
    mask = (rng.random((5, 10)) < 0.8).T[::2]
    mask[0, 0] = True
    check_close(kernel_xent(logits, targets, mask), ref_xent(logits, targets, mask), np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nan_logits_propagate_like_the_reference(dtype):
    rng = np.random.default_rng(4)
    logits, targets, _ = make_inputs(rng, (3, 2, 6), dtype)
    logits[1, 0, 2] = np.nan
    loss, d = kernel_xent(logits, targets)
    loss_ref, d_ref = ref_xent(logits, targets)
    assert np.isnan(loss) and np.isnan(loss_ref)
    np.testing.assert_array_equal(np.isnan(d), np.isnan(d_ref))
    ok = ~np.isnan(d_ref)
    assert rel_err(d[ok], d_ref[ok]) <= TOL[dtype]


@given(T=st.integers(1, 6), B=st.integers(1, 6), V=st.integers(1, 40),
       dtype=st.sampled_from([np.float32, np.float64]), masked=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_matches_reference_property(T, B, V, dtype, masked, seed):
    rng = np.random.default_rng(seed)
    logits, targets, mask = make_inputs(rng, (T, B, V), dtype, scale=10.0,
                                        mask="weights" if masked else None)
    check_close(kernel_xent(logits, targets, mask), ref_xent(logits, targets, mask), dtype)


# ---------------------------------------------------------------- errors

def _bad_inputs():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 3, 4))
    t = rng.integers(0, 4, (2, 3))
    ones = np.ones((2, 3))
    return {
        "logits not an array": (x.tolist(), t, None),
        "logits int": (x.astype(np.int64), t, None),
        "logits float16": (x.astype(np.float16), t, None),
        "logits 2-D": (x[0], t, None),
        "logits empty": (np.zeros((0, 3, 4)), t[:0], None),
        "V = 0": (np.zeros((2, 3, 0)), t, None),
        "targets float": (x, t.astype(np.float64), None),
        "targets list": (x, t.tolist(), None),
        "targets shape": (x, t.T, None),
        "targets too large": (x, t + 4, None),
        "targets negative": (x, t - 4, None),
        "mask list": (x, t, ones.tolist()),
        "mask shape": (x, t, ones.T),
        "mask NaN": (x, t, np.where(np.eye(2, 3) > 0, np.nan, 1.0)),
        "mask inf": (x, t, np.where(np.eye(2, 3) > 0, np.inf, 1.0)),
        "mask negative": (x, t, -ones),
        "mask all zero": (x, t, 0 * ones),
    }


BAD = _bad_inputs()


@pytest.mark.parametrize("case", list(BAD))
def test_same_errors_as_reference(case):
    args = BAD[case]
    with pytest.raises((TypeError, ValueError)) as ref:
        ref_xent(*args)
    with pytest.raises(type(ref.value), match=re.escape(str(ref.value))):
        kernel_xent(*args)


# ---------------------------------------------------------------- threads

@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 3, 65), (50, 50, 65), (3, 7, 1000)],
                         ids=lambda s: "x".join(map(str, s)))
def test_one_thread_equals_two_threads(shape, dtype):
    """The rows are split into a fixed set of blocks whatever the thread count, so the results
    are identical, not merely equal to round-off."""
    rng = np.random.default_rng(6)
    logits, targets, mask = make_inputs(rng, shape, dtype, mask="weights")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        loss1, d1 = kernel_xent(logits, targets, mask)
        numba.set_num_threads(2)
        loss2, d2 = kernel_xent(logits, targets, mask)
    finally:
        numba.set_num_threads(before)
    assert loss1 == loss2
    np.testing.assert_array_equal(d1, d2)
