"""Every bound against values computed by hand from the printed formulas."""

import math

import numpy as np
import pytest

from ntkflow.theory import formulas as T

SQ2PI = math.sqrt(2 * math.pi)


def test_radius_paper_and_thesis_constants():
    # δ=0.1, λ0=2, d=4, n=3, ξ=1.5: c = √(2π)·1.5/384, R = c·0.1·2/(4^1.5·9)
    assert T.radius(0.1, 2.0, 4, 3, 1.5) == pytest.approx(2.5066282746 * 1.5 / 384 * 0.2 / 72)
    assert T.radius(0.1, 2.0, 4, 3, 1.5, variant="thesis") == pytest.approx(math.sqrt(2 * math.pi * 1.5) / 384 * 0.2 / 72)
    with pytest.raises(ValueError):
        T.radius(0.1, 2.0, 4, 3, 1.5, variant="x")


def test_flip_probability_and_gram_change():
    assert T.flip_probability_bound(0.5, 9, 0.01, 2.0) == pytest.approx(12 * 1.5 * 3 * 0.01 / (2.5066282746 * 2))
    # 12 (1+ε)(1+2ε+ε²) d^1.5 n² R / (√(2π) ξ δ) at ε=1, d=4, n=2, R=0.1, ξ=1, δ=0.5
    assert T.gram_change_bound(1.0, 4, 2, 0.1, 1.0, 0.5) == pytest.approx(12 * 2 * 4 * 8 * 4 * 0.1 / (2.5066282746 * 0.5))


def test_lemma1_eps_condition_printed_and_derived():
    d, R, xi = 4, 0.01, 2.0
    printed = math.sqrt(8) * 0.01 / math.log(math.sqrt(2 * math.pi * 4 / 0.01) * 2.0)
    assert T.lemma1_eps_condition(d, R, xi) == pytest.approx(printed)
    derived = 0.01 / math.sqrt(8 * math.log(math.sqrt(8 * math.pi) * 2.0 / 0.01))
    assert T.lemma1_eps_condition(d, R, xi, "derived") == pytest.approx(derived)
    assert T.lemma1_eps_condition(d, R, xi, "derived") < T.lemma1_eps_condition(d, R, xi, "printed")
    assert T.lemma1_eps_condition(1, 100.0, 0.1, "derived") == math.inf  # log argument ≤ 1: no condition


def test_derived_lemma1_condition_satisfies_eq22_with_union_bound_tail():
    # with ε at the derived limit, (1+ε)√dR/(√(2π)ξ) ≥ d·exp(−(1+ε)²R²/(2dε²)) (Eq. 22 with A.1's tail)
    for d, R, xi in [(784, 1e-3, 5.0), (10, 0.05, 1.0), (100, 1e-6, 3.0)]:
        e = T.lemma1_eps_condition(d, R, xi, "derived")
        assert (1 + e) * math.sqrt(d) * R / (SQ2PI * xi) >= d * math.exp(-((1 + e) ** 2) * R**2 / (2 * d * e**2))


def test_lemma4_width_and_initial_loss():
    assert T.lemma4_width(10, 0.5, 0.1) == pytest.approx(400 * math.log(100))
    assert T.lemma4_width(10, 0.5, 0.1, B=3.0, variant="derived") == pytest.approx(9 * 400 * math.log(100))
    with pytest.raises(ValueError, match="B"):
        T.lemma4_width(10, 0.5, 0.1, variant="derived")
    assert T.initial_loss_bound(10, 100, 5, 0.1, 0.5) == pytest.approx(10 * 10 * 5 * 0.1 / 0.5 + 20)


def test_loss_bound_variants():
    assert T.loss_bound(2.0, 1.5, 0.8, "main") == pytest.approx(math.exp(3.0) * 1.5 * math.exp(-0.8))
    assert T.loss_bound(2.0, 1.5, 0.8, "appendix") == pytest.approx(math.exp(1.5) * 1.5 * math.exp(-0.4))
    assert T.loss_bound(0.0, 5000.0, 1.0) == math.inf  # overflows; the log form does not
    assert T.log_loss_bound(0.0, 5000.0, 1.0) == pytest.approx(10000 + math.log(5000))
    np.testing.assert_allclose(T.loss_bound(np.array([0.0, 1.0]), 1.0, 2.0, "appendix"),
                               [math.e, math.e * math.exp(-0.5)])


def test_weight_change_bound_variants():
    assert T.weight_change_bound(2.0, 10, 400) == pytest.approx(1.0)
    assert T.weight_change_bound(2.0, 10, 400, variant="derived", x_norm_max=3.0, eps=0.5, d=16) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        T.weight_change_bound(1.0, 1, 1, variant="derived")


def test_time_limit_and_time_needed():
    c = SQ2PI * 2.0 / 384
    assert T.time_limit(0.1, 3.0, 100, 4, 2, 2.0) == pytest.approx(c * 0.1 * 3 * 10 / (8 * 8))
    # Eq. 9′ divides by X = max_i(‖x_i‖₂ + ε√d) and by Lemma 2′'s f = 1 + 2εξ/(3(1+ε)³√d) (1 at ε = 0)
    assert T.time_limit(0.1, 3.0, 100, 4, 2, 2.0, x_scale=2.5, variant="derived", eps=0.0) == pytest.approx(
        c * 0.1 * 3 * 10 / (8 * 8) / 2.5)
    f = 1 + 2 * 0.1 * 2.0 / (3 * 1.1**3 * 2)
    assert T.time_limit(0.1, 3.0, 100, 4, 2, 2.0, x_scale=2.5, variant="derived", eps=0.1) == pytest.approx(
        c * 0.1 * 3 * 10 / (8 * 8) / 2.5 / f)
    assert T.time_needed(2.0, 0.5) == pytest.approx(8 * (math.log(2.0 / math.log(2)) + 2.0))
    # Eq. 10′: 2(L̄(0) + n/κ)/((1 − 1/e)²λ0) ≈ 5.005/λ0 · (L̄(0) + n/κ)
    assert T.time_needed(2.0, 0.5, n=10, variant="derived") == pytest.approx(
        2 * (2.0 + 10 / math.log(2)) / ((1 - math.exp(-1)) ** 2 * 0.5))
    assert 2 / T.LEMMA6_CONSTANT == pytest.approx(5.005, abs=5e-4)
    # Eq. 10 is exactly where the appendix envelope reaches κ
    t = T.time_needed(3.0, 0.7)
    assert T.loss_bound(t, 3.0, 0.7, "appendix") == pytest.approx(T.KAPPA)
    with pytest.raises(ValueError, match="x_scale"):
        T.time_limit(0.1, 3.0, 100, 4, 2, 2.0, variant="derived", eps=0.0)
    with pytest.raises(ValueError, match="^n: "):
        T.time_needed(1.0, 1.0, variant="derived")
    with pytest.raises(ValueError, match="variant"):
        T.time_needed(1.0, 1.0, variant="main")


def test_epsilon_bound_printed_and_derived():
    n, d, delta, lam, xi, X, eps = 3, 2, 0.5, 4.0, 1.0, 1.7, 0.01
    R = SQ2PI * xi / 384 * delta * lam / (d**1.5 * n**2)
    printed = min(delta**2 * lam**2 / (d**2.5 * n**3), math.sqrt(2 * d) * R / math.log(math.sqrt(2 * math.pi * d / R) * xi))
    # Lemma 2′'s factor f = 1 + 2εξ/(3(1+ε)³√d) shrinks R and c; c′ = (1 − 1/e)² c / (2f) (Eq. 12′), ÷X (Eq. 9′),
    # and Lemma 7′'s slope √(2/π) n d ε/δ in place of n d ε/δ
    f = 1 + 2 * eps * xi / (3 * (1 + eps) ** 3 * math.sqrt(d))
    cp = (1 - math.exp(-1)) ** 2 * SQ2PI * xi / 384 / (2 * f)
    Rp = R / f
    derived = min(cp * delta**2 * lam**2 / (math.sqrt(2 / math.pi) * d**2.5 * n**4 * X),
                  Rp / math.sqrt(2 * d * math.log(math.sqrt(2 * math.pi * d) * xi / Rp)))
    assert T.epsilon_bound(n, d, delta, lam, xi, "printed") == pytest.approx(printed)
    assert T.epsilon_bound(n, d, delta, lam, xi, "derived", x_scale=X, eps=eps) == pytest.approx(derived)
    assert T.radius(delta, lam, d, n, xi, "derived", eps=eps) == pytest.approx(Rp)
    with pytest.raises(ValueError, match="x_scale"):
        T.epsilon_bound(n, d, delta, lam, xi, "derived", eps=eps)
    with pytest.raises(ValueError, match="eps"):
        T.epsilon_bound(n, d, delta, lam, xi, "derived", x_scale=X)


def test_width_bound_printed_derived_and_eps_zero_corollary():
    n, d, delta, lam, xi, X = 3, 2, 0.5, 4.0, 1.0, 1.3
    assert T.width_bound(n, d, delta, lam, 0.0, variant="printed") == pytest.approx(
        (d**1.5 * n**4 * delta * lam / (delta**2 * lam**2)) ** 2)
    eps = 1e-9
    f = 1 + 2 * eps * xi / (3 * (1 + eps) ** 3 * math.sqrt(d))
    cp = (1 - math.exp(-1)) ** 2 * SQ2PI * xi / 384 / (2 * f)
    x = X - eps * math.sqrt(d)  # the largest ‖x_i‖
    s1 = math.sqrt(d * (1 - 2 / math.pi) + 2 * d**2 / math.pi)
    a = n * (math.log(2) + math.sqrt(x**2 / 4 + 0.5 * (x / math.sqrt(2) + eps * s1) ** 2)) / delta  # Lemma 7′ at m = 1
    den = cp * delta * lam**2 / (d**1.5 * n**3 * X) - math.sqrt(2 / math.pi) * n * d * eps / delta
    eq14 = ((a + n / math.log(2)) / den) ** 2
    lemma4 = X**4 * n**2 / lam**2 * math.log(n / delta)
    assert eq14 > lemma4
    assert T.width_bound(n, d, delta, lam, eps, xi, x_scale=X) == pytest.approx(eq14)
    # at ε = 0 Eq. 14′ scales as n⁸d³/(λ0⁴δ⁴) (corollary in Sec. 4.3), up to X²(log 2 + X/√2 + δ/κ)²/c′²
    w = T.width_bound(n, d, delta, lam, 0.0, xi, x_scale=X)
    cp0 = (1 - math.exp(-1)) ** 2 * SQ2PI * xi / 384 / 2
    assert w == pytest.approx(X**2 * (math.log(2) + X / math.sqrt(2) + delta / math.log(2)) ** 2 * n**8 * d**3
                              / (lam**4 * delta**4) / cp0**2)
    # where Lemma 4′ needs more (large X, large λ0), the derived width is Lemma 4′'s
    assert T.width_bound(2, 1, 0.5, 1e5, 0.0, 1.0, x_scale=50.0) == pytest.approx(
        T.lemma4_width(2, 1e5, 0.5, B=2500.0, variant="derived"))
    assert T.width_bound(n, d, delta, lam, 0.5, xi, x_scale=X) == math.inf  # ε too large: no width suffices
    assert T.width_bound(n, d, delta, lam, 0.5, variant="printed") == math.inf
    with pytest.raises(ValueError, match="x_scale"):
        T.width_bound(n, d, delta, lam, 0.0, xi)
