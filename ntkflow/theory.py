"""Theorem 1 and Lemmas 1–7 of wang2022_ibp_convergence.txt as pure functions.

Explicit constants are the paper's where its proofs give them; every O(·)/Ω(·) is
taken with constant 1 (``report`` says so next to each number). Where the paper
disagrees with itself both forms are offered (``variant=``) and the docstring says
which is which:

* Lemma 1's ε condition (Eq. 23): the printed √(2d)R / log(√(2πd/R) ξ) does not follow
  from Eq. 22, which gives √(2d)R / √log(√(2πd) ξ / R) (B.3 drops the square root and
  moves R); and Eq. 20's Gaussian tail for ‖w‖₁ ≤ (1+ε)√dR/ε by a union bound over
  coordinates has exponent (1+ε)²R²/(2dε²), not 2(1+ε)²dR²/ε² — with it the condition
  becomes R / √(2d log(√(2πd) ξ / R)). ``variant="derived"`` is the latter.
* Lemma 6: the main text prints L̄(t) ≤ exp(2L̄(0)) L̄(0) e^{−λ0t/2}, Appendix A.5 ends with
  exp(L̄(0)) L̄(0) e^{−λ0t/4} (``variant="main"`` / ``"appendix"``). Eq. 10 matches the
  appendix variant. Step (ii) of A.5 uses −Σl'² ≤ Σl', i.e. l'² ≥ |l'|, false for
  |l'| < 1: neither envelope is actually proved; measured decay decides.
* Lemma 6's weight bound n t/√m assumes ‖x_i ± ε sign(w_r)‖₂ ≤ 1; from |l'| ≤ 1 alone it
  is n t max_i(‖x_i‖₂ + ε√d)/√m (``variant="derived"``).
* Theorem 1: the ε bound prints n³ where Eq. 14 gives n⁴, and the width bound prints an
  extra δλ0 in the numerator and Sec. 4.3 drops ε; ``variant="derived"`` follows Eq. 14.
* The thesis prints c = √(2πξ)/384 where the paper has √(2π)ξ/384 (``radius(variant=)``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "radius", "flip_probability_bound", "lemma1_eps_condition", "gram_change_bound", "lemma4_width",
    "loss_bound", "log_loss_bound", "weight_change_bound", "time_limit", "time_needed",
    "initial_loss_bound", "epsilon_bound", "width_bound", "KAPPA",
]

KAPPA = math.log(2.0)  # κ = log(1 + exp(0)), the loss at zero margin


def _c(xi: float, variant: str = "paper") -> float:
    if variant == "paper":
        return math.sqrt(2 * math.pi) * xi / 384
    if variant == "thesis":
        return math.sqrt(2 * math.pi * xi) / 384
    raise ValueError(f"variant: expected 'paper' or 'thesis', got {variant!r}")


def radius(delta, lambda0, d, n, xi, variant: str = "paper") -> float:
    """R = c δ λ0 / (d^1.5 n²), c = √(2π) ξ / 384 (Theorem 1, Lemma 5; thesis: c = √(2πξ)/384)."""
    return _c(xi, variant) * delta * lambda0 / (d**1.5 * n**2)


def flip_probability_bound(eps, d, R, xi) -> float:
    """R̃ = 12 (1 + ε) √d R / (√(2π) ξ) (Lemma 1): bound on Pr(α, β or γ_rij changes).

    Each single indicator changes with probability at most R̃/2 (A.1).
    """
    return 12 * (1 + eps) * math.sqrt(d) * R / (math.sqrt(2 * math.pi) * xi)


def lemma1_eps_condition(d, R, xi, variant: str = "printed") -> float:
    """Largest ε allowed by Lemma 1 (Eq. 23). ``inf`` where the condition is void.

    printed: √(2d) R / log(√(2πd/R) ξ) (Lemma 1, Theorem 1).
    derived: R / √(2d log(√(2πd) ξ / R)) — Eq. 22 solved with the union-bound tail of A.1
    (see module docstring).
    """
    if variant == "printed":
        arg = math.sqrt(2 * math.pi * d / R) * xi
        return math.inf if arg <= 1 else math.sqrt(2 * d) * R / math.log(arg)
    if variant == "derived":
        arg = math.sqrt(2 * math.pi * d) * xi / R
        return math.inf if arg <= 1 else R / math.sqrt(2 * d * math.log(arg))
    raise ValueError(f"variant: expected 'printed' or 'derived', got {variant!r}")


def gram_change_bound(eps, d, n, R, xi, delta) -> float:
    """‖H(t) − H(0)‖₂ ≤ 12 (1+ε)(1+2ε+ε²) d^1.5 n² R / (√(2π) ξ δ) w.p. ≥ 1 − δ (Lemma 2, Eq. 7)."""
    return 12 * (1 + eps) * (1 + 2 * eps + eps**2) * d**1.5 * n**2 * R / (math.sqrt(2 * math.pi) * xi * delta)


def lemma4_width(n, lambda0, delta) -> float:
    """m = n²/λ0² · log(n/δ) (Lemma 4, Ω(·) with constant 1): then λmin(H(0)) ≥ ¾λ0 w.p. ≥ 1 − δ."""
    return n**2 / lambda0**2 * math.log(n / delta)


def log_loss_bound(t, loss0, lambda0, variant: str = "main"):
    """log of ``loss_bound`` (no overflow for large L̄(0))."""
    t = np.asarray(t, dtype=float)
    if variant == "main":
        return 2 * loss0 + math.log(loss0) - lambda0 * t / 2
    if variant == "appendix":
        return loss0 + math.log(loss0) - lambda0 * t / 4
    raise ValueError(f"variant: expected 'main' or 'appendix', got {variant!r}")


def loss_bound(t, loss0, lambda0, variant: str = "main"):
    """Lemma 6: main text exp(2L̄(0)) L̄(0) e^{−λ0 t/2}; Appendix A.5 exp(L̄(0)) L̄(0) e^{−λ0 t/4}.

    ``inf`` where the value overflows float64. See the module docstring on step (ii).
    """
    with np.errstate(over="ignore"):
        return np.exp(log_loss_bound(t, loss0, lambda0, variant))


def weight_change_bound(t, n, m, *, variant: str = "printed", x_norm_max=None, eps=0.0, d=None):
    """‖w_r(t) − w_r(0)‖₂ bound (Lemma 6): printed n t/√m; derived n t max_i(‖x_i‖₂ + ε√d)/√m."""
    t = np.asarray(t, dtype=float)
    if variant == "printed":
        return n * t / math.sqrt(m)
    if variant == "derived":
        if x_norm_max is None or d is None:
            raise ValueError("weight_change_bound: the derived variant needs x_norm_max and d")
        return n * t * (x_norm_max + eps * math.sqrt(d)) / math.sqrt(m)
    raise ValueError(f"variant: expected 'printed' or 'derived', got {variant!r}")


def time_limit(delta, lambda0, m, d, n, xi) -> float:
    """t ≤ c δ λ0 √m / (d^1.5 n³) (Eq. 9): the time for which n t/√m ≤ R."""
    return _c(xi) * delta * lambda0 * math.sqrt(m) / (d**1.5 * n**3)


def time_needed(loss0, lambda0, kappa: float = KAPPA) -> float:
    """t > 4/λ0 (log(L̄(0)/κ) + L̄(0)) (Eq. 10, κ = log 2): the time to reach L̄ < κ."""
    return 4 / lambda0 * (math.log(loss0 / kappa) + loss0)


def initial_loss_bound(n, m, d, eps, delta) -> float:
    """Lemma 7 with constant 1: L̄(0) ≤ n√m d ε/δ + n/δ w.p. ≥ 1 − δ (L(0) ≤ n/δ at ε = 0)."""
    return n * math.sqrt(m) * d * eps / delta + n / delta


def epsilon_bound(n, d, delta, lambda0, xi, variant: str = "derived") -> float:
    """Theorem 1's bound on ε: min(first term, Lemma 1 condition at R = radius(...)).

    printed: min(δ²λ0²/(d^2.5 n³), √(2d)R/log(√(2πd/R)ξ)) (O(·) constant 1).
    derived: min(c′δ²λ0²/(d^2.5 n⁴), R/√(2d log(√(2πd)ξ/R))) with c′ = c/8 (Eq. 12) and
    c1 = 1, from Eq. 14's requirement c′δλ0²/(d^1.5 n³) > c1 n d ε/δ.
    """
    R = radius(delta, lambda0, d, n, xi)
    if variant == "printed":
        return min(delta**2 * lambda0**2 / (d**2.5 * n**3), lemma1_eps_condition(d, R, xi, "printed"))
    if variant == "derived":
        cp = _c(xi) / 8
        return min(cp * delta**2 * lambda0**2 / (d**2.5 * n**4), lemma1_eps_condition(d, R, xi, "derived"))
    raise ValueError(f"variant: expected 'printed' or 'derived', got {variant!r}")


def width_bound(n, d, delta, lambda0, eps, xi=None, variant: str = "derived") -> float:
    """Theorem 1's width requirement (``inf`` when no width suffices).

    printed: ((d^1.5 n⁴ δ λ0) / (δ²λ0² − ε d^2.5 n⁴))² (Theorem 1, constant 1).
    derived: Eq. 14 solved for m, ((n/δ + 1) / (c′δλ0²/(d^1.5 n³) − n d ε/δ))² with c′ = c/8
    and c1 = c2 = c4 = 1; ∝ (d^1.5 n⁴/(c′δ²λ0² − ε d^2.5 n⁴))², which at ε = 0 is the
    corollary's n⁸d³/(λ0⁴δ⁴) up to c′.
    """
    if variant == "printed":
        den = delta**2 * lambda0**2 - eps * d**2.5 * n**4
        return math.inf if den <= 0 else (d**1.5 * n**4 * delta * lambda0 / den) ** 2
    if variant == "derived":
        if xi is None:
            raise ValueError("width_bound: the derived variant needs xi")
        den = _c(xi) / 8 * delta * lambda0**2 / (d**1.5 * n**3) - n * d * eps / delta
        return math.inf if den <= 0 else ((n / delta + 1) / den) ** 2
    raise ValueError(f"variant: expected 'printed' or 'derived', got {variant!r}")
