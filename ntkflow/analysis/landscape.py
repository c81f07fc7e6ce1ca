"""Loss-landscape measures: fan2021's sandwich (Eq. 4), lee2021's smoothness measures (Sec. 4.1,
Fig. 1 right) and the relaxed gradient approximation of the two-layer net (lee2021 Def. 1, Sec. 5).

The per-sample loss is ``ntkflow.objectives.base.margin_loss``, L(m) = log(1 + Σ_j exp(−m_j))
of margins m_j = f_y − f_j (the logistic loss of y·f for a single-output net). It is strictly
decreasing in every margin and 1-Lipschitz in the ℓ∞ norm of the margins (its gradient is
−softmax without the 0 entry, whose ℓ1 norm is < 1): a margin error δ moves it by < δ.

- ``sandwich``: L(f(x_adv)) ≤ max_{x'} L(f(x')) ≤ L(certified lower margins), per sample,
  with the middle term from exact MILP margins (``exact_class_margins``) and its violations.
- ``loss_variation``, ``gradient_change``: lee2021's zeroth- and first-order non-smoothness
  measures (after Santurkar et al. 2018), as pure functions of a loss / of two gradients.
- ``relaxed_linear``, ``relaxed_gradient_norm``: g and ‖∇_w g‖ of lee2021 Sec. 5 for the
  paper's two-layer net.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate as V
from .._core.errors import NtkflowError
from .._jax import HIGHEST, mmt, tree_distance, x64
from ..attacks import pgd
from ..bounds import clean_margins, exact_margin, margin_bounds
from ..bounds.engine import check_method
from ..bounds.linear import relu_relaxation
from ..nets import Dense, Net
from ..nets import inputs as NI
from ..objectives.base import as_columns, margin_loss

__all__ = ["Sandwich", "sandwich", "sandwich_violations", "exact_class_margins", "ClassMargins",
           "LossVariation", "loss_variation", "GradientChange", "gradient_change",
           "RelaxedGradient", "relaxed_linear", "relaxed_gradient_norm"]


# ============================================================================ fan2021 Eq. 4
class ClassMargins(NamedTuple):
    """Exact per-class robust margins m*_j = min_{x' ∈ ball} (f_y − f_j)(x'), (n, S) each, columns
    as in ``margin_bounds`` (j ≠ y increasing; one column for a single-output net).
    ``margin``: the MILP optimum (an upper bound of m*_j where not ``optimal``); ``lower``: its
    proven lower bound (dual bound); ``optimal`` (n, S) bool."""

    margin: np.ndarray
    lower: np.ndarray
    optimal: np.ndarray


@x64
def exact_class_margins(net, params, X, y, eps, *, clip=None, time_limit: float = 60.0,
                        max_neurons: int = 1000) -> ClassMargins:
    """Exact robust margin of every class pair separately, by MILP (``exact_margin``), small nets only.

    ``exact_margin`` gives min_j m*_j; the sandwich needs each m*_j. Each pair (c, j) is the
    single-output net ``net`` followed by a frozen Dense row e_c − e_j, solved with label +1:
    n·(K − 1) MILPs in all.
    """
    pb = NI.problem(net, params, X, y, eps, clip)
    X, eps = np.asarray(pb.X, np.float64), pb.eps
    if net.num_outputs == 1:
        ex = exact_margin(net, params, X, np.asarray(pb.y), eps, clip=clip, time_limit=time_limit,
                          max_neurons=max_neurons)
        return ClassMargins(ex.margin[:, None], ex.lower[:, None], (ex.status == "optimal")[:, None])
    K, yv = net.num_outputs, np.asarray(pb.y).astype(int)
    shape = (X.shape[0], K - 1)
    margin, lower, optimal = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, bool)
    for i, c in enumerate(yv):
        for s, j in enumerate(k for k in range(K) if k != c):
            spec = np.zeros((1, K))
            spec[0, c], spec[0, j] = 1.0, -1.0
            pair = Net(tuple(net.layers) + (Dense(1, K, bias=False, fixed=jnp.asarray(spec)),),
                       input_shape=net.input_shape, names=tuple(net.names) + ("spec",))
            # One sample per call: every call has the same shapes, so the engine compiles once.
            ex = exact_margin(pair, tuple(params) + ({},), X[i:i + 1], np.ones(1), eps, clip=clip,
                              time_limit=time_limit, max_neurons=max_neurons)
            margin[i, s], lower[i, s], optimal[i, s] = ex.margin[0], ex.lower[0], ex.status[0] == "optimal"
    return ClassMargins(margin, lower, optimal)


class Sandwich(NamedTuple):
    """Per-sample losses of fan2021 Eq. 4, (n,) float64 each, and the check.

    ``loss_adv`` = L(f(x_adv)), x_adv the PGD point; ``loss_max`` = L(m*) of the exact per-class
    margins; ``loss_max_dual`` = L of the MILP's proven lower margins (= ``loss_max`` up to the
    MILP gap where optimal); ``loss_bound`` = L(certified lower margins of ``bound``);
    ``exact`` (n,) bool: ``loss_max`` is max_{x'} L exactly (one margin and MILP optimal);
    ``violations``: samples failing ``sandwich_violations`` at tolerance ``tol``.
    """

    loss_adv: np.ndarray
    loss_max: np.ndarray
    loss_max_dual: np.ndarray
    loss_bound: np.ndarray
    exact: np.ndarray
    violations: int
    tol: float


def sandwich_violations(loss_adv, loss_max, loss_max_dual, loss_bound, tol: float = 1e-6):
    """(n,) bool: L_adv > L_max_dual + tol·(1 + |L_max_dual|) or L_max > L_bound + tol·(1 + |L_bound|).

    Valid whatever the MILP status: L(margin found) ≤ L(m*) ≤ L(proven lower margins), and
    L(f(x_adv)) ≤ max L ≤ L(m*) ≤ L(bound). A violation is a bug in the bound, the attack's
    feasibility or the MILP.
    """
    la, lm, ld, lb = (np.asarray(v, np.float64) for v in (loss_adv, loss_max, loss_max_dual, loss_bound))
    return (la > ld + tol * (1 + np.abs(ld))) | (lm > lb + tol * (1 + np.abs(lb)))


@x64
def sandwich(net, params, X, y, eps, *, steps: int = 40, restarts: int = 2, seed: int = 0, clip=None,
             bound: str | Callable = "ibp", tol: float = 1e-6, time_limit: float = 60.0) -> Sandwich:
    """fan2021 Eq. 4 per sample: L(f(x_adv)) ≤ max_{x' ∈ ball} L(f(x')) ≤ L(−m̲), small nets only.

    Args:
        net, params, X (n, *input_shape), y (n,), eps, clip: as in ``margin_bounds``.
        steps, restarts, seed: the PGD attack (``ntkflow.attacks.pgd``), which minimizes the
            smallest margin (Carlini–Wagner), not L itself; x_adv is any point of the ball, so
            L(f(x_adv)) — with ALL margins at x_adv — is a valid left side either way.
        bound: a method of ``ntkflow.bounds.METHODS`` (fan2021 prints IBP), or a callable
            ``bound(net, params, X, y, eps, clip) -> (n, S) lower margins`` (tests use a wrong one).
        tol: relative tolerance of the check. The MILP (HiGHS, feasibility and integrality
            tolerance 1e-6, big-M) returns margins correct to about 1e-6 times the scale of the
            pre-activation bounds; L is 1-Lipschitz in the margins, so the same tolerance applies
            to the losses. Measured on 180 random tiny nets (two-layer and 3-class MLPs, 6
            samples, ε ∈ {0.02, 0.1, 0.3}, IBP and CROWN): L_adv − L_max ≤ 5e-16 and
            L_max − L_bound ≤ 8e-10, so 1e-6 leaves three orders of magnitude.
        time_limit: seconds per MILP.
    Returns:
        ``Sandwich``.

    Which inequalities are exact. With one margin (a single-output net, or K = 2) L is a
    decreasing function of it, so max_{x'} L = L(min_{x'} m) = ``loss_max`` exactly. With
    K > 2 classes the worst-case loss max_{x'} log(1 + Σ_j exp(−m_j(x'))) is not a function of
    the per-class minima: the minimizers of different m_j differ. Since L decreases in every
    m_j and m_j(x') ≥ m*_j, L(m*) ≥ max_{x'} L — ``loss_max`` is then an UPPER bound of the
    worst-case loss (the tightest one any per-class margin analysis gives), and the chain
    checked is L(f(x_adv)) ≤ max L ≤ L(m*) ≤ L(m̲), each step a theorem; the true worst-case
    loss lies in [loss_adv, loss_max] and is not computed (maximizing a convex function of the
    logits over the ReLU net's ball is not a MILP). fan2021 writes the right side as
    L(−m̲_IBP) (the logits −m̲ with f_y = 0), which is ``margin_loss(m̲)``.
    """
    params = jax.tree_util.tree_map(lambda v: jnp.asarray(v, jnp.float64), params)
    pb = NI.problem(net, params, np.asarray(X, np.float64), y, eps, clip)
    tol = V.positive_float("tol", tol)
    if isinstance(bound, str):
        check_method(bound)
        lower = margin_bounds(net, params, pb.X, pb.y, pb.eps, bound, clip=clip)
    elif callable(bound):
        lower = bound(net, params, pb.X, pb.y, pb.eps, clip)
    else:
        raise NtkflowError(f"bound: must be a bound method name or a callable, got {type(bound).__name__}")
    lower, want = as_columns(jnp.asarray(lower)), (pb.X.shape[0], max(1, net.num_outputs - 1))
    if lower.shape != want:
        raise NtkflowError(f"bound: returned margins of shape {lower.shape}, expected {want}")
    x_adv, _ = pgd(net, params, pb.X, pb.y, pb.eps, steps=steps, restarts=restarts, seed=seed, clip=clip)
    ex = exact_class_margins(net, params, pb.X, pb.y, pb.eps, clip=clip, time_limit=time_limit)
    losses = [np.asarray(margin_loss(jnp.asarray(v))) for v in
              (clean_margins(net, params, x_adv, pb.y), ex.margin, ex.lower, lower)]
    bad = sandwich_violations(*losses, tol=tol)
    exact = ex.optimal.all(axis=1) & (ex.margin.shape[1] == 1)
    return Sandwich(*losses, exact, int(bad.sum()), tol)


# ============================================================================ lee2021 Sec. 4.1
def _tree_pair(a, b, name_b: str):
    ta, tb = jax.tree_util.tree_structure(a), jax.tree_util.tree_structure(b)
    if ta != tb:
        raise NtkflowError(f"{name_b}: pytree structure {tb} does not match {ta}")
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    for u, v in zip(la, lb):
        if np.shape(u) != np.shape(v):
            raise NtkflowError(f"{name_b}: a leaf of shape {np.shape(v)} where {np.shape(u)} is expected")
    return la, lb


class LossVariation(NamedTuple):
    """``values`` (k,): L(θ − η_i d) on the grid; ``low``/``high``: their min and max (the shaded
    band of lee2021 Fig. 1 left); ``variation`` = high − low (Fig. 1 right, top). NaN if any
    value is not finite (a diverged run)."""

    values: jax.Array
    low: jax.Array
    high: jax.Array
    variation: jax.Array


@x64
def loss_variation(loss_fn, params, direction, steps) -> LossVariation:
    """Loss variation along a direction (lee2021 Sec. 4.1, "zeroth-order smoothness", after
    Santurkar et al. 2018): the range of L(θ − η·d) over the step sizes η ∈ ``steps``.

    Args:
        loss_fn: params ↦ scalar loss, JAX-traceable; evaluated once per step size (a short
            grid: a ``lax.map`` would compile the loss anew for every new ``loss_fn`` closure,
            which the trainer builds at every record).
        params: the pytree θ. direction: a pytree d of the same structure — lee2021 use the
            loss gradient ∇L(θ) at the current step, unnormalized.
        steps: 1-D step sizes η (include 0 for the current loss to be in the band).
    Departs from the print: lee2021 state the measure in words only (the grid of η is in their
    Appendix A, which our copy of the paper lacks); the grid here is the caller's, and the
    loss is whatever ``loss_fn`` is — for Fig. 1, the method's loss at the scheduled ε_t.
    """
    etas = V.array("steps", steps, 1)
    if etas.shape[0] == 0:
        raise NtkflowError("steps: needs at least one step size")
    _tree_pair(params, direction, "direction")

    def at(eta):
        return jnp.asarray(loss_fn(jax.tree_util.tree_map(lambda p, d: p - eta * d, params, direction))).reshape(())

    vals = jnp.stack([at(eta) for eta in etas])
    ok = jnp.all(jnp.isfinite(vals))
    low, high = (jnp.where(ok, v, jnp.nan) for v in (jnp.min(vals), jnp.max(vals)))
    return LossVariation(vals, low, high, high - low)


class GradientChange(NamedTuple):
    """``l2`` = ‖g − g_prev‖₂; ``cosine_distance`` = 1 − ⟨g_prev, g⟩/(‖g_prev‖‖g‖) ∈ [0, 2]
    (NaN when either gradient is 0: the angle is undefined)."""

    l2: jax.Array
    cosine_distance: jax.Array


@x64
def gradient_change(g_prev, g) -> GradientChange:
    """ℓ2 and cosine distance between two gradient pytrees (lee2021 Fig. 1 right, middle and bottom).

    lee2021 measure them between "two consecutive loss gradients" during training; Eq. 5
    motivates the ℓ2 one as ‖∇L^ε(θ_{t+1}) − ∇L^ε(θ_t)‖ ≈ ‖H u_t‖ (Theorem 1), i.e. both
    gradients of the same loss (same ε, same data). This function is the distance only: which
    two gradients are compared is the caller's (for Eq. 5, evaluate both on one fixed batch
    at one ε; consecutive minibatch gradients add the minibatch noise to the measure).
    """
    la, lb = _tree_pair(g_prev, g, "g")
    l2, dist = tree_distance([jnp.asarray(v) for v in la], [jnp.asarray(v) for v in lb])  # the trainers' formula
    return GradientChange(l2, jnp.clip(dist, 0.0, 2.0))


# ============================================================================ lee2021 Def. 1, Sec. 5
def _slopes(l, u, method: str):
    """(a̲, b̲, ā, b̄): relu(z) ≥ a̲ z + b̲ and ≤ ā z + b̄ on [l, u] for the method's relaxation.
    IBP is lee2021's zero-slope relaxation (Sec. 3.2): h̲ = l⁺, h̄ = u⁺."""
    slope = check_method(method).slope
    if slope is None:
        zero = jnp.zeros_like(l)
        return zero, jax.nn.relu(l), zero, jax.nn.relu(u)
    al, su, bu = relu_relaxation(l, u, slope)
    return al, jnp.zeros_like(l), su, bu


@partial(jax.jit, static_argnames=("method",))
def _relaxed(W, a, X, y, eps, method):
    m = W.shape[0]
    z = mmt(X, W)  # (n, m) pre-activations w_rᵀx
    rad = eps * jnp.sum(jnp.abs(W), axis=1)[None, :]
    al, bl, su, bu = _slopes(z - rad, z + rad, method)
    w = -y[:, None] * a[None, :] / jnp.sqrt(m)  # output weights of the margin score s = −y·f
    wp, wn = jnp.maximum(w, 0), jnp.minimum(w, 0)
    g = jnp.matmul(wp * su + wn * al, W, precision=HIGHEST)  # Wᵀ(a̲ ⊙ w⁻ + ā ⊙ w⁺), (n, d)
    b = jnp.sum(wp * bu + wn * bl, axis=1)
    D = jnp.where(w < 0, al, su)  # diag of ∇_w g = Wᵀ diag(a̲ ⊙ 1[w < 0] + ā ⊙ 1[w ≥ 0])
    return g, b, D, al, su


class RelaxedGradient(NamedTuple):
    """Per sample, (n,) each. ``jac_spectral`` / ``jac_frobenius``: ‖∇_w g‖ (the quantity lee2021
    Sec. 5 bounds) in the spectral and Frobenius norms; ``jac_bound``: their right side
    ‖Wᵀ‖₂(‖a̲‖₂ + ‖ā‖₂); ``g_dual``: ‖g‖₁, the dual norm in Eq. 2 (the bound's ε‖g‖₁)."""

    jac_spectral: np.ndarray
    jac_frobenius: np.ndarray
    jac_bound: np.ndarray
    g_dual: np.ndarray


@x64
def relaxed_linear(W, a, X, y, eps, method: str = "crown_ibp"):
    """``(g (n, d), b (n,))``: the relaxed gradient approximation of lee2021 Def. 1 (Eq. 2) of the
    paper's two-layer net: the margin score s(x') = −y·f(x') ≤ gᵀx' + b on the ℓ∞ ball, so
    max s ≤ gᵀx + ε‖g‖₁ + b, which is minus ``margin_bounds(..., method)``.

    Sec. 5: with s = wᵀh(Wx) (here w = −y·a/√m, no biases), g = Wᵀ(a̲ ⊙ w⁻ + ā ⊙ w⁺) and
    b = Σ_r w_r⁺ b̄_r + w_r⁻ b̲_r, with the relaxation of ``method``: IBP is the zero-slope one
    (g = 0, b̄ = u⁺, b̲ = l⁺); the others use ``ntkflow.bounds.linear.relu_relaxation``. The
    first-layer bounds l, u are exact, so "crown" = "crown_ibp", "cap" = "cap_ibp" here.
    """
    check_method(method)
    W, a, X, y, eps = V.problem(W, a, X, y, eps)
    g, b, *_ = _relaxed(*(jnp.asarray(v) for v in (W, a, X, y)), eps, method=method)
    return np.asarray(g), np.asarray(b)


@jax.jit
def _jac_norms(W, D):
    m, d = W.shape

    def spectral(Dn):
        A = W * Dn[:, None]  # (∇_w g)ᵀ, (m, d)
        G = jnp.matmul(A.T, A, precision=HIGHEST) if m >= d else mmt(A, A)
        return jnp.sqrt(jnp.maximum(jnp.linalg.eigvalsh(G)[-1], 0.0))

    fro = jnp.sqrt(jnp.matmul(D**2, jnp.sum(W**2, axis=1), precision=HIGHEST))
    return jax.lax.map(spectral, D), fro


@x64
def relaxed_gradient_norm(W, a, X, y, eps, method: str = "crown_ibp") -> RelaxedGradient:
    """‖∇_w g^(m)‖ of lee2021 Sec. 5 for the paper's two-layer net, per sample, and its bound.

    Sec. 5 (text between Eqs. 6 and 7): for s = wᵀh(Wx + b) + b, g = Wᵀ(a̲ ⊙ w⁻ + ā ⊙ w⁺) and
    ‖∇_w g‖ = ‖Wᵀ diag(a̲ ⊙ 1[w < 0] + ā ⊙ 1[w ≥ 0])‖ ≤ ‖Wᵀ‖(‖a̲‖ + ‖ā‖) — the first term of
    Theorem 2's Eq. 6, 2ε‖∇_θ g‖, for θ = the output weights w. The slopes depend on the
    first-layer bounds l, u only, not on w, so the printed Jacobian is exact (a.e.): checked
    against autodiff through the bound engine in the tests. No slip in the formula; the bound
    is loose (slopes lie in [0, 1], so ‖∇_w g‖₂ ≤ ‖W‖₂ already, while ‖a̲‖₂ + ‖ā‖₂ reaches
    2√m); it holds in the spectral and the Frobenius norm, both returned.

    A probable slip upstream, in Eq. 6 (not implemented here): ∇_θ of the ε‖g‖₁ term of
    Eq. 2 is ε(∇_θ g)ᵀ sign(g), whose ℓ2 norm is bounded by ε‖∇_θ g‖₂·‖sign(g)‖₂ ≤ ε√d‖∇_θ g‖₂,
    so Eq. 6's first term 2ε‖∇_θ g‖ lacks a factor √d for ℓ∞ balls unless ‖∇_θ g‖ is the
    ℓ∞→ℓ2 operator norm (the proof, Appendix F, is not in our copy of the paper).

    Departs from the print: in the paper's net (wang2022 Eq. 1) w = −y·a/√m is FROZEN; the
    trainable θ is W, and ∇_W g (which also moves the slopes) is not computed here. ∇ with
    respect to a is ∇_w g times 1/√m. ``method`` chooses a̲, ā (IBP: both 0, so all zero).
    """
    check_method(method)
    W, a, X, y, eps = V.problem(W, a, X, y, eps)
    Wj = jnp.asarray(W)
    g, _, D, al, su = _relaxed(Wj, *(jnp.asarray(v) for v in (a, X, y)), eps, method=method)
    spec, fro = _jac_norms(Wj, D)
    bound = np.linalg.norm(W, 2) * (np.linalg.norm(np.asarray(al), axis=1) + np.linalg.norm(np.asarray(su), axis=1))
    return RelaxedGradient(np.asarray(spec), np.asarray(fro), bound, np.asarray(jnp.sum(jnp.abs(g), axis=1)))
