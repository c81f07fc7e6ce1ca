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
  runs a flow that meets every premise of A.5 and ends above κ at Eq. 10's time (with
  every margin positive: what fails is the sufficient test L̄ < κ). The main
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

* Lemma 7's proof (A.6) is wrong in three places: it takes Var(a_r σ(w_rᵀx_i)) = σ_i²/2
  with σ_i = ‖x_i‖₂² (true: ‖x_i‖₂²/2), applies Chebyshev without the square root
  (P(|u_i| ≤ σ_i²/(2δ)) instead of P(|u_i| ≤ σ_i/√(2δ))) and bounds the sum over i of
  n events, each of probability δ, as one δ-event (no union bound). ``variant="derived"``
  of ``initial_loss_bound`` replaces it by Markov's inequality (proof there).
* Lemma 2's proof (A.2) bounds the change of H_ij by the indicator changes of Lemma 1
  alone, but a neuron's term also contains ε·sign(w_r), which changes when a coordinate of
  w_r crosses 0 while every indicator stays. ``gram_change_bound(variant="derived")`` adds
  that term (proof there); the radius R that keeps Eq. 7 at λ0/4 shrinks by the factor
  ``lemma2_flip_factor`` ≤ 1 + 2ε/3 (``radius(variant="derived")``).

The derived chain (``variant="derived"`` everywhere), step by step. Proved here: Lemma 6′,
Eq. 9′, Lemma 4′'s Hoeffding scale, Lemma 2′, Lemma 7′ and the algebra of Eqs. 11′–14′.
Still heuristic: Lemma 4′'s width, Ω(·) taken with constant 1 (Hoeffding on each entry,
|H_ij(0) − H∞_ij| ≤ λ0/(4n) for all n² entries, gives m ≥ 32B²n²log(2n²/δ)/λ0²; the
constant is not carried), and the probability of Theorem 1 (a union of three δ-events).

1. Lemma 6′ (``log_loss_bound``): dL̄/dt ≤ −k·min(1, L̄²/n), k = (1−1/e)²λ0/2, hence
   Eq. 10′: L̄(t) < κ for t > 2(L̄(0) + n/κ)/((1−1/e)²λ0) (``time_needed``).
2. Lemma 2′ (``gram_change_bound``): R′ = R/f, f = ``lemma2_flip_factor`` (``radius``).
3. Eq. 9′: n t X/√m ≤ R′ holds for t ≤ (c/f)δλ0√m/(d^1.5 n³ X) (``time_limit``).
4. Eq. 11′–12′: 1 < 3 ⇔ L̄(0) + n/κ < c′δλ0²√m/(d^1.5 n³ X), c′ = (1−1/e)²c/(2f) = c/(5.005f).
5. Eq. 14′ with Lemma 7′ in its linear form L̄(0) ≤ a + b√m (``lemma7_linear``):
   (c′δλ0²/(d^1.5n³X) − b)√m > a + n/κ, b = √(2/π)·n d ε/δ, which gives the ε bound
   (``epsilon_bound``) and, with Lemma 4′'s width, the width bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.optimize
from .._core.errors import NtkflowError

__all__ = [
    "radius", "flip_probability_bound", "lemma1_eps_condition", "gram_change_bound", "gram_change_trivial_bound",
    "lemma4_width", "loss_bound", "log_loss_bound", "lemma6_gradient_floor", "weight_change_bound", "time_limit",
    "time_needed", "constant_gram_margin", "initial_loss_bound", "lemma7_second_moment", "lemma7_linear", "lemma2_flip_factor",
    "lemma2_flip_term", "epsilon_bound", "width_bound", "input_scale", "constant_gram_loss",
    "lemma6_counterexample", "Lemma6Counterexample", "KAPPA", "LEMMA6_CONSTANT",
]

KAPPA = math.log(2.0)  # κ = log(1 + exp(0)), the loss at zero margin
LEMMA6_CONSTANT = (1 - 1 / math.e) ** 2  # C in |l'(u)| ≥ √C·min(1, l(u)); 2/C = 5.005


def _check_variant(variant, allowed):
    if variant not in allowed:
        raise NtkflowError(f"variant: expected one of {', '.join(map(repr, allowed))}, got {variant!r}")


def _c(xi: float, variant: str = "paper") -> float:
    if variant == "paper":
        return math.sqrt(2 * math.pi) * xi / 384
    if variant == "thesis":
        return math.sqrt(2 * math.pi * xi) / 384
    raise NtkflowError(f"variant: expected 'paper' or 'thesis', got {variant!r}")


def _need(name, value):
    if value is None:
        raise NtkflowError(f"{name}: the derived variant needs {name}")
    return value


def input_scale(X, eps) -> float:
    """X = max_i(‖x_i‖₂ + ε√d): the largest norm of x_i ± ε sign(w) (triangle inequality).

    Every ∂u̲_i/∂w_r has norm ≤ X/√m, every neuron's term in H_ij lies in [−X², X²]. The
    proofs take it as 1 (Lemmas 4, 6, 7), impossible once ε > 1/√d under Assumption 1.
    """
    X = np.asarray(X, dtype=float)
    return float(np.max(np.linalg.norm(X, axis=1)) + eps * math.sqrt(X.shape[1]))


def radius(delta, lambda0, d, n, xi, variant: str = "paper", *, eps=None) -> float:
    """R = c δ λ0 / (d^1.5 n²), c = √(2π) ξ / 384 (Theorem 1, Lemma 5; the appendix A.4 and
    the thesis print c = √(2πξ)/384: ``variant="thesis"``).

    derived (needs ``eps``): R/f, f = ``lemma2_flip_factor(eps, d, xi)``: Lemma 2′ (with the
    sign-flip term) at R/f is at most the printed Eq. 7 at R (proof in ``gram_change_bound``),
    so whatever Lemma 5 gets from Eq. 7 at R it gets from Lemma 2′ at R/f.
    """
    if variant == "derived":
        return radius(delta, lambda0, d, n, xi) / lemma2_flip_factor(_need("eps", eps), d, xi)
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


def gram_change_bound(eps, d, n, R, xi, delta, variant: str = "printed", *, x_inf: float = 1.0) -> float:
    """Bound on ‖H(t) − H(0)‖₂ for all W with max_r ‖w_r − w_r(0)‖₂ ≤ R, w.p. ≥ 1 − δ (Lemma 2).

    printed (Eq. 7): 12 (1+ε)(1+2ε+ε²) d^1.5 n² R / (√(2π) ξ δ), linear in R.
    derived (Lemma 2′): printed + ``lemma2_flip_term`` = printed + 4ε d ‖x‖∞ n² erf(R/√2)/δ,
    ``x_inf`` = max_ik |x_ik| (≤ 1 under Assumption 1).

    Proof of the derived form. With σ_ri = y_i a_r, s_r = sign(w_r) and the indicator
    α_ri ∈ {0, 1} of Sec. 3.4, neuron r contributes T_rij = (1/m) y_i y_j α_ri α_rj ⟨v_ri, v_rj⟩,
    v_ri = x_i − σ_ri ε s_r, to H_ij (Eq. 6). Split T_rij(t) − T_rij(0) into
    (i) [α_ri α_rj](t) − [α_ri α_rj](0) times ⟨v_ri, v_rj⟩(t), at most 1(an indicator of r
    changes)·d(1+ε)² in size (‖v‖ ≤ ‖x‖ + ε√d ≤ (1+ε)√d) — A.2's term, whose expectation
    Lemma 1 bounds by R̃ d(1+ε)²/m; and (ii) [α_ri α_rj](0) times ⟨v_ri, v_rj⟩(t) − ⟨v_ri, v_rj⟩(0)
    = −ε(σ_rj⟨x_i, Δs_r⟩ + σ_ri⟨x_j, Δs_r⟩) (‖s_r‖² = d on both sides, a.s.), which A.2 omits.
    Δs_r has entries ±2 exactly on the N_r coordinates whose sign changed, so
    |(ii)| ≤ 4ε ‖x‖∞ N_r / m. A coordinate can change sign only if |w_rk(0)| ≤
    |w_rk − w_rk(0)| ≤ R, so N_r ≤ #{k: |w_rk(0)| ≤ R} for every W within R (a function of the
    initialization only) and E N_r ≤ d·P(|N(0,1)| ≤ R) = d erf(R/√2). Summing over r and the
    n² entries (‖·‖₂ ≤ Σ_ij |·|) and applying Markov's inequality once to the sum of (i) and
    (ii) gives the bound. Since erf(R/√2) ≤ √(2/π)R, derived(R) ≤ printed(R)·f with
    f = ``lemma2_flip_factor``; hence derived(R/f) ≤ printed(R).
    """
    _check_variant(variant, ("printed", "derived"))
    printed = 12 * (1 + eps) * (1 + 2 * eps + eps**2) * d**1.5 * n**2 * R / (math.sqrt(2 * math.pi) * xi * delta)
    return printed if variant == "printed" else printed + lemma2_flip_term(eps, d, n, R, delta, x_inf=x_inf)


def lemma2_flip_term(eps, d, n, R, delta, *, x_inf: float = 1.0) -> float:
    """4ε d ‖x‖∞ n² erf(R/√2)/δ: Lemma 2′'s sign-flip term (``gram_change_bound``).

    Per entry, the flip part of H_ij(t) − H_ij(0) is at most 4ε‖x‖∞·(1/m)Σ_r N_r, whose
    expectation is at most 4ε‖x‖∞ d P(|w_rk(0)| ≤ R) = 4ε‖x‖∞ d erf(R/√2).
    """
    return 4 * eps * d * x_inf * n**2 * math.erf(R / math.sqrt(2)) / delta


def lemma2_flip_factor(eps, d, xi, *, x_inf: float = 1.0) -> float:
    """f = 1 + 2ε‖x‖∞ξ/(3(1+ε)³√d) ≥ 1: the flip term's slope at R → 0 over Eq. 7's slope, plus 1.

    Lemma 2′ at R/f is at most Eq. 7 at R (``gram_change_bound``); ξ ≤ √d under
    Assumption 1, so f ≤ 1 + 2ε/3.
    """
    return 1 + 2 * eps * x_inf * xi / (3 * (1 + eps) ** 3 * math.sqrt(d))


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
        raise NtkflowError("weight_change_bound: the derived variant needs x_norm_max and d")
    return n * t * (x_norm_max + eps * math.sqrt(d)) / math.sqrt(m)


def time_limit(delta, lambda0, m, d, n, xi, *, x_scale=None, variant: str = "printed", eps=None) -> float:
    """Eq. 9: the time for which the Lemma 6 weight bound stays ≤ R = radius(...).

    printed: c δ λ0 √m / (d^1.5 n³) (from n t/√m ≤ R).
    derived (needs ``x_scale``, ``eps``): c δ λ0 √m / (f d^1.5 n³ X), X = ``x_scale`` =
    max_i(‖x_i‖₂ + ε√d), f = ``lemma2_flip_factor`` (from n t X/√m ≤ R/f, Lemma 2′).
    """
    _check_variant(variant, ("printed", "derived"))
    t = _c(xi) * delta * lambda0 * math.sqrt(m) / (d**1.5 * n**3)
    if variant == "printed":
        return t
    return t / (_need("x_scale", x_scale) * lemma2_flip_factor(_need("eps", eps), d, xi))


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


_L1_SQ = (1 - 2 / math.pi, 2 / math.pi)  # E‖w‖₁² = d(1 − 2/π) + d²(2/π) for w ~ N(0, I_d)


def lemma7_second_moment(x_norm, d, eps, m):
    """M ≥ E u̲_i(0)²: ‖x‖²/4 + ½(‖x‖/√2 + ε s₁)² + (m−1)(2/π)ε²d², s₁² = E‖w‖₁² = d(1−2/π) + 2d²/π.

    Proof. u̲_i(0) = m^{-1/2} Σ_r Z_r with Z_r i.i.d.: with g = w_rᵀx_i ~ N(0, ‖x_i‖²),
    ℓ = ‖w_r‖₁ and s = y_i a_r = ±1 (prob. ½ each, independent of w_r),
    Z = 1(s=1) relu(g − εℓ) − 1(s=−1) relu(g + εℓ) (Eq. 3, ``ibp_lower_margin``). Then
    E u̲² = E Z² + (m−1)(E Z)². (a) 0 ≤ relu(g+εℓ) − relu(g−εℓ) ≤ 2εℓ gives
    |E Z| ≤ ε E ℓ = ε d √(2/π). (b) relu(g − εℓ) ≤ relu(g), E relu(g)² = ‖x‖²/2, and
    relu(g + εℓ) ≤ relu(g) + εℓ with Minkowski give E Z² ≤ ‖x‖²/4 + ½(‖x‖/√2 + ε s₁)².
    Exact at ε = 0 (E u² = ‖x‖²/2).
    """
    x = np.asarray(x_norm, dtype=float)
    s1 = math.sqrt(d * _L1_SQ[0] + d**2 * _L1_SQ[1])
    return x**2 / 4 + 0.5 * (x / math.sqrt(2) + eps * s1) ** 2 + (m - 1) * (2 / math.pi) * eps**2 * d**2


def initial_loss_bound(n, m, d, eps, delta, variant: str = "printed", *, x_norms=None) -> float:
    """Lemma 7: a bound on L̄(0) that holds w.p. ≥ 1 − δ over the initialization.

    printed (constant 1): n√m d ε/δ + n/δ (L(0) ≤ n/δ at ε = 0). Its proof (A.6) does not
    hold: module docstring.
    derived (Lemma 7′, needs ``x_norms`` = (‖x_i‖₂)_i): Σ_i (log 2 + √M_i)/δ,
    M_i = ``lemma7_second_moment(‖x_i‖, d, ε, m)``.

    Proof. l(u) = log(1 + e^{−u}) ≤ log 2 + |u| (for u ≥ 0 l ≤ log 2; for u < 0,
    log(1 + e^{|u|}) ≤ log(2e^{|u|})). So E L̄(0) ≤ Σ_i (log 2 + E|u̲_i(0)|) ≤ Σ_i (log 2 + √M_i)
    (Jensen: E|u| ≤ √(E u²) ≤ √M_i). L̄(0) ≥ 0, so Markov's inequality gives
    P(L̄(0) > E L̄(0)/δ) ≤ δ. One event, no union bound needed.
    """
    _check_variant(variant, ("printed", "derived"))
    if variant == "printed":
        return n * math.sqrt(m) * d * eps / delta + n / delta
    x = np.asarray(_need("x_norms", x_norms), dtype=float)
    if x.shape != (n,):
        raise NtkflowError(f"x_norms: need {n} norms, got shape {x.shape}")
    return float(np.sum(KAPPA + np.sqrt(lemma7_second_moment(x, d, eps, m))) / delta)


def lemma7_linear(n, d, eps, delta, x_max) -> tuple[float, float]:
    """(a, b) with Lemma 7′ ≤ a + b√m for every m: the form Eq. 14′ solves for m.

    √M ≤ √(M at m = 1) + √(m−1)·εd√(2/π) (√(p+q) ≤ √p + √q), and M grows with ‖x‖, so with
    x_max = max_i ‖x_i‖₂: a = n(log 2 + √(M at m = 1, ‖x‖ = x_max))/δ, b = √(2/π) n d ε/δ.
    """
    a = n * (KAPPA + math.sqrt(float(lemma7_second_moment(x_max, d, eps, 1)))) / delta
    return a, math.sqrt(2 / math.pi) * n * d * eps / delta


def _cprime(xi, eps=0.0, d=1) -> float:
    """c′ of Eq. 12′: Eq. 10′ < Eq. 9′ ⇔ L̄(0) + n/κ < c′δλ0²√m/(d^1.5n³X), c′ = (1−1/e)²c/(2f),
    f = ``lemma2_flip_factor`` (f = 1 at ε = 0)."""
    return LEMMA6_CONSTANT * _c(xi) / (2 * lemma2_flip_factor(eps, d, xi))


def epsilon_bound(n, d, delta, lambda0, xi, variant: str = "derived", *, x_scale=None, eps=None) -> float:
    """Theorem 1's bound on ε: min(first term, Lemma 1 condition at R = radius(...)).

    printed: min(δ²λ0²/(d^2.5 n³), √(2d)R/log(√(2πd/R)ξ)) (O(·) constant 1).
    derived (needs ``x_scale`` = X and the ``eps`` being tested, which enters through Lemma
    2′'s factor f ≤ 1 + 2ε/3): min(c′δ²λ0²/(√(2/π) d^2.5 n⁴ X), R′/√(2d log(√(2πd)ξ/R′))) with
    c′ = (1−1/e)²c/(2f) and R′ = R/f: the coefficient of √m in Eq. 14′ with Lemma 7′'s
    b = √(2/π) n d ε/δ (``lemma7_linear``) must be positive. ε meets it iff ε ≤ this value.
    """
    _check_variant(variant, ("printed", "derived"))
    if variant == "printed":
        R = radius(delta, lambda0, d, n, xi)
        return min(delta**2 * lambda0**2 / (d**2.5 * n**3), lemma1_eps_condition(d, R, xi, "printed"))
    e = _need("eps", eps)
    first = (_cprime(xi, e, d) * delta**2 * lambda0**2
             / (math.sqrt(2 / math.pi) * d**2.5 * n**4 * _need("x_scale", x_scale)))
    return min(first, lemma1_eps_condition(d, radius(delta, lambda0, d, n, xi, "derived", eps=e), xi, "derived"))


def width_bound(n, d, delta, lambda0, eps, xi=None, variant: str = "derived", *, x_scale=None) -> float:
    """Theorem 1's width requirement (``inf`` when no width suffices).

    printed: ((d^1.5 n⁴ δ λ0) / (δ²λ0² − ε d^2.5 n⁴))² (Theorem 1, constant 1).
    derived (needs ``xi`` and ``x_scale`` = X): the larger of Eq. 14′ solved for m,
    ((a + n/κ) / (c′δλ0²/(d^1.5 n³ X) − b))² with Lemma 7′'s (a, b) (``lemma7_linear`` at
    max‖x_i‖ = X − ε√d) and c′ = c/(5.005 f), and Lemma 4′'s width B² n² log(n/δ)/λ0², B = X².
    At ε = 0 the first is n⁸d³X²(log 2 + X/√2 + δ/κ)²/(c′²λ0⁴δ⁴), the corollary's
    n⁸d³/(λ0⁴δ⁴) up to X²(log 2 + X/√2 + δ/κ)²/c′².
    """
    _check_variant(variant, ("printed", "derived"))
    if variant == "printed":
        den = delta**2 * lambda0**2 - eps * d**2.5 * n**4
        return math.inf if den <= 0 else (d**1.5 * n**4 * delta * lambda0 / den) ** 2
    xs = _need("x_scale", x_scale)
    a, b = lemma7_linear(n, d, eps, delta, xs - eps * math.sqrt(d))
    den = _cprime(_need("xi", xi), eps, d) * delta * lambda0**2 / (d**1.5 * n**3 * xs) - b
    eq14 = math.inf if den <= 0 else ((a + n / KAPPA) / den) ** 2
    return max(eq14, lemma4_width(n, lambda0, delta, B=xs**2, variant="derived"))


# ----------------------------------------------------------------------------- Lemma 6 refuted
def constant_gram_margin(t, h):
    """u(t) of du/dt = h/(1 + eᵘ), u(0) = 0 (each margin of the flow with H = h·I; exact).

    Separating variables, u + eᵘ = 1 + h t; u is increasing, so u(t) > 0 for every t > 0.
    """
    def u_at(s):
        return 0.0 if s <= 1 else scipy.optimize.brentq(lambda u: u + math.exp(u) - s, 0.0, math.log(s),
                                                         xtol=1e-15, rtol=1e-15)

    return np.vectorize(u_at, otypes=[float])(1 + h * np.asarray(t, dtype=float))


def constant_gram_loss(t, n, h):
    """L̄(t) of the flow du/dt = −H l'(u) with H = h·I and u(0) = 0 (exact).

    Each u_i is ``constant_gram_margin(t, h)``; L̄ = n log(1 + e^{−u}).
    For large t, eᵘ ≈ h t and L̄ ≈ n/(h t): a 1/t decay, below every exponential envelope.
    """
    return n * np.logaddexp(0.0, -constant_gram_margin(t, h))


@dataclass(frozen=True)
class Lemma6Counterexample:
    """A flow meeting every premise of A.5 that leaves Lemma 6's envelope.

    H(t) = (λ0/2)·I (so λmin(H) = λ0/2 for all t), u(0) = 0, L̄(0) = n log 2. For every n
    L̄ exceeds the appendix envelope from just after Eq. 10's time (L̄ decays like 1/t, the
    envelope exponentially); for n ≥ 103 it is still ≥ κ at Eq. 10's time (0.717 at n = 1000,
    → 0.721 as n grows). The training error is nevertheless 0 for every t > 0: each margin
    u_i(t) = ``constant_gram_margin(t, λ0/2)`` > 0 (u + eᵘ = 1 + ht, h > 0). What fails at
    Eq. 10's time is the sufficient test L̄ < κ (which implies every u_i > 0), not the
    conclusion it is used for; L̄ = Σ_i l(u_i) with n equal small margins stays above κ
    long after each u_i is positive.
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
    """Run the constant-Gram flow that refutes Lemma 6 (module docstring; ``Lemma6Counterexample``).

    Along this flow every margin u_i(t) > 0 for t > 0, so the (certified) training error is 0
    from the start; what it refutes is the envelope and the sufficient test L̄ < κ by Eq. 10's
    time, not zero training error.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise NtkflowError(f"n: must be an integer >= 1, got {n!r}")
    if not (isinstance(lambda0, (int, float, np.floating)) and math.isfinite(lambda0) and lambda0 > 0):
        raise NtkflowError(f"lambda0: must be > 0 and finite, got {lambda0!r}")
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
