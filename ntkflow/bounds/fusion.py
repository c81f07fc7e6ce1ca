"""Loss fusion: a certified upper bound of Σ_{j≠y} exp(f_j − f_y) over the ℓ∞ ball with ONE backward row.

The cross-entropy is log(1 + S) with S = Σ_{j≠y} exp(z_j), z_j = f_j − f_y = −(C f)_j for the
margin spec rows C. Unfused, every margin gets its own backward row (K − 1 rows) and the
loss is taken of the lower margins. Fused (auto_LiRPA's ``loss_fusion``, Xu et al. 2020;
CTBench), the exponential is relaxed first and the backward pass bounds the sum:

1. IBP bounds z_j ∈ [l_j, u_j] (the last layer elided with the rows ±C);
2. exp's chord on [l_j, u_j] (exp is convex): exp(z) ≤ e^{l} + k (z − l), k = (e^u − e^l)/(u − l);
3. so S ≤ Σ_j (e^{l_j} − k_j l_j) + max_x Σ_j k_j z_j(x), and the max is one backward pass of
   the row −Σ_j k_j C_j (the spec matrix replaced by the linearization of the objective).

All of it in units of e^M, M = max(0, max_j u_j) (a constant of the gradient: the chord is
scale-equivariant, so the bound does not depend on M), so nothing overflows. With the mix β
of CROWN-IBP the two upper bounds of S are mixed, (1 − β)·Σ_j e^{u_j} + β·(chord bound), as
auto_LiRPA's training example does; the IBP end Σ_j e^{u_j} is the IBP loss's sum exactly.

What holds exactly (tests/test_loss_fusion.py): the bound is sound; ε = 0 gives the clean
sum; β = 0 gives IBP's; with two classes it is the chord over [l, u] evaluated at the
unfused method's upper bound Ū of z, hence NOT equal to the unfused exp(Ū) (it is ≥ it
whenever Ū ≤ u, equal iff Ū ∈ {l, u}); for a one-hidden-layer net (exact intermediate
bounds) the fused max of Σ_j k_j z_j is at most Σ_j k_j Ū_j (a max over one fixed relaxed set
is subadditive), i.e. fusion is never looser than the same chords applied row by row.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from ..nets import inputs as NI
from .engine import MEMORY_BUDGET, METHODS, _map, batch_size, check_beta_branch, check_method, linear_batched, linear_part, skip_at_zero
from .ibp import ibp_intervals
from .ops import affine_back, box_lower

__all__ = ["exp_sum_upper", "exp_sum_one", "exp_chord", "fusion_parts"]


def exp_chord(l, u):
    """(e^l, k): the chord exp(z) ≤ e^l + k (z − l) on [l, u], k = e^l·expm1(u − l)/(u − l) (→ e^l at u = l)."""
    d = u - l
    small = d <= 1e-12
    safe = jnp.where(small, 1.0, d)
    el = jnp.exp(l)
    return el, el * jnp.where(small, 1.0 + d / 2, jnp.expm1(safe) / safe)


def _z_interval(net, params, C, ivals):
    """IBP bounds [l, u] of z = −C f with the last layer elided (rows ±C)."""
    l, u = ivals[len(net.layers) - 1]
    Mw, c = affine_back(net.layers[-1], params[-1], C, l.shape)
    m_lo = box_lower(Mw, c, l, u)
    m_hi = -box_lower(-Mw, -c, l, u)
    return -m_hi, -m_lo


def fusion_parts(net, params, C, lo, hi):
    """IBP's share of the fused bound for one sample: (M, Σ_j e^{u_j − M}, Σ_j (e^{l_j−M} − k_j l_j),
    the fused row (1, K), IBP's intervals at the ReLU inputs)."""
    ivals = ibp_intervals(net, params, lo, hi)
    zl, zu = _z_interval(net, params, C, ivals)
    M = jax.lax.stop_gradient(jnp.maximum(0.0, jnp.max(zu)))
    el, k = exp_chord(zl - M, zu - M)
    row = jnp.einsum("s,sk->k", k, C)[None]  # Σ_j k_j z_j = −row·f
    relus = {i: ivals[i] for i, layer in enumerate(net.layers) if layer.kind == "relu"}
    return M, jnp.sum(jnp.exp(zu - M)), jnp.sum(el - k * zl), row, relus


def exp_sum_one(net, params, C, lo, hi, method: str, beta=None):
    """(M, S̄) for one sample: Σ_j exp(−(C f)_j) ≤ e^M·S̄ over the box [lo, hi]. Internal: valid input."""
    M, ibp_sum, const, row, relus = fusion_parts(net, params, C, lo, hi)
    if METHODS[method].slope is None:
        return M, ibp_sum
    fused = const - linear_part(net, params, row, lo, hi, method, relus)[0]  # chord of exp(z − M) in z
    return M, fused if beta is None else (1 - beta) * ibp_sum + beta * fused


def _over_samples(net, params, C, lo, hi, method: str, beta, batch: int):
    return _map(lambda args: exp_sum_one(net, params, *args, method, beta), (C, lo, hi), batch)


@partial(jax.jit, static_argnames=("method", "batch", "beta_branch"))
def _batched(net, params, C, lo, hi, method: str, beta, batch: int, beta_branch: str = "cond"):
    # as ``engine.bounds_batched``: IBP's share outside, the backward pass in a cond skipped at β = 0
    if METHODS[method].slope is None:
        return _over_samples(net, params, C, lo, hi, method, None, batch)
    M, ibp_sum, const, row, relus = jax.vmap(lambda c, a, b: fusion_parts(net, params, c, a, b))(C, lo, hi)
    lb = lambda: linear_batched(net, params, row, lo, hi, method, relus, batch, MEMORY_BUDGET)[:, 0]  # noqa: E731
    if beta is None:
        return M, const - lb()
    return M, (1 - beta) * ibp_sum + beta * (const - skip_at_zero(beta, jnp.zeros_like(ibp_sum), lb, beta_branch))


def exp_sum_upper(net, params, X, y, eps, method: str = "crown_ibp", *, clip=None, beta=None,
                  beta_branch: str = "cond"):
    """Upper bounds e^M·S̄ of Σ_{j≠y} exp(f_j(x') − f_y(x')) over ‖x' − x‖∞ ≤ ε (∩ ``clip``), fused.

    Returns (M, S̄), each (n,): the fused cross-entropy bound is log(1 + e^M S̄) (for a
    single-output net with ±1 labels, Σ is the one term exp(−y f)). ``method``: a bound of
    ``METHODS`` with a backward pass (its slope rule and intermediate bounds); "ibp" gives
    Σ_j e^{u_j}. ``beta``: CROWN-IBP's mix of the two upper bounds; ``beta_branch``: what is
    known of it (``engine.skip_at_zero``). Differentiable in params.
    """
    check_method(method)
    pb = NI.problem(net, params, X, y, eps, clip)
    beta = NI.unit_float("beta", beta)
    return _batched(net, params, pb.C, pb.lo, pb.hi, method, beta,
                    batch_size(net, pb.X.shape[1:], method, 1, pb.X.shape[0]), check_beta_branch(beta_branch))
