import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, strategies as st

import ntkflow as nf
from ntkflow.paper.loss import _robust_loss
from conftest import make_problem


def autodiff_grad(W, a, X, y, eps):
    with jax.enable_x64(True):
        f = lambda w: _robust_loss(w, *(jnp.asarray(v, jnp.float64) for v in (a, X, y)), eps)
        return np.asarray(jax.grad(f)(jnp.asarray(W, jnp.float64)))


@given(seed=st.integers(0, 10_000), eps=st.floats(0.0, 0.5))
def test_closed_form_gradient_equals_autodiff(seed, eps):
    W, a, X, y = make_problem(seed)
    np.testing.assert_allclose(nf.robust_loss_grad(W, a, X, y, eps), autodiff_grad(W, a, X, y, eps),
                               rtol=1e-10, atol=1e-12)


def test_gradient_matches_finite_differences(problem):
    W, a, X, y = problem
    eps, h = 0.03, 1e-6
    g = np.asarray(nf.robust_loss_grad(W, a, X, y, eps))
    rng = np.random.default_rng(1)
    for _ in range(5):
        D = rng.standard_normal(W.shape)
        fd = (nf.robust_loss(W + h * D, a, X, y, eps) - nf.robust_loss(W - h * D, a, X, y, eps)) / (2 * h)
        assert abs(fd - np.sum(g * D)) < 1e-6 * max(1, abs(fd))


def test_loss_is_sum_of_logistic_terms(problem):
    W, a, X, y = problem
    u = np.asarray(nf.ibp_lower_margin(W, a, X, y, 0.1))
    np.testing.assert_allclose(nf.robust_loss(W, a, X, y, 0.1), np.sum(np.log1p(np.exp(-u))), rtol=1e-12)


def test_loss_finite_for_huge_margins(problem):
    W, a, X, y = problem
    for scale in (1e6, -1e6):
        L = float(nf.robust_loss(W * scale, a, X, y, 0.0))
        assert np.isfinite(L) and L >= 0
        assert np.all(np.isfinite(nf.robust_loss_grad(W * scale, a, X, y, 0.0)))
    # huge negative margins: loss ≈ Σ −u
    u = np.asarray(nf.margin(W * 1e6, a, X, y))
    np.testing.assert_allclose(nf.robust_loss(W * 1e6, a, X, y, 0.0), np.sum(np.maximum(-u, 0)), rtol=1e-9)
