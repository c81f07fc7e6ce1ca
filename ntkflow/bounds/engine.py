"""``margin_bounds``: certified lower bounds of the margins f_y − f_j over the ℓ∞ ball, by method.

A method is (ReLU lower-slope rule, source of the pre-activation bounds); see
``ntkflow.bounds.linear`` for the rules and the lee2021 vocabulary clash.

| method            | output layer                 | hidden pre-activation bounds |
|-------------------|------------------------------|------------------------------|
| "ibp"             | interval (last layer elided) | IBP                          |
| "crown_ibp"       | backward, adaptive slope     | IBP        (Zhang et al. 2020) |
| "crown"           | backward, adaptive slope     | backward, adaptive           |
| "cap"             | backward, a̲ = ā              | backward, a̲ = ā (Wong & Kolter) |
| "crown_zero"      | backward, a̲ = 0 on unstable  | backward, a̲ = 0              |
| "cap_ibp"         | backward, a̲ = ā              | IBP        (lee2021 "CAP-IBP", Fig. 3) |
| "crown_ibp_zero"  | backward, a̲ = 0 on unstable  | IBP        (lee2021 (p, q) = (0, 0)) |

"backward" intermediate bounds are seeded by IBP (a neuron IBP proves stable keeps IBP's
bounds, an unstable one gets the backward bound ∩ IBP's interval) and computed for a whole
batch by ``sparse``: only the IBP-unstable neurons' rows run, chunked within ``memory_budget``.

``beta`` mixes (1 − β)·IBP + β·method (lee2021 Eq. 3, CROWN-IBP's β). Every bound is
differentiable in params (the slopes' dependence on l, u included, as in CROWN-IBP).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..nets import inputs as NI
from .._core.errors import NtkflowError
from ..paper import model as two_layer_model
from ..nets.zoo import two_layer_weights
from .ibp import ibp_intervals, ibp_margin_one
from .linear import SLOPES, backward_cost, linear_margin_one
from .sparse import backward_intervals

__all__ = ["Method", "METHODS", "register", "margin_bounds", "sample_bounds", "bounds_batched", "check_method",
           "batch_size", "clean_margins"]


@dataclass(frozen=True)
class Method:
    """A bound method: ``slope`` — the ReLU lower-slope rule of the backward pass (a key of
    ``linear.SLOPES``; None: pure IBP) — and ``intermediate`` — where the pre-activation
    bounds come from ("ibp": IBP, as CROWN-IBP; "backward": the backward pass itself, as CROWN)."""

    slope: str | None
    intermediate: str


METHODS = {
    "ibp": Method(None, "ibp"),
    "crown_ibp": Method("adaptive", "ibp"),
    "crown": Method("adaptive", "backward"),
    "cap": Method("cap", "backward"),
    "crown_zero": Method("zero", "backward"),
    "cap_ibp": Method("cap", "ibp"),
    "crown_ibp_zero": Method("zero", "ibp"),
}

MEMORY_BUDGET = 1 << 25  # entries of the per-batch A matrices of a backward pass (~128 MB in float32)


def register(name: str, method: Method) -> Method:
    """Add the bound method ``name`` (its slope rule registered first: ``linear.register_slope``).
    ``margin_bounds(..., name)`` and every metric and objective taking a bound then accept it;
    ``ntkflow.objectives.register(name, objectives.certified(name))`` makes it a training method."""
    if not isinstance(name, str) or not name.isidentifier() or name in METHODS:
        raise NtkflowError(f"bound: {name!r} must be a new identifier (registered: {', '.join(METHODS)})")
    if not isinstance(method, Method) or method.intermediate not in ("ibp", "backward") or (
            method.slope is not None and method.slope not in SLOPES):
        raise NtkflowError(f"bound: {name!r} needs a Method with intermediate 'ibp'/'backward' and a slope of "
                         f"{', '.join(SLOPES)} (or None)")
    METHODS[name] = method
    return method


def check_method(method: str) -> Method:
    if method not in METHODS:
        raise NtkflowError(f"method: unknown bound method {method!r}; choose one of {', '.join(METHODS)}")
    return METHODS[method]


def sample_bounds(net, params, C, lo, hi, method: str, beta=None):
    """Lower bounds of C·f over [lo, hi] for ONE sample, (S,). Internal: valid input."""
    if METHODS[method].slope is None:
        return ibp_margin_one(net, params, C, lo, hi)
    ibp, relus = ibp_part(net, params, C, lo, hi)
    lin = linear_part(net, params, C, lo, hi, method, relus)
    return lin if beta is None else (1 - beta) * ibp + beta * lin


def batch_size(net, input_shape, method: str, rows: int, n: int) -> int:
    """Samples per vmapped batch so the final backward pass's A matrices stay within MEMORY_BUDGET
    (backward intermediate bounds are chunked over neurons by ``sparse`` instead)."""
    m = METHODS[method]
    if m.slope is None:
        return n
    return int(max(1, min(n, MEMORY_BUDGET // max(1, backward_cost(net, input_shape, "ibp", rows)))))


def _map(fn, args, batch: int):
    """``fn`` over the leading axis of ``args``: one vmap, or ``lax.map`` in batches of ``batch``."""
    if batch >= jax.tree_util.tree_leaves(args)[0].shape[0]:
        return jax.vmap(fn)(args)
    return jax.lax.map(fn, args, batch_size=batch)


def _over_samples(net, params, C, lo, hi, method: str, beta, batch: int):
    return _map(lambda args: sample_bounds(net, params, *args, method, beta), (C, lo, hi), batch)


def ibp_part(net, params, C, lo, hi):
    """(IBP margin bounds (S,), {i: (l, u)} at every ReLU's input) for one sample."""
    ivals = ibp_intervals(net, params, lo, hi)
    relus = {i: ivals[i] for i, layer in enumerate(net.layers) if layer.kind == "relu"}
    return ibp_margin_one(net, params, C, lo, hi, intervals=ivals), relus


def linear_part(net, params, C, lo, hi, method: str, relus: dict):
    """The backward bound of ``method`` for one sample, (S,); ``relus``: IBP's intervals (used
    when the method's intermediate bounds are IBP's)."""
    m = METHODS[method]
    if m.intermediate == "ibp":
        return linear_margin_one(net, params, C, lo, hi, "ibp", m.slope, bounds=relus)
    return linear_margin_one(net, params, C, lo, hi, m.intermediate, m.slope)


BETA_BRANCHES = ("cond", "zero", "mix")


def check_beta_branch(branch) -> str:
    if branch not in BETA_BRANCHES:
        raise NtkflowError(f"beta_branch: unknown {branch!r}; choose one of {', '.join(BETA_BRANCHES)}")
    return branch


def skip_at_zero(beta, zeros, backward, branch: str = "cond"):
    """``backward()``, or ``zeros`` when β = 0.

    ``branch`` says what the caller knows of β when the step is traced: "cond" (nothing: one
    ``lax.cond`` for the whole batch — a per-sample cond inside a vmap would lower to a select
    that runs both branches), "zero" (β = 0: ``zeros``, no backward pass is traced) or "mix"
    (β > 0: ``backward()`` with no cond around it). A host loop that reads β off the schedule
    compiles one step per known branch: on XLA:CPU a DM-small CROWN-IBP step at β = 0 costs
    2.46× an IBP step behind the cond and 1.17× with "zero" (benchmarks/RESULTS.md 12e); at
    β > 0 "mix" measured no faster than the cond. The value is the cond's in every case (the
    caller multiplies by β)."""
    if branch == "zero":
        return zeros
    if branch == "mix":
        return backward()
    return jax.lax.cond(beta == 0, lambda: zeros, backward)


def linear_batched(net, params, C, lo, hi, method: str, relus: dict, batch: int, budget: int):
    """The backward bounds of ``method`` for a batch, (n, S). ``relus``: IBP's ReLU-input intervals
    (n, ...); a method with backward intermediate bounds replaces them by ``sparse.backward_intervals``
    (the IBP-unstable neurons only, chunked within ``budget`` entries)."""
    m = METHODS[method]
    if m.intermediate == "backward":
        relus = backward_intervals(net, params, lo, hi, m.slope, budget)
    one = lambda a: linear_margin_one(net, params, a[0], a[1], a[2], "ibp", m.slope, bounds=a[3])  # noqa: E731
    return _map(one, (C, lo, hi, relus), batch)


@partial(jax.jit, static_argnames=("method", "batch", "budget", "beta_branch"))
def bounds_batched(net, params, C, lo, hi, method: str, beta, batch: int, budget: int = MEMORY_BUDGET,
                   beta_branch: str = "cond"):
    """``sample_bounds`` over the leading axis of (C, lo, hi): the final backward pass ``batch``
    samples at a time, backward intermediate bounds for the whole batch (``sparse``).

    With a mix β (traced: it follows the schedule inside the training scan) the IBP pass runs
    for the whole batch outside any control flow, and only the backward pass sits in a
    ``lax.cond`` that skips it at β = 0: the step then costs an IBP step, and the value
    (1 − 0)·IBP + 0·0 is IBP's exactly (its gradient too). ``beta_branch``: ``skip_at_zero``'s."""
    if METHODS[method].slope is None:
        return _over_samples(net, params, C, lo, hi, method, None, batch)
    ibp, relus = jax.vmap(lambda c, a, b: ibp_part(net, params, c, a, b))(C, lo, hi)
    lin = lambda: linear_batched(net, params, C, lo, hi, method, relus, batch, budget)  # noqa: E731
    if beta is None:
        return lin()
    return (1 - beta) * ibp + beta * skip_at_zero(beta, jnp.zeros_like(ibp), lin, beta_branch)


def margin_bounds(net, params, X, y, eps, method: str = "ibp", *, clip=None, beta=None, memory_budget=None,
                  beta_branch: str = "cond"):
    """Lower bounds of the margins f_y(x') − f_j(x') over ‖x' − x‖∞ ≤ ε (∩ the box ``clip``).

    Args:
        net, params: an ``ntkflow.nets.Net`` and its params.
        X: (n, *input_shape) inputs. y: (n,) integer classes, or ±1 for a single-output net.
        eps: the radius ε. method: a key of ``METHODS``. clip: optional (low, high) input box.
        beta: optional mix (1 − β)·IBP + β·method, β ∈ [0, 1].
        memory_budget: entries (floats) a chunk of backward intermediate rows may hold
            (default ``MEMORY_BUDGET``, 2²⁵ ≈ 128 MB in float32); smaller: more, smaller chunks.
        beta_branch: what is known of a traced β: "cond" (nothing), "zero" (β = 0), "mix"
            (β > 0); see ``skip_at_zero``. The values are the same; only the compiled step differs.
    Returns:
        (n, K − 1) bounds, columns j ≠ y in increasing order; (n,) bounds of y·f for a
        single-output net. A JAX array, differentiable in params; float64 when x64 is on and
        the inputs are float64. For the paper's two-layer net with "ibp" (no clip)
        this is ``ntkflow.ibp_lower_margin`` (dispatched to its closed form).

    Vocabulary: lee2021 calls IBP itself the "zero-slope" relaxation; here "crown_zero" is
    the CROWN upper line with lower slope 0 on unstable neurons (lee2021's (p, q) = (0, 0)).
    """
    check_method(method)
    pb = NI.problem(net, params, X, y, eps, clip)
    beta = NI.unit_float("beta", beta)
    check_beta_branch(beta_branch)
    budget = MEMORY_BUDGET if memory_budget is None else _budget(memory_budget)
    if net.tag == "two_layer" and method == "ibp" and clip is None:
        W, a = two_layer_weights(net, params)
        return two_layer_model.ibp_lower_margin_raw(W, a, pb.X, pb.y.astype(pb.X.dtype), pb.eps)
    S = pb.C.shape[1]
    out = bounds_batched(net, params, pb.C, pb.lo, pb.hi, method, beta,
                         batch_size(net, pb.X.shape[1:], method, S, pb.X.shape[0]), budget, beta_branch)
    return out[:, 0] if net.num_outputs == 1 else out


def _budget(v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise NtkflowError(f"memory_budget: must be a positive integer (entries), got {v!r}")
    return int(v)


def clean_margins(net, params, X, y):
    """The margins f_y − f_j at the points themselves (same layout as ``margin_bounds``)."""
    pb = NI.problem(net, params, X, y, 0.0)
    out = jnp.einsum("nsk,nk->ns", pb.C, net.apply(params, pb.X).reshape(pb.X.shape[0], -1),
                     precision=jax.lax.Precision.HIGHEST)
    return out[:, 0] if net.num_outputs == 1 else out
