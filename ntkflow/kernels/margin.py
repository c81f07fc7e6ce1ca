"""The Gram matrix H = J Jᵀ of any bound method's lower margins (the empirical NTK of the certified margin).

J is the Jacobian of the lower margins u̲_{ik} (sample i, margin k ≠ y_i) with respect to
the trainable params, rows ordered sample-major (i, k). ``trace=True`` returns the n×n
sum of the diagonal (k, k) blocks, Σ_k ⟨∂u̲_{ik}, ∂u̲_{jk}⟩.

Generic path: H = Σ_blocks J_b J_bᵀ over blocks of parameters — whole leaves, or blocks
of rows of a large weight (output units / channels). A block's Jacobian is taken per
sample by reverse mode with the rest of the weight held fixed (``nets.layers.Patched``),
so no array larger than n(K−1) × (block size) is ever formed and memory stays flat in
the number of parameters. Fast path: the paper's two-layer net with "ibp" is the
structured Eq. 6 (``ntkflow.gram_matrix``), tested equal to this generic path.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..nets import inputs as NI
from .._jax import mmt
from ..bounds.engine import check_method, sample_bounds
from ..paper.gram import gram_matrix
from ..nets.layers import BUFFERS, Patched
from ..nets.zoo import two_layer_weights

__all__ = ["margin_gram", "jacobian_gram", "JACOBIAN_BUDGET"]

JACOBIAN_BUDGET = 1 << 23  # entries of one block's Jacobian (64 MB in float64)


def _replace(params, values: dict):
    """params with params[i][name] = values[(i, name)]."""
    return tuple({**p, **{n: v for (k, n), v in values.items() if k == i}} for i, p in enumerate(params))


@partial(jax.jit, static_argnames=("keys", "method"))
def _group_jacobian(net, params, keys, C, lo, hi, method, beta):
    """J (n, S, P) of the margins w.r.t. the whole leaves ``keys`` ((layer, name) pairs)."""
    def bound(vals, c, l, h):
        return sample_bounds(net, _replace(params, dict(zip(keys, vals))), c, l, h, method, beta)

    vals = tuple(params[i][n] for i, n in keys)
    Js = jax.vmap(jax.jacrev(bound), in_axes=(None, 0, 0, 0))(vals, C, lo, hi)
    return jnp.concatenate([J.reshape(*C.shape[:2], -1) for J in Js], axis=2)


@partial(jax.jit, static_argnames=("i", "name", "size", "method"))
def _rows_jacobian(net, params, i, name, start, size, C, lo, hi, method, beta):
    """J (n, S, size·row) w.r.t. rows [start, start + size) of the weight params[i][name] only."""
    leaf = params[i][name]

    def bound(th, c, l, h):
        return sample_bounds(net, _replace(params, {(i, name): Patched(leaf, th, start)}), c, l, h, method, beta)

    theta = jax.lax.dynamic_slice_in_dim(leaf, start, size)
    J = jax.vmap(jax.jacrev(bound), in_axes=(None, 0, 0, 0))(theta, C, lo, hi)
    return J.reshape(*C.shape[:2], -1)


@partial(jax.jit, static_argnames=("trace",), donate_argnums=(0,))
def _add_gram(H, J, trace: bool):
    if trace:
        return H + jnp.einsum("isp,jsp->ij", J, J, precision=jax.lax.Precision.HIGHEST)
    J = J.reshape(J.shape[0] * J.shape[1], -1)
    return H + mmt(J, J)


def _blocks(params, rows_total: int, budget: int):
    """Parameter blocks whose Jacobians hold at most ``budget`` entries: groups of whole leaves
    (one compiled call each), then row blocks of the weights too large to take whole."""
    group, used = [], 0
    for i, p in enumerate(params):
        for name in sorted(p):
            if name in BUFFERS:  # BatchNorm's running statistics: params, but not trainable
                continue
            size = rows_total * int(np.prod(p[name].shape))
            if size <= budget or name != "weight":
                if group and used + size > budget:
                    yield ("group", tuple(group))
                    group, used = [], 0
                group.append((i, name))
                used += size
                continue
            per_row = int(np.prod(p[name].shape[1:]))
            rows = max(1, budget // (rows_total * per_row))
            for start in range(0, p[name].shape[0], rows):
                yield ("rows", (i, name, start, min(rows, p[name].shape[0] - start)))
    if group:
        yield ("group", tuple(group))


def jacobian_gram(net, params, C, lo, hi, method: str = "ibp", beta=None, *, trace: bool = False,
                  budget: int = JACOBIAN_BUDGET):
    """Generic H = J Jᵀ (internal: validated spec rows C (n, S, K) and input box lo/hi)."""
    n, S = C.shape[:2]
    size = n if trace else n * S
    H = jnp.zeros((size, size), jnp.result_type(lo, *jax.tree_util.tree_leaves(params)))
    for kind, spec in _blocks(params, n * S, budget):
        if kind == "group":
            J = _group_jacobian(net, params, spec, C, lo, hi, method, beta)
        else:
            i, name, start, rows = spec
            J = _rows_jacobian(net, params, i, name, start, rows, C, lo, hi, method, beta)
        H = _add_gram(H, J, trace)
    return H


def margin_gram(net, params, X, y, eps, method: str = "ibp", *, trace: bool = False, clip=None, beta=None,
                budget: int = JACOBIAN_BUDGET):
    """Gram matrix of the lower margins of ``method`` w.r.t. the trainable params.

    Returns (n(K−1), n(K−1)) with rows and columns ordered (i, k) sample-major, or (n, n)
    with ``trace=True`` (the sum of the diagonal (k, k) blocks); (n, n) for a single-output
    net. Symmetric PSD; float64 when x64 is on and the inputs are float64. For the paper's
    two-layer net with "ibp" (no clip, no beta) it is ``ntkflow.gram_matrix`` (Eq. 6).
    ``budget`` caps the entries of one parameter block's Jacobian (memory).
    """
    check_method(method)
    pb = NI.problem(net, params, X, y, eps, clip)
    beta = NI.unit_float("beta", beta)
    if net.tag == "two_layer" and method == "ibp" and clip is None:
        W, a = two_layer_weights(net, params)
        H = gram_matrix(np.asarray(W), np.asarray(a), np.asarray(pb.X), np.asarray(pb.y), pb.eps)
        return jnp.asarray(H, jnp.result_type(pb.X, W))
    return jacobian_gram(net, params, pb.C, pb.lo, pb.hi, method, beta, trace=trace, budget=int(budget))
