"""Backward linear relaxation (CROWN, Zhang et al. 2018) with a choice of ReLU lower slope, one sample.

A ReLU h = relu(z) with pre-activation bounds l ≤ z ≤ u is enclosed by two lines
(lee2021 Sec. 3, with v⁺ = max(v, 0), v⁻ = min(v, 0)):

    upper  h ≤ ā (z − l⁻),  ā = u⁺/(u⁺ − l⁻)       (exact on stable neurons: 1 or 0)
    lower  h ≥ a̲ z,         a̲ from the slope rule:
        "adaptive"  1[u⁺ + l⁻ > 0]   (CROWN, CROWN-IBP: slope 1 iff u > −l)
        "cap"       u⁺/(u⁺ − l⁻)     (Wong & Kolter's CAP: the upper slope)
        "zero"      1[l ≥ 0]         (0 on unstable neurons: lee2021's (p, q) = (0, 0))

A linear function A·z of the logits is pushed back layer by layer — through an affine
layer by its transpose, through a ReLU by the lower line where A ≥ 0 and the upper
line where A < 0 — to a linear function of the input, minimized in closed form over the
box. The pre-activation bounds (l, u) come either from IBP ("ibp": CROWN-IBP) or from
this same backward pass applied to every hidden node in turn ("backward": CROWN, CAP),
seeded by IBP as auto_LiRPA does: a neuron IBP proves stable keeps IBP's bounds (its
relaxation is already exact), an unstable one gets the backward bound intersected with
IBP's interval (both are sound, so is their intersection; never looser than IBP).
``bounds.sparse`` computes the same bounds for a batch, running the unstable neurons only.

Vocabulary: lee2021 calls IBP itself the zero-slope method (ā = a̲ = 0 with intercepts
u⁺ and l⁺); here "zero" means the CROWN upper line with lower slope 0, i.e. lee2021's
(p, q) = (0, 0) variant, and IBP is method "ibp".
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._core.errors import NtkflowError
from .ibp import ibp_intervals
from .ops import affine_back, batchnorm_back, box_lower

__all__ = ["SLOPES", "register_slope", "relu_relaxation", "backward", "preactivation_bounds", "linear_margin_one",
           "backward_cost", "refine_with_ibp"]


def _adaptive(l, u, su):
    return (jax.nn.relu(u) + jnp.minimum(l, 0) > 0).astype(su.dtype)


def _cap(l, u, su):
    return su


def _zero(l, u, su):
    return (l >= 0).astype(su.dtype)


#: Lower-slope rules: name → rule(l, u, ā) -> a̲. A rule is sound for any a̲ ∈ [0, 1] on an
#: unstable neuron (l < 0 < u: relu(z) ≥ a̲z there) and must give the exact 1 / 0 on stable ones.
SLOPES = {"adaptive": _adaptive, "cap": _cap, "zero": _zero}


def register_slope(name: str, rule) -> None:
    """Add a lower-slope rule ``rule(l, u, upper_slope) -> lower_slope`` (a bound method names it)."""
    if not isinstance(name, str) or name in SLOPES or not callable(rule):
        raise NtkflowError(f"slope: {name!r} must be a new name with a callable rule")
    SLOPES[name] = rule


def relu_relaxation(l, u, slope: str):
    """(a̲, ā, b̄): h ≥ a̲ z and h ≤ ā z + b̄ on [l, u]; stable neurons get the exact line."""
    up, lm = jax.nn.relu(u), jnp.minimum(l, 0)
    den = up - lm
    pos = den > 0
    su = jnp.where(pos, up / jnp.where(pos, den, 1), 0)  # l = u = 0: the neuron is 0, slope 0
    bu = -su * lm
    if slope not in SLOPES:
        raise NtkflowError(f"slope: must be one of {', '.join(SLOPES)}, got {slope!r}")
    return SLOPES[slope](l, u, su), su, bu


def backward(net, params, A, t: int, relax: dict, shapes: list):
    """Rewrite A·(node t) as A₀·x + c: returns (A₀ (S, *input shape), c (S,))."""
    const = jnp.zeros(A.shape[0], A.dtype)
    for i in reversed(range(t)):
        layer = net.layers[i]
        if layer.kind == "affine":
            A, c = affine_back(layer, params[i], A, shapes[i])
            const = const + c
        elif layer.kind == "relu":
            al, su, bu = relax[i]
            An = jnp.minimum(A, 0)
            const = const + jnp.sum((An * bu).reshape(A.shape[0], -1), axis=1)
            A = jnp.maximum(A, 0) * al + An * su
        elif layer.kind == "reshape":
            A = A.reshape((A.shape[0], *shapes[i]))
        elif layer.kind == "batchnorm":
            A, c = batchnorm_back(layer, params[i], A)
            const = const + c
        else:
            raise NotImplementedError(f"backward: no rule for layer kind {layer.kind!r} "
                                      f"({type(layer).__name__}); add one in ntkflow/bounds/linear.py")
    return A, const


def _exact_by_ibp(net, i: int) -> bool:
    # No ReLU and a single affine layer before node i: the interval of an affine map of a
    # box is exact, and IBP gives it for a fraction of the backward pass's cost.
    kinds = [layer.kind for layer in net.layers[:i]]
    return "relu" not in kinds and kinds.count("affine") <= 1


def refine_with_ibp(l, u, lb, ub):
    """IBP's (l, u) on the neurons it proves stable, its interval ∩ [lb, ub] on the others."""
    unstable = (l < 0) & (u > 0)
    return jnp.where(unstable, jnp.maximum(l, lb), l), jnp.where(unstable, jnp.minimum(u, ub), u)


def preactivation_bounds(net, params, lo, hi, intermediate: str, slope: str) -> dict:
    """{i: (l, u)} for the input node of every ReLU layer i, by "ibp" or "backward" (seeded by
    IBP: ``refine_with_ibp``), one sample; every neuron's rows run (the reference ``sparse`` equals)."""
    shapes = net.shapes(lo.shape)
    relus = [i for i, layer in enumerate(net.layers) if layer.kind == "relu"]
    ivals = ibp_intervals(net, params, lo, hi)
    if intermediate == "ibp":
        return {i: ivals[i] for i in relus}
    bounds, relax = {}, {}
    for i in relus:
        if _exact_by_ibp(net, i):
            bounds[i] = ivals[i]
        else:
            n = int(np.prod(shapes[i]))
            dt = ivals[i][0].dtype
            eye = jnp.eye(n, dtype=dt).reshape((n, *shapes[i]))
            A, c = backward(net, params, jnp.concatenate([eye, -eye]), i, relax, shapes)
            v = box_lower(A, c, lo, hi)
            bounds[i] = refine_with_ibp(*ivals[i], v[:n].reshape(shapes[i]), -v[n:].reshape(shapes[i]))
        relax[i] = relu_relaxation(*bounds[i], slope)
    return bounds


def linear_margin_one(net, params, C, lo, hi, intermediate: str, slope: str, bounds=None):
    """Lower bound of C·f(x) over [lo, hi] for one sample by the backward relaxation, (S,)."""
    shapes = net.shapes(lo.shape)
    if bounds is None:
        bounds = preactivation_bounds(net, params, lo, hi, intermediate, slope)
    relax = {i: relu_relaxation(l, u, slope) for i, (l, u) in bounds.items()}
    A, c = backward(net, params, C, len(net.layers), relax, shapes)
    return box_lower(A, c, lo, hi)


def backward_cost(net, input_shape, intermediate: str, rows: int) -> int:
    """Entries of the largest A matrix one sample needs (sets the batch size that fits memory)."""
    shapes = net.shapes(input_shape)
    sizes = [int(np.prod(s)) for s in shapes]
    cost = rows * max(sizes)
    if intermediate == "backward":
        for i, layer in enumerate(net.layers):
            if layer.kind == "relu" and not _exact_by_ibp(net, i):
                cost = max(cost, 2 * sizes[i] * max(sizes[: i + 1]))
    return cost
