import warnings

import numpy as np
import pytest
import scipy.stats

import ntkflow as nf

rng = np.random.default_rng(0)
X8 = rng.uniform(0.1, 1, (8, 5))
Y8 = rng.choice([-1.0, 1.0], 8)


def test_h_inf_exact_closed_form_by_hand():
    X = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    y = np.array([1.0, -1.0, 1.0])
    H = nf.h_inf_exact(X, y)
    # orthogonal pair: x·x' = 0; angle 0 on the diagonal: ‖x‖²/2; 45°: (π − π/4)/(2π) = 3/8
    np.testing.assert_allclose(np.diag(H), [0.5, 2.0, 1.0])
    assert H[0, 1] == 0.0
    np.testing.assert_allclose(H[0, 2], 1.0 * 3 / 8)
    np.testing.assert_allclose(H[1, 2], -2.0 * 3 / 8)


def test_h_inf_monte_carlo_matches_closed_form_within_stderr():
    # plain Monte Carlo (no control variate): z-scores against the closed form
    est = nf.h_inf(X8, Y8, 0.0, samples=40_000, seed=1, control_variate=False)
    z = (est.mean - nf.h_inf_exact(X8, Y8)) / est.stderr
    iu = np.triu_indices(8)
    assert np.max(np.abs(z[iu])) < 4.5
    assert est.samples >= 40_000 and est.batches >= 32
    assert est.control_beta == 0.0 and est.variance_reduction == 1.0


def test_h_inf_stderr_is_calibrated_over_seeds():
    exact = nf.h_inf_exact(X8, Y8)
    z = np.array([((e.mean - exact) / e.stderr)[0, 3] for e in
                  (nf.h_inf(X8, Y8, 0.0, samples=3200, seed=s, control_variate=False) for s in range(60))])
    # batch-means stderr with 32 batches: z ~ t_31, E z² ≈ 1.07; 60 draws → tolerance 0.5
    assert 0.6 < np.mean(z**2) < 1.6


def test_control_variate_is_exact_at_eps_zero_and_reduces_variance_for_small_eps():
    est = nf.h_inf(X8, Y8, 0.0, samples=2000, seed=0)
    np.testing.assert_allclose(est.mean, nf.h_inf_exact(X8, Y8), atol=1e-12)
    small = nf.h_inf(X8, Y8, 0.01, samples=20_000, seed=0)
    assert small.variance_reduction > 5
    plain = nf.h_inf(X8, Y8, 0.01, samples=20_000, seed=0, control_variate=False)
    ratio = np.sum(plain.stderr**2) / np.sum(small.stderr**2)
    assert ratio == pytest.approx(small.variance_reduction, rel=1e-6)


def test_control_variate_estimate_is_unbiased_against_plain_reference():
    eps = 0.05
    ref = nf.h_inf(X8, Y8, eps, samples=400_000, seed=123, control_variate=False)
    cv = nf.h_inf(X8, Y8, eps, samples=20_000, seed=7)
    z = (cv.mean - ref.mean) / np.sqrt(cv.stderr**2 + ref.stderr**2)
    assert np.max(np.abs(z[np.triu_indices(8)])) < 4.5


def test_h_inf_is_reproducible_per_seed():
    a = nf.h_inf(X8, Y8, 0.02, samples=500, seed=5)
    b = nf.h_inf(X8, Y8, 0.02, samples=500, seed=5)
    np.testing.assert_array_equal(a.mean, b.mean)
    assert not np.array_equal(a.mean, nf.h_inf(X8, Y8, 0.02, samples=500, seed=6).mean)


def test_lambda_0_ci_coverage_over_seeds():
    # ε = 0, plain MC: the truth is λmin of the closed form (jackknife interval, 20 groups)
    lam = np.linalg.eigvalsh(nf.h_inf_exact(X8, Y8))[0]
    hits = 0
    reps = 120
    for s in range(reps):
        est = nf.lambda_0(X8, Y8, 0.0, samples=4000, seed=s, control_variate=False)
        hits += est.ci[0] <= lam <= est.ci[1]
    # 95% nominal; binomial sd with 120 reps ≈ 2%: accept [88%, 99.5%]
    assert 0.88 <= hits / reps <= 0.995


def test_lambda_0_ci_width_shrinks_like_inverse_sqrt_samples():
    w1 = np.diff(nf.lambda_0(X8, Y8, 0.0, samples=4000, seed=0, control_variate=False).ci)[0]
    w2 = np.diff(nf.lambda_0(X8, Y8, 0.0, samples=64_000, seed=0, control_variate=False).ci)[0]
    assert w1 / w2 == pytest.approx(4.0, rel=0.25)


def test_lambda_0_with_control_variate_at_small_eps_covers_reference():
    eps = 0.03
    ref = nf.lambda_0(X8, Y8, eps, samples=400_000, seed=99, control_variate=False)
    est = nf.lambda_0(X8, Y8, eps, samples=20_000, seed=3)
    plain = nf.lambda_0(X8, Y8, eps, samples=20_000, seed=3, control_variate=False)
    assert est.stderr < plain.stderr  # the control variate narrows the interval
    z = (est.value - ref.value) / np.hypot(est.stderr, ref.stderr)
    assert abs(z) < 4
    t = scipy.stats.t.ppf(0.975, est.groups - 1)
    assert est.ci[0] == pytest.approx(est.value - t * est.stderr)
    assert est.ci[1] == pytest.approx(est.value + t * est.stderr)


def test_lambda_0_warns_when_bottom_eigenvalues_are_not_separated():
    # four identical blocks on disjoint coordinates: H∞ is block diagonal, λ1 = … = λ4
    X = np.kron(np.eye(4), np.array([[1.0, 0.2], [0.2, 1.0]]))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        nf.lambda_0(X, np.ones(8), 0.0, samples=2000, seed=2, control_variate=False)
    assert any("gap" in str(w.message) for w in rec)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        nf.lambda_0(X8, Y8, 0.0, samples=2000, control_variate=False)
    assert not any("gap" in str(w.message) for w in rec)


def test_lambda_0_warn_false_leaves_the_gap_to_the_caller():
    X = np.kron(np.eye(4), np.array([[1.0, 0.2], [0.2, 1.0]]))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        est = nf.lambda_0(X, np.ones(8), 0.0, samples=2000, seed=2, control_variate=False, warn=False)
    assert not any("gap" in str(w.message) for w in rec)
    assert est.gap < 4 * est.stderr  # the same case warns by default (test above)
