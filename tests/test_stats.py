"""Interval estimates (ntkflow._core.stats) against scipy's own implementations and closed forms."""

import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings, strategies as st

from ntkflow._core import stats as S


@given(st.integers(1, 400).flatmap(lambda K: st.tuples(st.integers(0, K), st.just(K))))
@settings(max_examples=60, deadline=None)
def test_clopper_pearson_equals_scipy_exact_interval(kK):
    k, K = kK
    ref = scipy.stats.binomtest(k, K).proportion_ci(0.95, method="exact")
    assert S.clopper_pearson(k, K) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_zero_of_2400_is_at_most_0_15_percent():
    r = S.pooled_rate([0.0, 0.0, 0.0], 800)
    assert (r.k, r.n, r.lo) == (0, 2400, 0.0) and 0.0015 < r.hi < 0.00155
    assert "0/2400" in r.fmt() and "± 0" not in r.fmt()


def test_pooled_rate_refuses_rates_that_are_not_counts():
    assert S.pooled_rate([0.25, 0.5], [4, 8]).k == 5
    with pytest.raises(ValueError, match="rates"):
        S.pooled_rate([0.3], [4])
    with pytest.raises(ValueError, match="rates"):
        S.pooled_rate([1.5], [4])


def test_mean_interval_is_student_t_with_seeds_minus_one_df():
    v = np.array([0.1, 0.3, 0.2])
    ci = S.mean_interval(v)
    half = scipy.stats.t.ppf(0.975, 2) * v.std(ddof=1) / math.sqrt(3)
    assert (ci.lo, ci.hi) == pytest.approx((0.2 - half, 0.2 + half))
    one = S.mean_interval([0.4])
    assert not one.finite and "no interval" in one.fmt()


def test_difference_is_real_only_when_interval_excludes_zero():
    a, b = [0.50, 0.52, 0.51], [0.10, 0.12, 0.11]
    assert S.paired_difference(a, b).sign() == 1
    assert S.difference(b, a).sign() == -1
    noisy = S.paired_difference([0.1, 0.5, 0.2], [0.2, 0.1, 0.3])
    assert noisy.sign() == 0 and not noisy.excludes(0)
    # Welch agrees with scipy's Welch test: 0 is inside the interval exactly when p > 0.05
    rng = np.random.default_rng(0)
    for _ in range(50):
        x, y = rng.normal(0, 1, 4), rng.normal(rng.uniform(0, 3), 2, 6)
        p = scipy.stats.ttest_ind(x, y, equal_var=False).pvalue
        assert S.difference(x, y).excludes(0) == (p < 0.05)


def test_frequency_decision_reads_the_interval_not_the_point():
    assert S.frequency_decision(0, 3, 0.1) == "unknown"  # [0, 0.71] straddles δ
    assert S.frequency_decision(0, 36, 0.1) == "holds"  # 1 − 0.025^(1/36) = 0.0975
    assert S.frequency_decision(0, 35, 0.1) == "unknown"  # 0.10003 > δ
    assert S.frequency_decision(3, 5, 0.1) == "violated"
    assert S.runs_to_decide(0.1) == 36
    for level in (0.01, 0.05, 0.2):
        K = S.runs_to_decide(level)
        assert S.frequency_decision(0, K, level) == "holds" and S.frequency_decision(0, K - 1, level) == "unknown"
