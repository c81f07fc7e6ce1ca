"""The two links of the derived chain that the paper's proofs get wrong, checked on random draws.

Lemma 7′ (``initial_loss_bound(variant="derived")``, Markov on Σ(log 2 + |u̲_i|)) and Lemma 2′
(``gram_change_bound(variant="derived")``, the sign-flip term A.2 omits). Monte Carlo with fixed
seeds; each tolerance is a 95% interval from ``_core.stats``, and a "w.p. ≥ 1 − δ" bound must be
decided ``holds`` by ``frequency_decision`` (enough draws: ``runs_to_decide``).
"""

import math

import numpy as np
import pytest
import scipy.integrate

import ntkflow as nf
from ntkflow._core.stats import frequency_decision, mean_interval, runs_to_decide
from ntkflow.paper.model import ibp_lower_margin
from ntkflow.theory import formulas as T


def _draw(rng, m, d):
    """w_r ~ N(0, I_d), a_r = ±1 (Sec. 3.1), from a numpy generator (independent of init_params)."""
    return rng.normal(size=(m, d)), rng.choice([-1.0, 1.0], m)


# ----------------------------------------------------------------------------- Lemma 7′
def test_l1_norm_second_moment_closed_form():
    rng = np.random.default_rng(0)
    d = 7
    l1 = np.abs(rng.normal(size=(200_000, d))).sum(axis=1)
    ci = mean_interval(l1**2)
    assert ci.lo <= d * (1 - 2 / math.pi) + 2 * d**2 / math.pi <= ci.hi


@pytest.mark.parametrize("eps", [0.0, 0.01, 0.1])
def test_lemma7_second_moment_bounds_the_ibp_margin(eps):
    rng = np.random.default_rng(1)
    n, d, m = 4, 20, 100
    X = rng.uniform(0.05, 1.0, (n, d))
    y = np.array([1.0, -1.0, 1.0, -1.0])
    u2 = np.array([ibp_lower_margin(*_draw(rng, m, d), X, y, eps) ** 2 for _ in range(1200)])
    M = T.lemma7_second_moment(np.linalg.norm(X, axis=1), d, eps, m)
    for i in range(n):
        ci = mean_interval(u2[:, i])
        assert ci.lo <= M[i]  # E u̲_i(0)² ≤ M_i (95% interval of the estimate)
        if eps == 0:
            assert ci.lo <= M[i] <= ci.hi  # exact at ε = 0: E u_i² = ‖x_i‖²/2


def test_lemma7_derived_holds_w_p_1_minus_delta_and_printed_constant_1_does_not():
    rng = np.random.default_rng(2)
    n, d, m, delta, K = 10, 784, 50, 0.5, 40  # K ≥ runs_to_decide(0.5) = 6
    X = np.full((n, d), 0.9) * rng.uniform(0.9, 1.0, (n, 1))  # in [ε, 1]^d: ‖x_i‖ ≈ 25
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    norms = np.linalg.norm(X, axis=1)
    for eps in (0.0, 0.001):
        derived = T.initial_loss_bound(n, m, d, eps, delta, "derived", x_norms=norms)
        losses = np.array([nf.robust_loss(*_draw(rng, m, d), X, y, eps) for _ in range(K)])
        assert frequency_decision(int(np.sum(losses > derived)), K, delta) == "holds"
        if eps == 0:  # with constant 1 the printed L(0) ≤ n/δ fails far more often than δ (A.6's slips)
            printed = T.initial_loss_bound(n, m, d, eps, delta)
            assert frequency_decision(int(np.sum(losses > printed)), K, delta) == "violated"


def test_lemma7_linear_form_dominates_the_exact_one():
    x = np.array([0.5, 3.0, 25.0])
    for m in (1, 10, 5000):
        for eps in (0.0, 0.01):
            a, b = T.lemma7_linear(3, 784, eps, 0.1, float(x.max()))
            assert T.initial_loss_bound(3, m, 784, eps, 0.1, "derived", x_norms=x) <= a + b * math.sqrt(m) * (1 + 1e-12)
    with pytest.raises(ValueError, match="x_norms"):
        T.initial_loss_bound(3, 10, 784, 0.0, 0.1, "derived")


# ----------------------------------------------------------------------------- Lemma 2′
def _gram_ref(W_ind, W_sign, a, X, y, eps):
    """H_ij = (1/m) Σ_r y_i y_j α_ri α_rj ⟨x_i − σ_ri ε s_r, x_j − σ_rj ε s_r⟩ (Eq. 6) in numpy, with the
    indicators α taken at ``W_ind`` and the signs s_r at ``W_sign``."""
    m = W_ind.shape[0]
    sig = y[None, :] * a[:, None]  # (m, n): σ_ri = y_i a_r
    pre = W_ind @ X.T - sig * eps * np.abs(W_ind).sum(1, keepdims=True)
    alpha = (pre > 0).astype(float)
    V = X[None, :, :] - sig[:, :, None] * eps * np.sign(W_sign)[:, None, :]  # (m, n, d)
    G = alpha[:, :, None] * V * y[None, :, None]
    return np.einsum("rid,rjd->ij", G, G) / m


def _flip_small_coordinates(W0, R, rng):
    """Each w_r moved by ≤ R in ℓ2, spending the budget on sending its smallest coordinates across 0."""
    W = W0.copy()
    for r in range(W.shape[0]):
        budget = R * rng.uniform(0.5, 1.0)
        for k in np.argsort(np.abs(W0[r])):
            cost = 1.001 * abs(W0[r, k])  # to −0.001·w_rk: the sign changes
            if cost**2 > budget**2:
                break
            W[r, k] = -0.001 * W0[r, k]
            budget = math.sqrt(budget**2 - cost**2)
    return W


def test_reference_gram_is_the_packages():
    rng = np.random.default_rng(3)
    X, y = rng.uniform(0.05, 1.0, (5, 6)), np.array([1.0, -1, 1, -1, 1])
    W, a = _draw(rng, 40, 6)
    np.testing.assert_allclose(_gram_ref(W, W, a, X, y, 0.05), nf.gram_matrix(W, a, X, y, 0.05), rtol=1e-10, atol=1e-12)


def test_sign_flips_change_h_with_every_indicator_fixed():
    """The term A.2 omits is real: one coordinate crosses 0, no indicator changes, H changes by the flip formula."""
    rng = np.random.default_rng(4)
    X, y = rng.uniform(0.05, 1.0, (4, 6)), np.array([1.0, -1, 1, -1])
    W0, a = _draw(rng, 30, 6)
    r, k = np.unravel_index(np.argmin(np.abs(W0)), W0.shape)
    W = W0.copy()
    W[r, k] = -W0[r, k]  # moves by 2|w_rk| (tiny), sign flips
    eps = 0.1
    A0, A1 = nf.indicators(W0, a, X, y, eps), nf.indicators(W, a, X, y, eps)
    assert all(np.array_equal(p, q) for p, q in zip(A0, A1))
    dH = nf.gram_matrix(W, a, X, y, eps) - nf.gram_matrix(W0, a, X, y, eps)
    np.testing.assert_allclose(dH, _gram_ref(W0, W, a, X, y, eps) - _gram_ref(W0, W0, a, X, y, eps), atol=1e-12)
    assert np.abs(dH).max() > 1e-3  # the flip term: 4ε|x_ik|/m-sized, not zero
    assert np.abs(dH).max() <= 4 * eps * X.max() / 30 + 1e-12  # one coordinate of one neuron: N_r = 1


@pytest.mark.parametrize("R", [0.05, 0.3])
def test_lemma2_flip_term_holds_w_p_1_minus_delta_on_perturbed_weights(R):
    rng = np.random.default_rng(5)
    n, d, m, eps, delta = 6, 10, 60, 0.1, 0.1
    X, y = rng.uniform(0.05, 1.0, (n, d)), np.array([1.0, -1, 1, -1, 1, -1])
    term = T.lemma2_flip_term(eps, d, n, R, delta, x_inf=float(X.max()))
    K, fails, per_neuron = runs_to_decide(delta) + 4, 0, []
    for _ in range(K):
        W0, a = _draw(rng, m, d)
        W = _flip_small_coordinates(W0, R, rng)
        assert np.all(np.linalg.norm(W - W0, axis=1) <= R)
        N = (np.sign(W) != np.sign(W0)).sum(1)
        assert np.all(N <= (np.abs(W0) <= R).sum(1))  # a coordinate crosses 0 only if |w_rk(0)| ≤ R
        flip = _gram_ref(W0, W, a, X, y, eps) - _gram_ref(W0, W0, a, X, y, eps)  # indicators frozen at 0
        assert np.abs(flip).max() <= 4 * eps * X.max() * N.mean() + 1e-12  # per entry, every draw
        fails += np.linalg.norm(flip, 2) > term
        per_neuron.append((np.abs(W0) <= R).sum(1).mean())
    assert frequency_decision(int(fails), K, delta) == "holds"
    ci = mean_interval(per_neuron)  # E #{k: |w_rk(0)| ≤ R} = d erf(R/√2)
    assert ci.lo <= d * math.erf(R / math.sqrt(2)) <= ci.hi


def test_lemma2_derived_factor_and_radius():
    eps, d, n, xi, delta = 0.04, 784, 50, 6.0, 0.1
    f = T.lemma2_flip_factor(eps, d, xi)
    assert f == pytest.approx(1 + 2 * eps * xi / (3 * (1 + eps) ** 3 * math.sqrt(d))) and 1 < f <= 1 + 2 * eps / 3
    R = T.radius(delta, 2.0, d, n, xi)
    assert T.radius(delta, 2.0, d, n, xi, "derived", eps=eps) == pytest.approx(R / f)
    # Lemma 2′ at R/f is within the printed Eq. 7 at R: Lemma 5's argument goes through at R′ (equal as R → 0)
    for r in (R, 1e-3, 0.5, 3.0):
        assert T.gram_change_bound(eps, d, n, r / f, xi, delta, "derived") <= T.gram_change_bound(
            eps, d, n, r, xi, delta) * (1 + 1e-12)
    assert T.gram_change_bound(eps, d, n, R, xi, delta, "derived") > T.gram_change_bound(eps, d, n, R, xi, delta)
    assert T.gram_change_bound(0.0, d, n, R, xi, delta, "derived") == T.gram_change_bound(0.0, d, n, R, xi, delta)


# ----------------------------------------------------------------------------- Lemma 6's counterexample
def test_counterexample_margins_are_all_positive_while_the_loss_is_above_kappa():
    """Training error 0 along the whole flow: what fails at Eq. 10's time is the test L̄ < κ."""
    ce = T.lemma6_counterexample(n=1000, lambda0=1.0)
    h = ce.lambda0 / 2
    ts = np.linspace(0, 1.5 * ce.t_needed, 301)[1:]
    u = T.constant_gram_margin(ts, h)
    assert np.all(u > 0)
    # independent check: du/dt = −h l'(u) = h/(1 + eᵘ) from u(0) = 0 by an ODE solver
    sol = scipy.integrate.solve_ivp(lambda t, v: h / (1 + np.exp(v)), (0, ts[-1]), [0.0], t_eval=ts,
                                    rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sol.y[0], u, rtol=1e-6)
    assert ce.loss_at_t_needed > T.KAPPA  # the sufficient test fails ...
    assert T.constant_gram_margin(ce.t_needed, h) > 0  # ... while every u_i > 0 (zero training error)
    np.testing.assert_allclose(T.constant_gram_loss(ts, 1000, h), 1000 * np.logaddexp(0, -u))
