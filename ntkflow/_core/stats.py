"""Interval estimates for every published number: counts and means over seeds.

The rules (DEVELOPERS.md, Standards):

* a count k of K (errors on a data set, failures over initializations) gets the exact
  Clopper–Pearson interval (``clopper_pearson``, ``Rate``);
* a mean over S seeds gets a Student t interval with df = S − 1 (``mean_interval``);
* a difference is real only when its 95% interval excludes 0 (``Interval.excludes``);
* a high-probability statement "P(failure) ≤ δ" is decided from the interval of the failure
  frequency: ``holds`` when its upper end is ≤ δ, ``violated`` when its lower end is > δ,
  ``unknown`` otherwise (``frequency_decision``). With no failure the upper end is
  1 − (α/2)^{1/K}, so a decision needs K ≥ log(α/2)/log(1 − δ) runs (``runs_to_decide``:
  36 at δ = 0.1, 95%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.stats
from .errors import NtkflowError

__all__ = ["Interval", "Rate", "clopper_pearson", "rate", "pooled_rate", "mean_interval", "paired_difference",
           "difference", "interval_difference", "hull", "slope_interval", "chance_interval", "frequency_decision", "runs_to_decide",
           "CONFIDENCE"]

CONFIDENCE = 0.95


def _confidence(confidence) -> float:
    c = float(confidence)
    if not 0 < c < 1:
        raise NtkflowError(f"confidence: must be in (0, 1), got {confidence!r}")
    return c


def clopper_pearson(k: int, K: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The exact (Clopper–Pearson) interval for a binomial frequency k/K: (0, 1) for K = 0."""
    k, K = int(k), int(K)
    if K < 0 or not 0 <= k <= max(K, 0):
        raise NtkflowError(f"k, K: need 0 <= k <= K, got k = {k}, K = {K}")
    if K == 0:
        return 0.0, 1.0
    a = (1 - _confidence(confidence)) / 2
    lo = 0.0 if k == 0 else float(scipy.stats.beta.ppf(a, k, K - k + 1))
    hi = 1.0 if k == K else float(scipy.stats.beta.ppf(1 - a, k + 1, K - k))
    return lo, hi


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95% interval. ``n`` is what it was estimated from (seeds, samples);
    ``lo``/``hi`` are NaN when it cannot carry an interval (one seed)."""

    value: float
    lo: float
    hi: float
    n: int

    @property
    def finite(self) -> bool:
        return bool(np.isfinite(self.lo) and np.isfinite(self.hi))

    def excludes(self, x: float = 0.0) -> bool:
        """True when the interval lies strictly on one side of ``x`` (a real difference for x = 0)."""
        return self.finite and (self.lo > x or self.hi < x)

    def sign(self, x: float = 0.0) -> int:
        """+1 / −1 when the interval lies above / below ``x``, 0 when it contains it or has none."""
        if not self.excludes(x):
            return 0
        return 1 if self.lo > x else -1

    def fmt(self, digits: int = 3, percent: bool = False) -> str:
        """"v [lo, hi]" (never "± 0"): a point with no interval says why."""
        if not np.isfinite(self.value):
            return "—"
        s, f = (100.0, "%") if percent else (1.0, "")
        v = f"{self.value * s:.{digits}g}{f}" if percent else f"{self.value:.{digits}f}"
        if not self.finite:
            return f"{v} (n = {self.n}, no interval)"
        if percent:
            return f"{v} [{self.lo * s:.{digits}g}, {self.hi * s:.{digits}g}]{f}"
        return f"{v} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


@dataclass(frozen=True)
class Rate(Interval):
    """A frequency k/K with its Clopper–Pearson interval."""

    k: int = 0

    def fmt(self, digits: int = 3, percent: bool = True) -> str:
        return f"{self.k}/{self.n} = " + Interval.fmt(self, digits, percent)


def rate(k: int, K: int, confidence: float = CONFIDENCE) -> Rate:
    """k/K with its Clopper–Pearson interval."""
    lo, hi = clopper_pearson(k, K, confidence)
    return Rate(value=k / K if K else math.nan, lo=lo, hi=hi, n=int(K), k=int(k))


def pooled_rate(rates, sizes, confidence: float = CONFIDENCE) -> Rate:
    """Error rates of several runs (each a fraction of ``sizes[i]`` samples) pooled into one count.

    Each rate must be a multiple of 1/size (it is a count); the pooled count Σ k_i of Σ n_i
    gets one Clopper–Pearson interval. This is the interval of the cell's error rate when the
    runs' samples are independent (e.g. each seed's training set, or one seed per cell).
    """
    r, s = np.asarray(rates, float), np.asarray(sizes, float) * np.ones(np.shape(rates))
    if r.size == 0:
        return Rate(value=math.nan, lo=math.nan, hi=math.nan, n=0, k=0)
    if not np.all(np.isfinite(r)) or np.any((r < 0) | (r > 1)):
        raise NtkflowError(f"rates: must be finite fractions in [0, 1], got {r.tolist()}")
    k = r * s
    ki = np.rint(k)
    if np.any(np.abs(k - ki) > 1e-6 * np.maximum(s, 1)):
        raise NtkflowError("rates: not counts of the given sizes (rate × size is not an integer)")
    return rate(int(ki.sum()), int(s.sum()), confidence)


def mean_interval(values, confidence: float = CONFIDENCE) -> Interval:
    """Mean over seeds with its Student t interval (df = seeds − 1); no interval for one seed.

    Seeds that agree exactly (spread 0) get the degenerate interval [v, v]; ``fmt`` then
    prints it as such (a caller publishing a count should use ``pooled_rate`` instead).
    """
    v = np.asarray(values, float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(v.mean())
    if v.size < 2:
        return Interval(mean, math.nan, math.nan, int(v.size))
    half = float(scipy.stats.t.ppf(0.5 + _confidence(confidence) / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return Interval(mean, mean - half, mean + half, int(v.size))


def paired_difference(a, b, confidence: float = CONFIDENCE) -> Interval:
    """Mean of a_s − b_s over seeds s run in pairs (same seed, same initialization), t interval
    with df = pairs − 1. NaN pairs are dropped."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if a.shape != b.shape:
        raise NtkflowError(f"a, b: paired values need the same length, got {a.size} and {b.size}")
    return mean_interval(a - b, confidence)


def difference(a, b, confidence: float = CONFIDENCE) -> Interval:
    """Mean(a) − mean(b) for independent samples: Welch's t interval (Welch–Satterthwaite df)."""
    a, b = (np.asarray(x, float).ravel() for x in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    n = int(min(a.size, b.size))
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    d = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return Interval(d, math.nan, math.nan, n)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(d, d, d, n)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = float(scipy.stats.t.ppf(0.5 + _confidence(confidence) / 2, df) * se)
    return Interval(d, d - half, d + half, n)


def interval_difference(a: Interval, b: Interval) -> Interval:
    """a − b from two independent estimates with their own intervals (MOVER, Newcombe 1998):
    lo = d − √((a − a_lo)² + (b_hi − b)²), hi = d + √((a_hi − a)² + (b − b_lo)²).

    With Clopper–Pearson intervals on both sides this is the interval of a difference of two
    error rates (it stays asymmetric near 0 and 1, where a normal interval would not); no
    interval when either side has none."""
    d = a.value - b.value
    n = int(min(a.n, b.n))
    if not (a.finite and b.finite) or not np.isfinite(d):
        return Interval(d, math.nan, math.nan, n)
    lo = d - math.hypot(a.value - a.lo, b.hi - b.value)
    hi = d + math.hypot(a.hi - a.value, b.value - b.lo)
    return Interval(d, lo, hi, n)


def hull(first: Interval, *others: Interval) -> Interval:
    """The smallest interval holding every finite interval given, at ``first``'s value: the
    conservative union of two error sources estimated separately (e.g. binomial and over seeds)."""
    ivs = [i for i in (first, *others) if i.finite]
    if not ivs:
        return first
    return Interval(first.value, min(i.lo for i in ivs), max(i.hi for i in ivs), first.n)


def slope_interval(x, y, confidence: float = CONFIDENCE) -> Interval:
    """The least-squares slope of y on x with its t interval (df = points − 2); ``n`` = points.
    No interval with fewer than three points (df = 0)."""
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    if x.shape != y.shape:
        raise NtkflowError(f"x, y: need the same length, got {x.size} and {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 or np.ptp(x) == 0:
        return Interval(math.nan, math.nan, math.nan, int(x.size))
    fit = scipy.stats.linregress(x, y)
    if x.size < 3:
        return Interval(float(fit.slope), math.nan, math.nan, int(x.size))
    half = float(scipy.stats.t.ppf(0.5 + _confidence(confidence) / 2, x.size - 2) * fit.stderr)
    return Interval(float(fit.slope), fit.slope - half, fit.slope + half, int(x.size))


def chance_interval(chance: float, K: int, confidence: float = CONFIDENCE) -> Interval:
    """The errors a random guess (error rate ``chance`` per sample) can show on K samples:
    [the binomial α/2 quantile of Bin(K, chance)/K, 1]. A certified error can exceed the
    guess's (an uncertified point counts as an error), so the band runs up to 1; an error
    inside it is indistinguishable from chance."""
    if not 0 < chance < 1:
        raise NtkflowError(f"chance: must be in (0, 1), got {chance!r}")
    K = int(K)
    if K < 1:
        raise NtkflowError(f"K: need at least one sample, got {K}")
    lo = float(scipy.stats.binom.ppf((1 - _confidence(confidence)) / 2, K, chance)) / K
    return Interval(float(chance), lo, 1.0, K)


def frequency_decision(failures: int, K: int, level: float, confidence: float = CONFIDENCE) -> str:
    """A claim "P(failure) ≤ level" after ``failures`` of K independent runs: ``holds`` when the
    Clopper–Pearson interval's upper end is ≤ level, ``violated`` when its lower end is > level,
    ``unknown`` otherwise."""
    lo, hi = clopper_pearson(failures, K, confidence)
    if lo > level:
        return "violated"
    return "holds" if hi <= level else "unknown"


def runs_to_decide(level: float, confidence: float = CONFIDENCE) -> int:
    """The fewest runs K for which 0 failures decides "P(failure) ≤ level" as ``holds``:
    1 − (α/2)^{1/K} ≤ level ⇔ K ≥ log(α/2)/log(1 − level)."""
    if not 0 < level < 1:
        raise NtkflowError(f"level: must be in (0, 1), got {level!r}")
    a = (1 - _confidence(confidence)) / 2
    K = math.ceil(math.log(a) / math.log(1 - level) - 1e-12)
    while clopper_pearson(0, K, confidence)[1] > level:  # guard the rounding of the closed form
        K += 1
    return K
