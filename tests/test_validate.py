"""Every bad input gets a one-line ValueError naming the argument, raised at the API boundary."""

import numpy as np
import pytest

import ntkflow as nf
from conftest import make_problem

W, A, X, Y = make_problem()


def one_line_error(fn, *args, match, **kw):
    with pytest.raises(ValueError, match=match) as info:
        fn(*args, **kw)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 200
    assert info.traceback[-1].path.name == "_validate.py" or "ntkflow" in str(info.traceback[-1].path)


ALL = [
    (nf.ibp_lower_margin, True),
    (nf.robust_loss, True),
    (nf.robust_loss_grad, True),
    (nf.indicators, True),
    (nf.gram_matrix, True),
    (nf.gram_terms, True),
]


@pytest.mark.parametrize("fn,_", ALL)
def test_eps_outside_unit_interval(fn, _):
    for bad in (-0.1, 1.5, float("nan"), "x"):
        one_line_error(fn, W, A, X, Y, bad, match="eps")


@pytest.mark.parametrize("fn,_", ALL)
def test_labels_not_pm1(fn, _):
    one_line_error(fn, W, A, X, (Y > 0).astype(float), 0.1, match="y: labels must be")


@pytest.mark.parametrize("fn,_", ALL)
def test_output_weights_not_pm1(fn, _):
    one_line_error(fn, W, A * 0.5, X, Y, 0.1, match="a: output weights")


@pytest.mark.parametrize("fn,_", ALL)
def test_nan_and_inf(fn, _):
    Xn = X.copy(); Xn[0, 0] = np.nan
    one_line_error(fn, W, A, Xn, Y, 0.1, match="X: contains NaN")
    Wi = W.copy(); Wi[1, 1] = np.inf
    one_line_error(fn, Wi, A, X, Y, 0.1, match="W: contains inf")


@pytest.mark.parametrize("fn,_", ALL)
def test_shape_mismatches(fn, _):
    one_line_error(fn, W[:, :-1], A, X, Y, 0.1, match="W and X disagree")
    one_line_error(fn, W, A[:-1], X, Y, 0.1, match="a: has")
    one_line_error(fn, W, A, X, Y[:-1], 0.1, match="y: has")
    one_line_error(fn, W[0], A, X, Y, 0.1, match="W: expected 2 dimension")


def test_margin_and_data_functions():
    one_line_error(nf.margin, W, A, X, np.zeros_like(Y), match="y: labels")
    one_line_error(nf.h_inf_exact, X, Y[:3], match="y: has")
    one_line_error(nf.h_inf, X, Y, 0.1, samples=1, match="samples")
    one_line_error(nf.lambda_0, X, Y, 0.1, samples=1, match="samples")
    one_line_error(nf.lambda_0, X, Y, 2.0, samples=10, match="eps")
    one_line_error(nf.h_inf, X, Y, 0.1, samples=10, seed=-1, match="seed")
    one_line_error(nf.check_assumption_1, X, -1, match="eps")
    one_line_error(nf.check_assumption_2, X[0], 0.1, match="X: expected 2")
    one_line_error(nf.init_params, 0, 0, 3, match="m: must be >= 1")
    one_line_error(nf.init_params, 0, 2.5, 3, match="m: must be an integer")
    one_line_error(nf.gram_matrix, W, A, X, Y, 0.1, chunk=0, match="chunk")
    one_line_error(nf.data.mnist25, n=1, match="n: must be between")
