"""The IBP loss at initialization (ntkflow.paper.initialization) against brute force and exact
closed forms."""

import math

import numpy as np
import pytest

from ntkflow.paper import initialization as I
from ntkflow.paper.model import init_params


def _draw(seed=0, n=7, m=11, d=5):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, d))
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    W, a = init_params(seed, m, d)
    return W, a, X, y


@pytest.mark.parametrize("eps", [0.0, 0.05, 0.3])
def test_pair_fractions_match_a_loop_over_pairs(eps):
    W, a, X, y = _draw()
    help_k = help_n = hurt_k = hurt_n = 0
    for i in range(X.shape[0]):
        for r in range(W.shape[0]):
            l1 = sum(abs(v) for v in W[r])
            dot = sum(W[r, k] * X[i, k] for k in range(X.shape[1]))
            if y[i] * a[r] > 0:
                help_n += 1
                help_k += dot - eps * l1 > 0
            else:
                hurt_n += 1
                hurt_k += dot + eps * l1 > 0
    assert I.helpful_fraction(W, a, X, y, eps) == help_k / help_n
    assert I.hurting_fraction(W, a, X, y, eps) == hurt_k / hurt_n


def test_initial_loss_is_the_loop_robust_loss_over_n_at_each_seed():
    _, _, X, y = _draw(n=6, d=4)
    eps, m = 0.02, 9
    per_seed = []
    for s in (0, 1, 2):
        W, a = init_params(s, m, X.shape[1])
        tot = 0.0
        for i in range(X.shape[0]):
            u = 0.0
            for r in range(m):
                l1 = np.abs(W[r]).sum()
                if y[i] * a[r] > 0:
                    u += max(W[r] @ X[i] - eps * l1, 0.0)
                else:
                    u -= max(W[r] @ X[i] + eps * l1, 0.0)
            tot += math.log1p(math.exp(-u / math.sqrt(m)))
        per_seed.append(tot / X.shape[0])
    iv = I.initial_loss(X, y, eps, m, seeds=(0, 1, 2))
    assert iv.value == pytest.approx(np.mean(per_seed), rel=1e-12) and iv.n == 3 and iv.lo < iv.value < iv.hi


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5, 0.9])
def test_helpful_probability_in_two_dimensions_is_the_half_normal_ratio_law(eps):
    # x = e1, d = 2: P(w1 > ε(|w1| + |w2|)) = ½ · P(|w2|/w1 < (1 − ε)/ε | w1 > 0) = arctan((1 − ε)/ε)/π
    exact = 0.5 if eps == 0 else math.atan((1 - eps) / eps) / math.pi
    iv = I.helpful_probability(np.array([[1.0, 0.0]]), eps, samples=40_000, seed=3)
    assert iv.lo <= exact <= iv.hi
    assert iv.hi - iv.lo < 0.015


def test_helpful_probability_vanishes_once_eps_reaches_one_in_one_dimension():
    # d = 1: w·x > ε|w| with x = 1 needs w(1 − ε) > 0 for w > 0 … and fails for every w when ε ≥ 1
    assert I.helpful_probability(np.array([[1.0]]), 1.0, samples=2_000).value == 0.0


def test_hurting_is_the_complement_of_helping_and_matches_a_large_draw():
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, (5, 30))
    eps = 0.03
    help_ = I.helpful_probability(X, eps, samples=20_000, seed=0)
    hurt = I.hurting_probability(X, eps, samples=20_000, seed=0)
    assert hurt.value == pytest.approx(1 - help_.value) and hurt.lo == pytest.approx(1 - help_.hi)
    W, a = init_params(7, 40_000, 30)  # an independent draw, both signs of a
    y = np.ones(5)
    assert abs(I.helpful_fraction(W, a, X, y, eps) - help_.value) < 0.02
    assert abs(I.hurting_fraction(W, a, X, y, eps) - hurt.value) < 0.02


def test_margin_shift_is_the_first_order_mean_of_minus_the_ibp_margin():
    assert I.l1_norm_mean(784) == pytest.approx(784 * math.sqrt(2 / math.pi))
    rng = np.random.default_rng(2)
    d, m, eps = 50, 200_000, 0.01
    x = rng.normal(size=d)
    x *= 5 / np.linalg.norm(x)  # ε E‖w‖₁ = 0.4 ≪ ‖x‖ = 5
    W = rng.normal(size=(m, d))
    s = np.where(rng.random(m) < 0.5, 1.0, -1.0)
    c = eps * np.abs(W).sum(axis=1)
    u = (s * np.maximum(W @ x - s * c, 0)).sum() / math.sqrt(m)
    assert -u == pytest.approx(I.margin_shift(m, d, eps), rel=0.1)
    with pytest.raises(ValueError, match="m"):
        I.margin_shift(0, d, eps)
