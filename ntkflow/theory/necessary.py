"""Lower bounds that any training path must obey: how far the weights must move and how fast
the loss can fall. Where Theorem 1's formulas (``formulas``) say what suffices, these say what
is necessary; they hold for the paper's two-layer net under the IBP margin u̲ (Eq. 3) and the
summed logistic loss L̄ = Σ_i l(u̲_i), l(u) = log(1 + e^{−u}), with a_r = ±1 fixed.

Two facts carry everything:

(G) ‖∂u̲_i/∂w_r‖ ≤ X/√m with X = max_i(‖x_i‖₂ + ε√d) (``formulas.input_scale``): the
    derivative is m^{−1/2}·1[active]·(x_i ∓ ε sign(w_r)) (a Clarke subgradient where a weight
    is 0 or an indicator flips, with sign ∈ [−1, 1] — same norm bound). With |l′| ≤ 1,
    ‖∂L̄/∂w_r‖ ≤ Σ_i |l′(u̲_i)|·X/√m ≤ nX/√m.
(L) |l′(u)| = 1/(1 + e^u) ≤ l(u) for every u: with s = e^{−u} > 0 this is s/(1+s) ≤ log(1+s),
    true since both vanish at s = 0 and the derivatives are 1/(1+s)² ≤ 1/(1+s).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.optimize
from .._core.errors import NtkflowError

__all__ = ["path_length_lower_bound", "loss_lower_envelope", "initial_loss_lower_bound", "route_eps_threshold",
           "IBP_GAP_CONSTANT"]

_KAPPA = math.log(2.0)  # κ = l(0); ``formulas.KAPPA`` is the same number (this module imports nothing above it)

#: c in E u̲_i(0) ≤ −√m·c·ε·d: c = √(2/π)/4 (``initial_loss_lower_bound``).
IBP_GAP_CONSTANT = math.sqrt(2 / math.pi) / 4


def _positive(name, value, strict=True):
    v = float(value)
    if not math.isfinite(v) or (v <= 0 if strict else v < 0):
        raise NtkflowError(f"{name}: must be {'positive' if strict else 'non-negative'} and finite, got {value!r}")
    return v


def path_length_lower_bound(loss0, kappa, n, x_scale, m) -> float:
    """The mean path length (1/m)Σ_r ∫₀^T ‖dw_r/dt‖ dt any path needs to bring L̄ from L̄(0) to κ.

    Args:
        loss0: L̄(0), the summed IBP loss at the start of the path.
        kappa: the target loss κ (``formulas.KAPPA`` = log 2 certifies every training point).
        n: number of training points.
        x_scale: X = max_i(‖x_i‖₂ + ε√d).
        m: width.

    Returns:
        max(0, (L̄(0) − κ)/(nX√m)).

    Proof. Along any absolutely continuous path w(t) (gradient flow or not),
    dL̄/dt = Σ_r ⟨∂L̄/∂w_r, dw_r/dt⟩ ≥ −(nX/√m)Σ_r ‖dw_r/dt‖ by (G) and Cauchy–Schwarz, so
    L̄(0) − L̄(T) ≤ (nX/√m)·Σ_r ∫‖dw_r/dt‖; divide by m and use L̄(T) ≤ κ.

    With L̄(0) ≈ n√m·ε·E‖w‖₁/2 (``initial_loss_lower_bound`` for a rigorous floor) the bound
    tends to a width-independent ε·E‖w‖₁/(2X) at fixed ε > 0: IBP training is not lazy.
    """
    loss0, kappa = _positive("loss0", loss0, strict=False), _positive("kappa", kappa)
    n, x_scale, m = _positive("n", n), _positive("x_scale", x_scale), _positive("m", m)
    return max(0.0, (loss0 - kappa) / (n * x_scale * math.sqrt(m)))


def loss_lower_envelope(loss0, lambda_max, t):
    """L̄(t) ≥ L̄(0)/(1 + Λ·L̄(0)·t) along the gradient flow, Λ ≥ sup_{s ≤ t} λmax(H(s)).

    Args:
        loss0: L̄(0).
        lambda_max: Λ, an upper bound on λmax(H(s)) over the interval (H of Eq. 6).
        t: time(s), array-like, ≥ 0.

    Returns:
        The envelope at each t (same shape as t).

    Proof. dL̄/dt = −l′ᵀH l′ ≥ −Λ‖l′‖² ≥ −Λ Σ_i l_i² ≥ −Λ L̄² by (L) and l_i ≥ 0, so
    d(1/L̄)/dt ≤ Λ and 1/L̄(t) ≤ 1/L̄(0) + Λt. The loss therefore cannot fall
    exponentially while Λ·L̄·t is large: from L̄(0) ∝ n√m ε it decays at most like 1/(Λt),
    against the "linear rate" of the abstract; Lemma 6′ (``formulas.log_loss_bound``,
    derived) is the matching upper envelope.
    """
    loss0, lambda_max = _positive("loss0", loss0), _positive("lambda_max", lambda_max, strict=False)
    t = np.asarray(t, dtype=float)
    if np.any(~np.isfinite(t)) or np.any(t < 0):
        raise NtkflowError("t: must be finite and non-negative")
    return loss0 / (1.0 + lambda_max * loss0 * t)


def initial_loss_lower_bound(n, m, d, eps) -> float:
    """E L̄(0) ≥ n·l(−c·ε·d·√m), c = √(2/π)/4, at w_r ~ N(0, I_d), a_r = ±1 uniform.

    Proof. Write z = w·x, e = ε‖w‖₁ ≥ 0. Neuron r contributes m^{−1/2}relu(z − e) to u̲_i when
    y_i a_r = +1 and −m^{−1/2}relu(z + e) when y_i a_r = −1, so over a_r
    E u̲_i = −(√m/2)·E[relu(z + e) − relu(z − e)]. For z ≥ 0, relu(z + e) − relu(z − e) ≥ e
    (relu(z − e) ≤ z); for z < 0 it is ≥ 0. Since w ↦ −w keeps e and flips z,
    E[e·1(z ≥ 0)] = E[e]/2 = ε d √(2/π)/2, hence E u̲_i ≤ −√m ε d √(2/π)/4. l is convex and
    decreasing, so E l(u̲_i) ≥ l(E u̲_i) ≥ l(−c ε d √m) (Jensen). At ε = 0 this is nκ.
    """
    n, m, d = _positive("n", n), _positive("m", m), _positive("d", d)
    eps = _positive("eps", eps, strict=False)
    v = IBP_GAP_CONSTANT * eps * d * math.sqrt(m)
    return n * (v + math.log1p(math.exp(-v)))  # l(−v) = v + log(1 + e^{−v}), stable for large v


def route_eps_threshold(R, x_scale, n, d, m=None, kappa=_KAPPA) -> float:
    """The largest ε at which the paper's proof route (every ∫‖dw_r/dt‖ ≤ R) can hold on average.

    The route (Lemma 5 through Lemma 6's weight bound) keeps every neuron's path length ≤ R, so
    the mean path length must be ≤ R; by ``path_length_lower_bound`` in expectation and
    ``initial_loss_lower_bound``, that needs n·l(−cεd√m) − κ ≤ R·nX√m. The left side grows
    in ε, so this is ε ≤ ε_route(m); as m → ∞ it tends to the width-free R·X/(c·d)
    (``m=None``), c = √(2/π)/4. A necessary condition for the route, not for convergence.

    Returns:
        ε_route (0 where even ε = 0 violates it, which happens only when R·nX√m < n log 2 − κ).
    """
    R, x_scale = _positive("R", R, strict=False), _positive("x_scale", x_scale)
    n, d = _positive("n", n), _positive("d", d)
    if m is None:
        return R * x_scale / (IBP_GAP_CONSTANT * d)
    m = _positive("m", m)
    budget = R * n * x_scale * math.sqrt(m) + kappa

    def excess(eps):
        return initial_loss_lower_bound(n, m, d, eps) - budget

    if excess(0.0) > 0:
        return 0.0
    hi = max(budget / (IBP_GAP_CONSTANT * d * math.sqrt(m) * n), 1e-300)
    while excess(hi) <= 0:  # l(−v) ≥ v makes this terminate within a few doublings
        hi *= 2
    return float(scipy.optimize.brentq(excess, 0.0, hi, xtol=1e-15, rtol=1e-12))
