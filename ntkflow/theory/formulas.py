"""Theorem 1 and Lemmas 1–7 of wang2022_ibp_convergence.txt as pure functions.

Explicit constants are the paper's where its proofs give them; every O(·)/Ω(·) is
taken with constant 1 (``report`` says so next to each number). ``variant="printed"``
is always the formula exactly as printed. Where the paper disagrees with itself, or a
printed step is false, both forms are offered and the docstring says which is which.

Slips in the print (each has a ``variant=``):

* Lemma 1's ε condition (Eq. 23): the printed √(2d)R / log(√(2πd/R) ξ) does not follow
  from Eq. 22, which gives √(2d)R / √log(√(2πd) ξ / R) (B.3 drops the square root and
  moves R); and Eq. 20's Gaussian tail for ‖w‖₁ ≤ (1+ε)√dR/ε by a union bound over
  coordinates has exponent (1+ε)²R²/(2dε²), not 2(1+ε)²dR²/ε² — with it the condition
  becomes R / √(2d log(√(2πd) ξ / R)). ``variant="derived"`` is the latter. Sec. 4.3 and
  the thesis print √(2dR) where Lemma 1 prints √(2d)R; ``printed`` follows Lemma 1.
* The constant c: Theorem 1 and Lemma 5 print c = √(2π)ξ/384; the paper's own appendix
  (A.1: 6/√(2πξ); A.2, A.4: √(2πξ)δ, c = √(2πξ)/384) and the thesis print √(2πξ)
  (``radius(variant="thesis")``).
* Lemma 6 is false, not merely unproved. Step (ii) of A.5 uses −Σl'² ≤ Σl', i.e.
  l'² ≥ |l'|, but the logistic loss has l' ∈ (−1, 0) everywhere. ``lemma6_counterexample``
  runs a flow that meets every premise of A.5 and ends above κ at Eq. 10's time. The main
  text prints L̄(t) ≤ exp(2L̄(0)) L̄(0) e^{−λ0t/2}, Appendix A.5 ends with
  exp(L̄(0)) L̄(0) e^{−λ0t/4} (``variant="main"`` / ``"appendix"``); Eq. 10 is the appendix
  variant's time. ``variant="derived"`` is a valid replacement (``log_loss_bound``).
* Lemma 6's weight bound n t/√m assumes ‖x_i ± ε sign(w_r)‖₂ ≤ 1; from |l'| ≤ 1 alone it
  is n t X/√m with X = max_i(‖x_i‖₂ + ε√d) (``input_scale``).
* Lemma 4's width m = Ω(n² log(n/δ)/λ0²) is Du et al.'s for features of norm ≤ 1: each
  neuron's term in H_ij lies in [−B, B], B = X², so Hoeffding needs B² more (the printed
  form is not even invariant to rescaling x).
* Theorem 1: the ε bound prints n³ where Eq. 14 gives n⁴, the width bound prints an extra
  δλ0 in the numerator and Sec. 4.3 drops ε; and the statement's probability 1 − δ is a
  union over three δ-events (Lemma 2's Markov step, Lemma 4, Lemma 7), so ≈ 1 − 3δ.

The derived chain (``variant="derived"`` everywhere), step by step:

1. Lemma 6′ (``log_loss_bound``): dL̄/dt ≤ −k·min(1, L̄²/n), k = (1−1/e)²λ0/2, hence
   Eq. 10′: L̄(t) < κ for t > 2(L̄(0) + n/κ)/((1−1/e)²λ0) (``time_needed``).
2. Eq. 9′: n t X/√m ≤ R holds for t ≤ cδλ0√m/(d^1.5 n³ X) (``time_limit``).
3. Eq. 11′–12′: 1 < 2 ⇔ L̄(0) + n/κ < c′δλ0²√m/(d^1.5 n³ X), c′ = (1−1/e)²c/2 = c/5.005.
4. Eq. 14′ with Lemma 7 (constant 1): (c′δλ0²/(d^1.5n³X) − ndε/δ)√m > n/δ + n/κ, which
   gives the ε bound (``epsilon_bound``) and, with Lemma 4′'s width, the width bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.optimize

__all__ = [
    "radius", "flip_probability_bound", "lemma1_eps_condition", "gram_change_bound", "gram_change_trivial_bound",
    "lemma4_width", "loss_bound", "log_loss_bound", "lemma6_gradient_floor", "weight_change_bound", "time_limit",
    "time_needed", "initial_loss_bound", "epsilon_bound", "width_bound", "input_scale", "constant_gram_loss",
    "lemma6_counterexample", "Lemma6Counterexample", "KAPPA", "LEMMA6_CONSTANT",
]

KAPPA = math.log(2.0)  # κ = log(1 + exp(0)), the loss at zero margin
LEMMA6_CONSTANT = (1 - 1 / math.e) ** 2  # C in |l'(u)| ≥ √C·min(1, l(u)); 2/C = 5.005


def _check_variant(variant, allowed):
    if variant not in allowed:
        raise ValueError(f"variant: expected one of {', '.join(map(repr, allowed))}, got {variant!r}")


def _c(xi: float, variant: str = "paper") -> float:
    if variant == "paper":
        return math.sqrt(2 * math.pi) * xi / 384
    if variant == "thesis":
        return math.sqrt(2 * math.pi * xi) / 384
    raise ValueError(f"variant: expected 'paper' or 'thesis', got {variant!r}")


def _need(name, value):
    if value is None:
        raise ValueError(f"{name}: the derived variant needs {name}")
    return value


def input_scale(X, eps) -> float:
    """X = max_i(‖x_i‖₂ + ε√d): the largest norm of x_i ± ε sign(w) (triangle inequality).

    Every ∂u̲_i/∂w_r has norm ≤ X/√m, every neuron's term in H_ij lies in [−X², X²]. The
    proofs take it as 1 (Lemmas 4, 6, 7), impossible once ε > 1/√d under Assumption 1.
    """
    X = np.asarray(X, dtype=float)
    return float(np.max(np.linalg.norm(X, axis=1)) + eps * math.sqrt(X.shape[1]))


def radius(delta, lambda0, d, n, xi, variant: str = "paper") -> float:
    """R = c δ λ0 / (d^1.5 n²), c = √(2π) ξ / 384 (Theorem 1, Lemma 5; the appendix A.4 and
    the thesis print c = √(2πξ)/384: ``variant="thesis"``)."""
    return _c(xi, variant) * delta * lambda0 / (d**1.5 * n**2)


def flip_probability_bound(eps, d, R, xi) -> float:
    """R̃ = 12 (1 + ε) √d R / (√(2π) ξ) (Lemma 1): bound on Pr(α, β or γ_rij changes).

    Each single indicator changes with probability at most R̃/2 (A.1).
    """
    return 12 * (1 + eps) * math.sqrt(d) * R / (math.sqrt(2 * math.pi) * xi)


def lemma1_eps_condition(d, R, xi, variant: str = "printed") -> float:
    """Largest ε allowed by Lemma 1 (Eq. 23). ``inf`` where the condition is void.

    printed: √(2d) R / log(√(2πd/R) ξ) (Lemma 1, Theorem 1; Sec. 4.3 prints √(2dR)).
    derived: R / √(2d log(√(2πd) ξ / R)) — Eq. 22 solved with the union-bound tail of A.1
    (see module docstring).
    """
    _check_variant(variant, ("printed", "derived"))
    if variant == "printed":
        arg = math.sqrt(2 * math.pi * d / R) * xi
        return math.inf if arg <= 1 else math.sqrt(2 * d) * R / math.log(arg)
    arg = math.sqrt(2 * math.pi * d) * xi / R
    return math.inf if arg <= 1 else R / math.sqrt(2 * d * math.log(arg))


def gram_change_bound(eps, d, n, R, xi, delta) -> float:
    """‖H(t) − H(0)‖₂ ≤ 12 (1+ε)(1+2ε+ε²) d^1.5 n² R / (√(2π) ξ δ) w.p. ≥ 1 − δ (Lemma 2, Eq. 7).

    Linear in R: ``gram_change_bound(..., R=1, ...)`` is the bound per unit R.
    """
    return 12 * (1 + eps) * (1 + 2 * eps + eps**2) * d**1.5 * n**2 * R / (math.sqrt(2 * math.pi) * xi * delta)


def gram_change_trivial_bound(X, eps) -> float:
    """‖H(t) − H(0)‖₂ ≤ Σ_i (‖x_i‖₂ + ε√d)², true for every W.

    H(t) and H(0) are Gram matrices, hence PSD, and for PSD A, B: −B ⪯ A − B ⪯ A, so
    ‖A − B‖₂ ≤ max(‖A‖₂, ‖B‖₂) ≤ max(tr A, tr B). H_ii = (1/m) Σ_r A_ri ‖x_i ∓ ε sign(w_r)‖²
    ≤ (‖x_i‖₂ + ε√d)². A bound above this one says nothing (Lemma 2's row calls it vacuous).
    """
    X = np.asarray(X, dtype=float)
    return float(np.sum((np.linalg.norm(X, axis=1) + eps * math.sqrt(X.shape[1])) ** 2))


def lemma4_width(n, lambda0, delta, *, B=None, variant: str = "printed") -> float:
    """Lemma 4's width, Ω(·) with constant 1: then λmin(H(0)) ≥ ¾λ0 w.p. ≥ 1 − δ.

    printed: n²/λ0² · log(n/δ) (Du et al.'s Lemma 3.1, for ‖x_i‖ ≤ 1).
    derived: B² n²/λ0² · log(n/δ) with B = X² (``input_scale``): Hoeffding's inequality on
    H_ij(0) − H∞_ij = (1/m)Σ_r (Z_rij − E Z_rij) with Z_rij ∈ [−B, B] needs m ∝ B²; the
    printed form is the case B = 1.
    """
    _check_variant(variant, ("printed", "derived"))
    base = n**2 / lambda0**2 * math.log(n / delta)
    return base if variant == "printed" else _need("B", B) ** 2 * base


def _log_phi(t, loss0, k, n):
    """log Φ(t), Φ' = −k min(1, Φ²/n), Φ(0) = loss0 (linear above √n, then 1/(a + kt/n))."""
    s = math.sqrt(n)
    t_a = max(loss0 - s, 0.0) / k  # time spent above √n
    lin = np.log(np.maximum(loss0 - k * np.minimum(t, t_a), s))
    inv = -np.log(1 / min(loss0, s) + k * np.maximum(t - t_a, 0.0) / n)
    return np.where(t < t_a, lin, inv)


def log_loss_bound(t, loss0, lambda0, variant: str = "main", *, n=None):
    """log of the Lemma 6 envelope on L̄(t), given λmin(H(s)) ≥ λ0/2 on [0, t].

    main: 2L̄(0) + log L̄(0) − λ0t/2; appendix: L̄(0) + log L̄(0) − λ0t/4 (both false, see
    ``lemma6_counterexample``). derived (needs ``n``): log Φ(t), Φ the solution of
    Φ' = −k·min(1, Φ²/n), Φ(0) = L̄(0), k = (1−1/e)²λ0/2 — linear decay while Φ ≥ √n,
    then Φ = 1/(1/√n + k(t − t_a)/n).

    Proof of the derived form. Let p = −l'(u) = 1/(1+eᵘ) ∈ (0, 1); then l(u) = −log(1−p).
    (a) p ≥ (1−1/e)·min(1, l): if l ≥ 1 then p ≥ 1 − 1/e; if l < 1 then p < 1 − 1/e, and
    g(p) = −log(1−p) is convex with g(0) = 0, g(1−1/e) = 1, so g(p) ≤ p/(1−1/e) there
    (chord). (b) Σ min(1, l_i)² ≥ min(1, L̄²/n): if some l_i ≥ 1 the sum is ≥ 1, else
    Σ l_i² ≥ (Σ l_i)²/n (Cauchy–Schwarz). (c) dL̄/dt = −l'ᵀHl' ≤ −λmin(H)Σl'² ≤
    −(λ0/2)(1−1/e)² min(1, L̄²/n) (``lemma6_gradient_floor``). (d) The right side is
    −k·min(1, L̄²/n), locally Lipschitz and non-increasing in L̄, so by the comparison
    principle L̄(t) ≤ Φ(t). Φ reaches κ by t = (L̄(0) + n/κ − 2√n)/k ≤ 2(L̄(0) + n/κ)/((1−1/e)²λ0)
    (``time_needed(variant="derived")``); 1 − 1/e is the best constant in (a) (equality at l = 1).
    """
    _check_variant(variant, ("main", "appendix", "derived"))
    t = np.asarray(t, dtype=float)
    if variant == "main":
        return 2 * loss0 + math.log(loss0) - lambda0 * t / 2
    if variant == "appendix":
        return loss0 + math.log(loss0) - lambda0 * t / 4
    return _log_phi(t, loss0, LEMMA6_CONSTANT * lambda0 / 2, _need("n", n))


def loss_bound(t, loss0, lambda0, variant: str = "main", *, n=None):
    """Lemma 6's envelope (``log_loss_bound``, exponentiated); ``inf`` where it overflows float64."""
    with np.errstate(over="ignore"):
        return np.exp(log_loss_bound(t, loss0, lambda0, variant, n=n))


def lemma6_gradient_floor(loss, n):
    """(1−1/e)² min(1, L̄²/n): a lower bound on Σ_i l'(u_i)² for any u with Σ_i l(u_i) = L̄.

    Step (ii) of A.5 would need Σl'² ≥ Σ|l'|, false for the logistic loss; this is the
    valid replacement (proof in ``log_loss_bound``).
    """
    loss = np.asarray(loss, dtype=float)
    return LEMMA6_CONSTANT * np.minimum(1.0, loss**2 / n)


def weight_change_bound(t, n, m, *, variant: str = "printed", x_norm_max=None, eps=0.0, d=None):
    """‖w_r(t) − w_r(0)‖₂ bound (Lemma 6): printed n t/√m; derived n t max_i(‖x_i‖₂ + ε√d)/√m."""
    _check_variant(variant, ("printed", "derived"))
    t = np.asarray(t, dtype=float)
    if variant == "printed":
        return n * t / math.sqrt(m)
    if x_norm_max is None or d is None:
        raise ValueError("weight_change_bound: the derived variant needs x_norm_max and d")
    return n * t * (x_norm_max + eps * math.sqrt(d)) / math.sqrt(m)


def time_limit(delta, lambda0, m, d, n, xi, *, x_scale=None, variant: str = "printed") -> float:
    """Eq. 9: the time for which the Lemma 6 weight bound stays ≤ R = radius(...).

    printed: c δ λ0 √m / (d^1.5 n³) (from n t/√m ≤ R).
    derived: c δ λ0 √m / (d^1.5 n³ X), X = ``x_scale`` = max_i(‖x_i‖₂ + ε√d) (from n t X/√m ≤ R).
    """
    _check_variant(variant, ("printed", "derived"))
    t = _c(xi) * delta * lambda0 * math.sqrt(m) / (d**1.5 * n**3)
    return t if variant == "printed" else t / _need("x_scale", x_scale)


def time_needed(loss0, lambda0, *, n=None, variant: str = "printed", kappa: float = KAPPA) -> float:
    """The time after which L̄ < κ (κ = log 2), i.e. zero certified training error.

    printed: 4/λ0 (log(L̄(0)/κ) + L̄(0)) (Eq. 10, the appendix envelope of Lemma 6 at κ).
    derived (needs ``n``): 2(L̄(0) + n/κ)/((1−1/e)²λ0) ≈ 5.005/λ0 · (L̄(0) + n/κ), from the
    valid Lemma 6′ (proof in ``log_loss_bound``).
    """
    _check_variant(variant, ("printed", "derived"))
    if variant == "printed":
        return 4 / lambda0 * (math.log(loss0 / kappa) + loss0)
    return 2 * (loss0 + _need("n", n) / kappa) / (LEMMA6_CONSTANT * lambda0)


def initial_loss_bound(n, m, d, eps, delta) -> float:
    """Lemma 7 with constant 1: L̄(0) ≤ n√m d ε/δ + n/δ w.p. ≥ 1 − δ (L(0) ≤ n/δ at ε = 0)."""
    return n * math.sqrt(m) * d * eps / delta + n / delta


def _cprime(xi) -> float:
    """c′ of Eq. 12′: Eq. 10′ < Eq. 9′ ⇔ L̄(0) + n/κ < c′δλ0²√m/(d^1.5n³X), c′ = (1−1/e)²c/2."""
    return LEMMA6_CONSTANT * _c(xi) / 2


def epsilon_bound(n, d, delta, lambda0, xi, variant: str = "derived", *, x_scale=None) -> float:
    """Theorem 1's bound on ε: min(first term, Lemma 1 condition at R = radius(...)).

    printed: min(δ²λ0²/(d^2.5 n³), √(2d)R/log(√(2πd/R)ξ)) (O(·) constant 1).
    derived (needs ``x_scale`` = X): min(c′δ²λ0²/(d^2.5 n⁴ X), R/√(2d log(√(2πd)ξ/R))) with
    c′ = (1−1/e)²c/2 = c/5.005 and c1 = 1: the coefficient of √m in Eq. 14′ must be positive.
    """
    _check_variant(variant, ("printed", "derived"))
    R = radius(delta, lambda0, d, n, xi)
    if variant == "printed":
        return min(delta**2 * lambda0**2 / (d**2.5 * n**3), lemma1_eps_condition(d, R, xi, "printed"))
    first = _cprime(xi) * delta**2 * lambda0**2 / (d**2.5 * n**4 * _need("x_scale", x_scale))
    return min(first, lemma1_eps_condition(d, R, xi, "derived"))


def width_bound(n, d, delta, lambda0, eps, xi=None, variant: str = "derived", *, x_scale=None) -> float:
    """Theorem 1's width requirement (``inf`` when no width suffices).

    printed: ((d^1.5 n⁴ δ λ0) / (δ²λ0² − ε d^2.5 n⁴))² (Theorem 1, constant 1).
    derived (needs ``xi`` and ``x_scale`` = X): the larger of Eq. 14′ solved for m,
    ((n/δ + n/κ) / (c′δλ0²/(d^1.5 n³ X) − n d ε/δ))² with c′ = c/5.005, c1 = c2 = 1, and
    Lemma 4′'s width B² n² log(n/δ)/λ0², B = X². At ε = 0 the first is
    n⁸d³X²(1 + δ/κ)²/(c′²λ0⁴δ⁴), the corollary's n⁸d³/(λ0⁴δ⁴) up to X²(1+δ/κ)²/c′².
    """
    _check_variant(variant, ("printed", "derived"))
    if variant == "printed":
        den = delta**2 * lambda0**2 - eps * d**2.5 * n**4
        return math.inf if den <= 0 else (d**1.5 * n**4 * delta * lambda0 / den) ** 2
    xs = _need("x_scale", x_scale)
    den = _cprime(_need("xi", xi)) * delta * lambda0**2 / (d**1.5 * n**3 * xs) - n * d * eps / delta
    eq14 = math.inf if den <= 0 else ((n / delta + n / KAPPA) / den) ** 2
    return max(eq14, lemma4_width(n, lambda0, delta, B=xs**2, variant="derived"))


# ----------------------------------------------------------------------------- Lemma 6 refuted
def constant_gram_loss(t, n, h):
    """L̄(t) of the flow du/dt = −H l'(u) with H = h·I and u(0) = 0 (exact).

    Each u_i solves du/dt = h/(1 + eᵘ), i.e. u + eᵘ = 1 + h t; L̄ = n log(1 + e^{−u}).
    For large t, eᵘ ≈ h t and L̄ ≈ n/(h t): a 1/t decay, below every exponential envelope.
    """
    def u_at(s):
        return 0.0 if s <= 1 else scipy.optimize.brentq(lambda u: u + math.exp(u) - s, 0.0, math.log(s),
                                                         xtol=1e-15, rtol=1e-15)

    t = np.asarray(t, dtype=float)
    u = np.vectorize(u_at, otypes=[float])(1 + h * t)
    return n * np.logaddexp(0.0, -u)


@dataclass(frozen=True)
class Lemma6Counterexample:
    """A flow meeting every premise of A.5 that leaves Lemma 6's envelope.

    H(t) = (λ0/2)·I (so λmin(H) = λ0/2 for all t), u(0) = 0, L̄(0) = n log 2. For every n
    L̄ exceeds the appendix envelope from just after Eq. 10's time (L̄ decays like 1/t, the
    envelope exponentially); for n ≥ 103 it is still ≥ κ at Eq. 10's time (0.717 at n = 1000,
    → 0.721 as n grows), so Eq. 10 does not give zero training error either.
    ``t_needed``: Eq. 10 (appendix variant, ``time_needed``) at L̄(0); ``loss_at_t_needed``:
    L̄ there (Lemma 6 claims < κ). ``t_violated``: first time L̄(t) exceeds the appendix
    envelope. ``t_needed_derived``/``loss_at_t_needed_derived``: the valid replacement's
    time and the loss there (< κ).
    """

    n: int
    lambda0: float
    loss0: float
    kappa: float
    t_needed: float
    loss_at_t_needed: float
    t_violated: float
    t_needed_derived: float
    loss_at_t_needed_derived: float

    def __str__(self) -> str:
        return (f"H = (λ0/2)·I, n = {self.n}, λ0 = {self.lambda0:g}, u(0) = 0 (L̄(0) = {self.loss0:.4g}): "
                f"at Eq. 10's time t = {self.t_needed:.5g}, L̄ = {self.loss_at_t_needed:.4f} "
                f"{'>' if self.loss_at_t_needed > self.kappa else '≤'} κ = {self.kappa:.4f}; L̄ exceeds the "
                f"appendix envelope from t = {self.t_violated:.5g}; derived time {self.t_needed_derived:.5g}: "
                f"L̄ = {self.loss_at_t_needed_derived:.4f}")


def lemma6_counterexample(n: int = 1000, lambda0: float = 1.0) -> Lemma6Counterexample:
    """Run the constant-Gram flow that refutes Lemma 6 (module docstring; ``Lemma6Counterexample``)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: must be an integer >= 1, got {n!r}")
    if not (isinstance(lambda0, (int, float, np.floating)) and math.isfinite(lambda0) and lambda0 > 0):
        raise ValueError(f"lambda0: must be > 0 and finite, got {lambda0!r}")
    n, lambda0 = int(n), float(lambda0)
    h = lambda0 / 2
    loss0 = n * KAPPA
    t_need = time_needed(loss0, lambda0)
    t_der = time_needed(loss0, lambda0, n=n, variant="derived")

    def excess(t):  # log L̄(t) − log(appendix envelope)
        return math.log(float(constant_gram_loss(t, n, h))) - float(log_loss_bound(t, loss0, lambda0, "appendix"))

    hi = t_need
    while excess(hi) <= 0:
        hi *= 2
    t_viol = scipy.optimize.brentq(excess, 0.0, hi, xtol=1e-12 * hi)
    return Lemma6Counterexample(
        n=n, lambda0=lambda0, loss0=loss0, kappa=KAPPA, t_needed=t_need,
        loss_at_t_needed=float(constant_gram_loss(t_need, n, h)), t_violated=t_viol,
        t_needed_derived=t_der, loss_at_t_needed_derived=float(constant_gram_loss(t_der, n, h)))
