import itertools

import numpy as np
import pytest
from hypothesis import given, strategies as st

import ntkflow as nf
from conftest import make_problem


def brute_margin(W, a, X, y):
    m = W.shape[0]
    return np.array([y[i] * np.sum(a * np.maximum(W @ X[i], 0)) / np.sqrt(m) for i in range(len(y))])


def test_init_params_distribution_and_reproducibility():
    W, a = nf.init_params(3, 4000, 5)
    W2, a2 = nf.init_params(3, 4000, 5)
    np.testing.assert_array_equal(W, W2)
    np.testing.assert_array_equal(a, a2)
    assert W.shape == (4000, 5) and a.shape == (4000,)
    assert W.dtype == np.float64
    assert set(np.unique(a)) == {-1.0, 1.0}
    # N(0, 1): mean within 4 standard errors, variance within 4 se (se of var ≈ √(2/N))
    N = W.size
    assert abs(W.mean()) < 4 / np.sqrt(N)
    assert abs(W.var() - 1) < 4 * np.sqrt(2 / N)
    assert abs(a.mean()) < 4 / np.sqrt(4000)
    assert not np.array_equal(nf.init_params(4, 4000, 5)[0], W)


def test_margin_matches_explicit_sum(problem):
    W, a, X, y = problem
    np.testing.assert_allclose(nf.margin(W, a, X, y), brute_margin(W, a, X, y), rtol=1e-12, atol=1e-12)


def test_ibp_lower_margin_matches_explicit_interval_propagation(problem):
    W, a, X, y = problem
    eps = 0.07
    m = W.shape[0]
    expected = []
    for i in range(len(y)):
        tot = 0.0
        for r in range(m):
            l1 = np.abs(W[r]).sum()
            lo_pre, hi_pre = W[r] @ X[i] - eps * l1, W[r] @ X[i] + eps * l1
            coef = y[i] * a[r]
            # lower bound of coef·relu(z) over z ∈ [lo_pre, hi_pre]
            tot += coef * (max(lo_pre, 0) if coef > 0 else max(hi_pre, 0))
        expected.append(tot / np.sqrt(m))
    np.testing.assert_allclose(nf.ibp_lower_margin(W, a, X, y, eps), expected, rtol=1e-12, atol=1e-12)


def test_printed_eq3_sign_would_not_be_a_lower_bound(problem):
    # The printed Eq. 3 adds the y·a = −1 term; the true margin can be below that value.
    W, a, X, y = problem
    m = W.shape[0]
    s = y[:, None] * a[None, :]
    printed = np.sum(np.maximum(X @ W.T - s * 0.0, 0), axis=1) / np.sqrt(m)  # ε = 0, plus sign
    assert np.any(printed > nf.margin(W, a, X, y) + 1e-9)
    np.testing.assert_allclose(nf.ibp_lower_margin(W, a, X, y, 0.0), nf.margin(W, a, X, y), atol=1e-12)


@given(seed=st.integers(0, 10_000), eps=st.floats(0.0, 1.0))
def test_lower_margin_is_sound_on_random_box_points(seed, eps):
    W, a, X, y = make_problem(seed, n=5, m=30, d=4)
    u = np.asarray(nf.ibp_lower_margin(W, a, X, y, eps))
    rng = np.random.default_rng(seed)
    for _ in range(20):
        Xp = X + rng.uniform(-eps, eps, X.shape)
        assert np.all(u <= brute_margin(W, a, Xp, y) + 1e-10)


@given(seed=st.integers(0, 10_000), eps=st.floats(0.0, 1.0))
def test_lower_margin_is_sound_on_every_vertex(seed, eps):
    d = 3
    W, a, X, y = make_problem(seed, n=4, m=20, d=d)
    u = np.asarray(nf.ibp_lower_margin(W, a, X, y, eps))
    for signs in itertools.product([-1.0, 1.0], repeat=d):
        Xp = X + eps * np.array(signs)[None, :]
        assert np.all(u <= brute_margin(W, a, Xp, y) + 1e-10)


@given(seed=st.integers(0, 10_000), e1=st.floats(0.0, 1.0), e2=st.floats(0.0, 1.0))
def test_lower_margin_decreases_in_eps(seed, e1, e2):
    W, a, X, y = make_problem(seed)
    lo, hi = sorted((e1, e2))
    assert np.all(nf.ibp_lower_margin(W, a, X, y, hi) <= nf.ibp_lower_margin(W, a, X, y, lo) + 1e-12)


@given(seed=st.integers(0, 10_000))
def test_lower_margin_at_zero_eps_is_the_margin(seed):
    W, a, X, y = make_problem(seed)
    np.testing.assert_allclose(nf.ibp_lower_margin(W, a, X, y, 0.0), nf.margin(W, a, X, y), atol=1e-12)


def test_indicators_match_definition(problem):
    W, a, X, y = problem
    eps = 0.05
    Ap, Am = nf.indicators(W, a, X, y, eps)
    l1 = np.abs(W).sum(1)
    s = y[:, None] * a[None, :]
    np.testing.assert_array_equal(Ap, (s == 1) & (X @ W.T - eps * l1 > 0))
    np.testing.assert_array_equal(Am, (s == -1) & (X @ W.T + eps * l1 > 0))
    assert not np.any(Ap & Am)
    assert Ap.shape == (X.shape[0], W.shape[0]) and Ap.dtype == bool
