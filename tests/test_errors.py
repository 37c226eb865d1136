"""Bad input gets a TypeError/ValueError naming the argument, the expected and the actual."""

import numpy as np
import pytest

import fastrnn.kernels
import fastrnn.reference
from cells import CELL_NAMES, Cell, random_cell

BACKENDS = {"reference": fastrnn.reference, "kernels": fastrnn.kernels}


@pytest.fixture(params=list(BACKENDS))
def ref(request):
    return BACKENDS[request.param]


setup = random_cell


@pytest.mark.parametrize("name", CELL_NAMES)
def test_wrong_rank_of_x(ref, name):
    cell, x, states, params = setup(ref, name)
    with pytest.raises(ValueError, match=r"x must have 3 dimensions, got 2 with shape \(2, 4\)"):
        cell.forward(x[0], states, params)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_wrong_input_width(ref, name):
    cell, x, states, params = setup(ref, name)
    with pytest.raises(ValueError, match=r"x must have shape \(T, B, D\) with last dimension 4, "
                                         r"got \(3, 2, 3\)"):
        cell.forward(x[:, :, :3], states, params)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_mismatched_state_shape(ref, name):
    cell, x, states, params = setup(ref, name)
    bad = (states[0][:1],) + states[1:]
    with pytest.raises(ValueError, match=r"h0 must have shape \(B, H\) = \(2, 5\), got \(1, 5\)"):
        cell.forward(x, bad, params)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_mismatched_weight_shapes(ref, name):
    cell, x, states, params = setup(ref, name)
    w_ih, w_hh, b_ih, b_hh = params
    with pytest.raises(ValueError, match="weight_hh must have shape"):
        cell.forward(x, states, (w_ih, w_hh[:-1], b_ih, b_hh))
    with pytest.raises(ValueError, match="weight_ih must have shape"):
        cell.forward(x, states, (w_ih[:-1], w_hh, b_ih, b_hh))
    with pytest.raises(ValueError, match=r"bias_hh must have shape \(G\*H,\)"):
        cell.forward(x, states, (w_ih, w_hh, b_ih, b_hh[:-1]))


@pytest.mark.parametrize("name", CELL_NAMES)
def test_mixed_dtypes(ref, name):
    cell, x, states, params = setup(ref, name)
    with pytest.raises(TypeError, match="x has dtype float32 but weights has dtype float64"):
        cell.forward(x.astype(np.float32), states, params)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_integer_arrays(ref, name):
    cell, x, states, params = setup(ref, name)
    with pytest.raises(TypeError, match="x must have dtype float32 or float64, got int64"):
        cell.forward(x.astype(np.int64), states, params)
    with pytest.raises(TypeError, match="x must be a numpy array, got list"):
        cell.forward(x.tolist(), states, params)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_nan_in_weights(ref, name):
    cell, x, states, params = setup(ref, name)
    w_hh = params[1].copy()
    w_hh[0, 0] = np.nan
    with pytest.raises(ValueError, match="weight_hh contains NaN or Inf"):
        cell.forward(x, states, (params[0], w_hh) + params[2:])


@pytest.mark.parametrize("name", CELL_NAMES)
def test_empty_sequence(ref, name):
    cell, x, states, params = setup(ref, name)
    with pytest.raises(ValueError, match="x must have T >= 1 and B >= 1"):
        cell.forward(x[:0], states, params)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_backward_checks_gradient_and_cache(ref, name):
    cell, x, states, params = setup(ref, name)
    hs, _, cache = cell.forward(x, states, params)
    with pytest.raises(ValueError, match=r"dhs must have shape \(T, B, H\) = \(3, 2, 5\)"):
        cell.backward(hs[:2], cache)
    with pytest.raises(TypeError, match="needs the cache returned by the matching forward"):
        cell.backward(hs, (1, 2, 3))
    with pytest.raises(ValueError, match="truncate must be None or an int >= 0, got -1"):
        cell.backward(hs, cache, truncate=-1)
    with pytest.raises(TypeError, match="truncate must be None or an int >= 0"):
        cell.backward(hs, cache, truncate=2.5)


def test_bad_nonlinearity(ref):
    cell, x, states, params = setup(ref, "rnn_tanh")
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"):
        ref.rnn_forward(x, states[0], *params, nonlinearity="sigmoid")


def test_loss_bad_inputs(ref):
    logits = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, V\) = \[0, 4\)"):
        ref.softmax_cross_entropy(logits, np.full((2, 3), 4))
    with pytest.raises(TypeError, match="targets must be an integer numpy array"):
        ref.softmax_cross_entropy(logits, np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"targets must have shape \(T, B\) = \(2, 3\)"):
        ref.softmax_cross_entropy(logits, np.zeros((3, 2), int))
    with pytest.raises(ValueError, match="mask selects no token"):
        ref.softmax_cross_entropy(logits, np.zeros((2, 3), int), np.zeros((2, 3), bool))


@pytest.mark.parametrize("name", CELL_NAMES)
def test_cache_of_the_other_backend_is_rejected(name):
    cell_r, x, states, params = setup(fastrnn.reference, name)
    cell_k = Cell(name, fastrnn.kernels)
    hs, _, cache_r = cell_r.forward(x, states, params)
    _, _, cache_k = cell_k.forward(x, states, params)
    with pytest.raises(TypeError, match="needs the cache returned by the matching forward"):
        cell_k.backward(hs, cache_r)
    with pytest.raises(TypeError, match="needs the cache returned by the matching forward"):
        cell_r.backward(hs, cache_k)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_step_functions_name_their_arguments(ref, name):
    cell, x, states, params = setup(ref, name)
    bad = (states[0][:, :2],) + states[1:]
    with pytest.raises(ValueError, match=r"h_prev must have shape \(B, H\) = \(2, 5\)"):
        cell.step_forward(x[0], bad, params)
    with pytest.raises(ValueError, match=r"x must have 2 dimensions"):
        cell.step_forward(x, states, params)
