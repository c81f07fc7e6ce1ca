"""Assumptions 1 and 2 of Sec. 3.2, decided exactly, and ``normalize_to_box``."""

from __future__ import annotations

from dataclasses import dataclass, field
import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate as V
from .._core.errors import NtkflowError
from .._jax import x64

__all__ = ["check_assumption_1", "check_assumption_2", "normalize_to_box",
           "Assumption1", "Assumption2"]


@dataclass(frozen=True)
class Assumption1:
    """Assumption 1: every x_i ∈ [ε, 1]^d and ξ = min_i ‖x_i‖₂ > 0. Truthy iff it holds.

    ``violating`` lists the samples with a coordinate outside [ε, 1].
    """

    holds: bool
    eps: float
    xi: float
    violating: np.ndarray = field(repr=False)

    def __bool__(self) -> bool:
        return self.holds


@dataclass(frozen=True)
class Assumption2:
    """Assumption 2: no two ε-boxes contain parallel points. Truthy iff it holds.

    ``pair`` is a violating pair (i, j) with a ratio ``c`` > 0 such that c·B_i meets
    B_j (None when it holds); ``violating_pairs`` counts all of them.
    ``separation`` = min over pairs of L_ij / U_ij, the smallest and largest feasible
    ratio; the assumption holds iff it exceeds 1, and it says by how much.
    ``closest_pair`` attains it.
    """

    holds: bool
    eps: float
    pair: tuple[int, int] | None
    c: float | None
    violating_pairs: int
    separation: float
    closest_pair: tuple[int, int]

    def __bool__(self) -> bool:
        return self.holds


def check_assumption_1(X, eps) -> Assumption1:
    """Assumption 1 (Sec. 3.2): x_i ∈ [ε, 1]^d for all i, and ξ = min_i ‖x_i‖₂ > 0."""
    X = V.array("X", X, 2)
    eps = V.eps_value(eps)
    bad = np.flatnonzero(np.any((X < eps) | (X > 1.0), axis=1))
    xi = float(np.sqrt(np.min(np.sum(X * X, axis=1))))
    return Assumption1(holds=bool(bad.size == 0 and xi > 0), eps=eps, xi=xi, violating=bad)


@jax.jit
def _ratio_bounds_positive(lo_i, hi_i, lo_j, hi_j):
    """``_ratio_bounds`` when every lo ≥ 0 and every hi > 0 (Assumption 1 data): then
    L = max_k lo_jk / hi_ik and U = min_k hi_jk / lo_ik (∞ where lo_ik = 0)."""
    L = jnp.max(lo_j[None, :, :] / hi_i[:, None, :], axis=-1)
    U = jnp.min(hi_j[None, :, :] / lo_i[:, None, :], axis=-1)  # x / 0 = ∞ for x > 0
    return L, U


@jax.jit
def _ratio_bounds(lo_i, hi_i, lo_j, hi_j):
    """For boxes i (b, d) and j (n, d): the feasible c > 0 with c·B_i ∩ B_j ≠ ∅ per
    coordinate form an interval; return its intersection [L, U] over coordinates, (b, n).

    Coordinate k needs c·lo_i ≤ hi_j and c·hi_i ≥ lo_j.
    """
    li, hi = lo_i[:, None, :], hi_i[:, None, :]
    lj, hj = lo_j[None, :, :], hi_j[None, :, :]
    inf = jnp.inf
    # c·lo_i ≤ hi_j
    up1 = jnp.where(li > 0, hj / jnp.where(li > 0, li, 1.0), jnp.where((li == 0) & (hj < 0), -inf, inf))
    low1 = jnp.where(li < 0, hj / jnp.where(li < 0, li, 1.0), -inf)
    # c·hi_i ≥ lo_j
    low2 = jnp.where(hi > 0, lj / jnp.where(hi > 0, hi, 1.0), jnp.where((hi == 0) & (lj > 0), inf, -inf))
    up2 = jnp.where(hi < 0, lj / jnp.where(hi < 0, hi, 1.0), inf)
    L = jnp.maximum(jnp.max(jnp.maximum(low1, low2), axis=-1), 0.0)
    U = jnp.min(jnp.minimum(up1, up2), axis=-1)
    return L, U


def _pair_bounds_exact(lo_i, hi_i, lo_j, hi_j) -> tuple[float, float]:
    """[L, U] for one pair with IEEE division in numpy (the decision of record)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        up1 = np.where(lo_i > 0, hi_j / lo_i, np.where((lo_i == 0) & (hi_j < 0), -np.inf, np.inf))
        low1 = np.where(lo_i < 0, hi_j / lo_i, -np.inf)
        low2 = np.where(hi_i > 0, lo_j / hi_i, np.where((hi_i == 0) & (lo_j > 0), np.inf, -np.inf))
        up2 = np.where(hi_i < 0, lo_j / hi_i, np.inf)
    return max(float(np.max(np.maximum(low1, low2))), 0.0), float(np.min(np.minimum(up1, up2)))


@x64
def check_assumption_2(X, eps, *, block: int = 32) -> Assumption2:
    """Assumption 2 (Sec. 3.2), decided exactly: for all i ≠ j, no x'_i ∈ B∞(x_i, ε) and
    x'_j ∈ B∞(x_j, ε) are parallel.

    Boxes B_i, B_j hold parallel points iff some c > 0 maps B_i into contact with B_j
    in every coordinate: per coordinate the feasible c form an interval, and the
    pair violates iff the intersection [L, U] of these intervals is non-empty with
    U > 0. The ratios are computed in float64 (so "exact" up to one rounding per
    ratio); O(n² d) work, vectorized in blocks of ``block`` rows (an integer ≥ 1; it
    changes the memory, never the answer).
    """
    X = V.array("X", X, 2)
    eps = V.eps_value(eps)
    block = V.positive_int("block", block)
    n = X.shape[0]
    lo, hi = jnp.asarray(X - eps), jnp.asarray(X + eps)
    bounds = _ratio_bounds_positive if (X.min() >= eps and X.max() + eps > 0 and (X + eps).min() > 0) else _ratio_bounds
    count, best_sep, best_pair, pair, cval = 0, np.inf, (0, 0), None, None
    for s in range(0, n, block):
        L, U = (np.array(t) for t in bounds(lo[s:s + block], hi[s:s + block], lo, hi))
        rows = np.arange(s, min(s + block, n))[:, None]
        upper = np.arange(n)[None, :] > rows  # each unordered pair once (c ↦ 1/c)
        # XLA may divide through a reciprocal (1 ulp off): decide near-ties in numpy
        for r, j in np.argwhere(upper & (L <= U * (1 + 1e-9)) & (U > 0)):
            i = int(rows[r, 0])
            L[r, j], U[r, j] = _pair_bounds_exact(X[i] - eps, X[i] + eps, X[j] - eps, X[j] + eps)
        viol = (L <= U) & (U > 0) & upper
        count += int(viol.sum())
        if pair is None and viol.any():
            r, j = np.argwhere(viol)[0]
            pair, cval = (int(rows[r, 0]), int(j)), float(L[r, j] if L[r, j] > 0 else min(U[r, j], 1.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            sep = np.where(upper & (U > 0), L / U, np.inf)
        k = np.unravel_index(np.argmin(sep), sep.shape)
        if sep[k] < best_sep:
            best_sep, best_pair = float(sep[k]), (int(rows[k[0], 0]), int(k[1]))
    return Assumption2(holds=count == 0, eps=eps, pair=pair, c=cval, violating_pairs=count,
                       separation=best_sep, closest_pair=best_pair)


def normalize_to_box(X, eps) -> np.ndarray:
    """Affine map x ↦ ε + (1 − ε) x of data in [0, 1]^d into [ε, 1]^d (Assumption 1)."""
    X = V.array("X", X, 2)
    eps = V.eps_value(eps)
    if X.min() < 0 or X.max() > 1:
        raise NtkflowError(f"X: normalize_to_box needs values in [0, 1], got [{X.min():.3g}, {X.max():.3g}]")
    return eps + (1.0 - eps) * X
