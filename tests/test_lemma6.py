"""Lemma 6 refuted and replaced; the trivial Gram bound; Lemma 4's width and the scale of x."""

import math

import numpy as np
import pytest
import scipy.integrate
from scipy.special import expit

import ntkflow as nf
from ntkflow.theory import formulas as T

C = (1 - math.exp(-1)) ** 2


def _loss_and_grad_sq(u):
    return float(np.sum(np.logaddexp(0.0, -u))), float(np.sum(expit(-u) ** 2))


def test_counterexample_matches_the_issue_and_an_ode_solver():
    ce = T.lemma6_counterexample(n=1000, lambda0=1.0)
    assert ce.loss0 == pytest.approx(1000 * math.log(2))
    assert ce.t_needed == pytest.approx(4 * (math.log(1000) + 1000 * math.log(2)))  # Eq. 10 ≈ 2800/λ0
    assert ce.t_needed == pytest.approx(2800.2, abs=0.05)
    assert ce.loss_at_t_needed == pytest.approx(0.717, abs=5e-4)
    assert ce.loss_at_t_needed > T.KAPPA  # Lemma 6 + Eq. 10 promise < κ
    # the appendix envelope is exceeded (it equals κ at Eq. 10's time), shortly before t_needed
    assert math.log(ce.loss_at_t_needed) > T.log_loss_bound(ce.t_needed, ce.loss0, 1.0, "appendix")
    assert 0 < ce.t_violated < ce.t_needed
    # the valid replacement's time gets below κ
    assert ce.loss_at_t_needed_derived < T.KAPPA
    # an independent solve of du/dt = −H l'(u), H = (λ0/2)I, u(0) = 0, all n = 1000 coordinates
    sol = scipy.integrate.solve_ivp(lambda t, u: 0.5 * expit(-u), (0, ce.t_needed), np.zeros(1000),
                                    rtol=1e-10, atol=1e-12)
    assert _loss_and_grad_sq(sol.y[:, -1])[0] == pytest.approx(ce.loss_at_t_needed, rel=1e-6)
    # the same at another λ0: times scale as 1/λ0, the loss there does not change
    ce3 = T.lemma6_counterexample(n=1000, lambda0=3.0)
    assert ce3.t_needed == pytest.approx(ce.t_needed / 3)
    assert ce3.loss_at_t_needed == pytest.approx(ce.loss_at_t_needed, rel=1e-9)
    assert "0.717" in str(ce)
    # Eq. 10's conclusion fails from n = 103 on; the envelope itself fails for every n, just after Eq. 10's time
    assert T.lemma6_counterexample(103).loss_at_t_needed > T.KAPPA > T.lemma6_counterexample(102).loss_at_t_needed
    for n in (2, 50):
        small = T.lemma6_counterexample(n)
        assert small.t_needed < small.t_violated < 1.5 * small.t_needed
        late = 1.01 * small.t_violated
        assert math.log(T.constant_gram_loss(late, n, 0.5)) > T.log_loss_bound(late, small.loss0, 1.0, "appendix")


def test_constant_gram_flow_with_h_equal_lambda0_decays_like_one_over_t():
    n, lam = 50, 2.0
    t = np.array([1e4, 1e6, 1e8])
    L = T.constant_gram_loss(t, n, lam)
    ratio = L * lam * t / n  # → 1, with a log t / t correction
    assert np.all(np.abs(ratio - 1) < 20 * np.log(lam * t) / (lam * t))
    # so every exponential envelope A e^{−rt} (here A = e^{10n}) is eventually below it
    for r, t_late in [(1e-3, 1e6), (1e-5, 1e8)]:
        assert np.log(T.constant_gram_loss(t_late, n, lam)) > 10 * n - r * t_late


@pytest.mark.parametrize("scale", [0.01, 1.0, 30.0])
def test_gradient_floor_on_random_margins(scale):
    rng = np.random.default_rng(0)
    for n in (1, 3, 10, 400):
        for _ in range(200):
            u = rng.normal(rng.normal(0, 3), scale, n)
            L, g = _loss_and_grad_sq(u)
            assert g >= T.lemma6_gradient_floor(L, n) * (1 - 1e-12)


def test_gradient_floor_constant_is_attained():
    # one sample at l(u) = 1: Σ l'² = (1 − 1/e)² exactly, so the constant cannot be raised
    u = -math.log(math.e - 1)
    L, g = _loss_and_grad_sq(np.array([u]))
    assert L == pytest.approx(1.0)
    assert g == pytest.approx(C) and T.lemma6_gradient_floor(L, 1) == pytest.approx(C)
    # and A.5's step (ii) needs Σ l'² ≥ Σ|l'|, false here
    assert g < expit(-u)


def test_derived_envelope_solves_its_ode_and_reaches_kappa_by_the_derived_time():
    for loss0, n in [(50.0, 100), (5.0, 100), (693.1, 1000)]:
        lam = 0.8
        k = C * lam / 2
        t_need = T.time_needed(loss0, lam, n=n, variant="derived")
        t = np.linspace(0.01, t_need, 2001)
        phi = T.loss_bound(t, loss0, lam, "derived", n=n)
        assert T.log_loss_bound(0.0, loss0, lam, "derived", n=n) == pytest.approx(math.log(loss0))
        h = 1e-6 * t_need
        env = lambda s: T.loss_bound(s, loss0, lam, "derived", n=n)  # noqa: E731
        dphi = (env(t + h) - env(t - h)) / (2 * h)
        np.testing.assert_allclose(dphi, -k * np.minimum(1, phi**2 / n), rtol=1e-4, atol=1e-9)
        assert phi[-1] < T.KAPPA
        assert np.all(np.diff(phi) < 0)


@pytest.mark.parametrize("eps", [0.0, 0.05])
def test_derived_lemma6_along_real_trajectories(eps):
    """Σl'² ≥ (1−1/e)² min(1, L̄²/n) at every saved W, and L̄(t) under the derived envelope
    with λ0/2 := the smallest λmin(H) seen on the run."""
    rng = np.random.default_rng(1)
    X = rng.uniform(0.1, 1.0, (8, 6))
    y = np.array([1.0, -1] * 4)
    W0, a = nf.init_params(3, 80, 6)
    tr = nf.gradient_flow(W0, a, X, y, eps, 60.0, save_at=np.linspace(0, 60, 31), keep_W=True)
    n = len(y)
    for W in tr.W_saved:
        u = nf.ibp_lower_margin(W, a, X, y, eps)
        L, g = _loss_and_grad_sq(u)
        assert g >= T.lemma6_gradient_floor(L, n)
    assert tr.loss[0] > math.sqrt(n) > tr.loss[-1]  # both phases of the envelope are exercised
    lam = 2 * 0.9 * float(np.min(tr.lambda_min))
    slack = n * T.input_scale(X, eps) * tr.error_estimate
    assert np.all(tr.loss - slack <= T.loss_bound(tr.ts, tr.loss[0], lam, "derived", n=n))


def test_trivial_gram_bound_holds_for_any_pair_of_weights():
    rng = np.random.default_rng(2)
    X = rng.uniform(0.05, 1.0, (10, 7))
    y = np.where(rng.random(10) < 0.5, 1.0, -1.0)
    for eps in (0.0, 0.05):
        bound = T.gram_change_trivial_bound(X, eps)
        assert bound == pytest.approx(np.sum((np.linalg.norm(X, axis=1) + eps * math.sqrt(7)) ** 2))
        for s in range(5):
            W, a = nf.init_params(s, 60, 7)
            W2 = W + rng.normal(0, 3.0, W.shape)
            H, H2 = nf.gram_matrix(W, a, X, y, eps), nf.gram_matrix(W2, a, X, y, eps)
            assert np.linalg.eigvalsh(H)[-1] <= bound and np.abs(np.linalg.eigvalsh(H2 - H)).max() <= bound


def test_printed_lemma4_width_depends_on_the_scale_of_x_and_derived_does_not():
    rng = np.random.default_rng(3)
    X = rng.uniform(0.0, 1.0, (6, 5))
    y = np.array([1.0, -1, 1, -1, 1, -1])
    widths = {}
    for s in (1.0, 10.0):
        lam = np.linalg.eigvalsh(nf.h_inf_exact(s * X, y))[0]
        B = T.input_scale(s * X, 0.0) ** 2
        widths[s] = (T.lemma4_width(6, lam, 0.1), T.lemma4_width(6, lam, 0.1, B=B, variant="derived"))
    assert widths[10.0][0] == pytest.approx(widths[1.0][0] / 1e4)  # λ0 scales as s², the printed width as s⁻⁴
    assert widths[10.0][1] == pytest.approx(widths[1.0][1])


def test_counterexample_bad_input():
    for kw, name in [({"n": 0}, "n"), ({"n": 2.5}, "n"), ({"lambda0": 0.0}, "lambda0"),
                     ({"lambda0": float("nan")}, "lambda0")]:
        with pytest.raises(ValueError, match=f"^{name}: "):
            T.lemma6_counterexample(**kw)
