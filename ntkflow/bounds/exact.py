"""The exact robust margin of a small ReLU net: min over the ball of min_j (f_y − f_j), by MILP.

Big-M encoding (Tjeng et al. 2019) of h = relu(z) with sound pre-activation bounds l ≤ z ≤ u:
stable neurons are linear (h = z if l ≥ 0, h = 0 if u ≤ 0); an unstable one gets a binary δ and

    h ≥ z,  h ≥ 0,  h ≤ u·δ,  h ≤ z − l·(1 − δ).

The bounds are the intersection of CROWN's and IBP's (both sound; exact in the first
layer), widened by 1e-9·(1 + |bound|) so float rounding cannot cut off a feasible point.
One MILP per (sample, class) is solved by scipy's HiGHS ``milp``; classes are taken in
order of increasing clean margin and a class is skipped once its CROWN lower bound is
at least the smallest margin already found (it cannot hold the minimum).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from ..nets import inputs as NI
from .. import _validate as V
from .._core.errors import NtkflowError
from .._jax import x64
from .engine import sample_bounds
from .linear import preactivation_bounds
from .ops import unknown_kind

__all__ = ["ExactMargin", "exact_margin", "relu_count"]


class ExactMargin(NamedTuple):
    """``margin``: the exact robust margin where ``status`` is "optimal" (else the smallest
    margin found, an upper bound); ``lower``: a proven lower bound (the MILP dual bound).
    Each (n,) float64; ``status`` (n,) of "optimal" / "time_limit"."""

    margin: np.ndarray
    lower: np.ndarray
    status: np.ndarray


def relu_count(net, input_shape) -> int:
    shapes = net.shapes(input_shape)
    return int(sum(np.prod(shapes[i]) for i, layer in enumerate(net.layers) if layer.kind == "relu"))


@partial(jax.jit, static_argnames=("input_shape",))
def _affine_matrices(net, params, input_shape):
    """{i: (dense matrix (out, in) of layer i's linear map, flattened bias (out,))}."""
    shapes, mats = net.shapes(input_shape), {}
    for i, layer in enumerate(net.layers):
        if layer.kind != "affine":
            continue
        W, s_in = layer.weight(params[i]), shapes[i]
        eye = jnp.eye(int(np.prod(s_in)), dtype=jnp.float64)
        M = jax.vmap(lambda e: layer.linear(W, e.reshape(s_in)).reshape(-1))(eye).T  # noqa: B023
        b = layer.bias_full(params[i], None)
        mats[i] = (M, jnp.zeros(M.shape[0]) if b is None else jnp.broadcast_to(b, shapes[i + 1]).reshape(-1))
    return mats


@jax.jit
def _sound_bounds(net, params, C, lo, hi):
    """Per sample: CROWN and IBP pre-activation bounds, and CROWN's margin bounds (for pruning)."""
    def one(C, lo, hi):
        return (preactivation_bounds(net, params, lo, hi, "backward", "adaptive"),
                preactivation_bounds(net, params, lo, hi, "ibp", None),
                sample_bounds(net, params, C, lo, hi, "crown"))
    return jax.vmap(one)(C, lo, hi)


class _Model:
    """Rows of a MILP in COO form: variables are appended block by block."""

    def __init__(self, lo, hi):
        self.lb, self.ub, self.integ = np.asarray(lo, float).copy(), np.asarray(hi, float).copy(), np.zeros(lo.size)
        self.rows, self.cols, self.vals, self.rlo, self.rhi = [], [], [], [], []
        self.nr = 0

    @property
    def nv(self) -> int:
        return len(self.lb)

    def new(self, lb, ub, integer=False):
        idx = np.arange(self.nv, self.nv + len(lb))
        self.lb, self.ub = np.concatenate([self.lb, lb]), np.concatenate([self.ub, ub])
        self.integ = np.concatenate([self.integ, np.full(len(lb), 1.0 if integer else 0.0)])
        return idx

    def tighten(self, idx, l, u):
        self.lb[idx], self.ub[idx] = np.maximum(self.lb[idx], l), np.minimum(self.ub[idx], u)

    def add(self, terms, lo, hi):
        """Rows lo ≤ Σ coef·x[var] ≤ hi; ``terms`` = [(var (k,), coef (k,) or (k, m) matrix)]."""
        k = len(terms[0][0]) if np.ndim(terms[0][1]) < 2 else np.shape(terms[0][1])[0]
        r = np.arange(self.nr, self.nr + k)
        for var, coef in terms:
            coef = np.asarray(coef, float)
            if coef.ndim == 2:
                rr, cc = np.nonzero(coef)
                self.rows.append(r[rr]), self.cols.append(var[cc]), self.vals.append(coef[rr, cc])
            else:
                self.rows.append(r), self.cols.append(var), self.vals.append(np.broadcast_to(coef, (k,)))
        self.rlo.append(np.broadcast_to(lo, (k,))), self.rhi.append(np.broadcast_to(hi, (k,)))
        self.nr += k

    def relu(self, z, l, u):
        """Output variables of relu(z) with bounds l ≤ z ≤ u (big-M on unstable neurons)."""
        h = self.new(np.maximum(l, 0), np.maximum(u, 0))
        act, uns = l >= 0, (l < 0) & (u > 0)
        if act.any():
            self.add([(h[act], 1.0), (z[act], -1.0)], 0.0, 0.0)
        if uns.any():
            d = self.new(np.zeros(uns.sum()), np.ones(uns.sum()), integer=True)
            hu, zu, lu, uu = h[uns], z[uns], l[uns], u[uns]
            self.add([(hu, 1.0), (zu, -1.0)], 0.0, np.inf)  # h ≥ z
            self.add([(hu, 1.0), (d, -uu)], -np.inf, 0.0)  # h ≤ u δ
            self.add([(hu, 1.0), (zu, -1.0), (d, -lu)], -np.inf, -lu)  # h ≤ z − l (1 − δ)
        return h

    def solve(self, obj_vars, obj, time_limit, gap):
        c = np.zeros(self.nv)
        c[obj_vars] = obj
        A = sp.csr_array((np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
                         shape=(self.nr, self.nv))
        return milp(c, constraints=LinearConstraint(A, np.concatenate(self.rlo), np.concatenate(self.rhi)),
                    integrality=self.integ, bounds=Bounds(self.lb, self.ub),
                    options={"time_limit": time_limit, "mip_rel_gap": gap, "disp": False})


def _build(net, mats, bounds, lo, hi):
    """The MILP of one sample; returns the model and the indices of the logit variables."""
    model = _Model(lo.reshape(-1), hi.reshape(-1))
    cur = np.arange(lo.size)
    for i, layer in enumerate(net.layers):
        if layer.kind == "affine":
            M, b = mats[i]
            z = model.new(np.full(len(b), -np.inf), np.full(len(b), np.inf))
            model.add([(z, np.eye(len(b))), (cur, -M)], b, b)
            cur = z
        elif layer.kind == "relu":
            l, u = (np.asarray(v, float).reshape(-1) for v in bounds[i])
            pad = 1e-9 * (1 + np.maximum(np.abs(l), np.abs(u)))
            l, u = l - pad, u + pad
            model.tighten(cur, l, u)
            cur = model.relu(cur, l, u)
        elif layer.kind != "reshape":  # a reshape leaves the flattened variables as they are
            raise unknown_kind(layer, "exact_margin", "ntkflow/bounds/exact.py (_build)")
    return model, cur


def _solve_sample(net, mats, bounds, lo, hi, C, crown, clean, time_limit, gap):
    """(margin, lower, optimal) of one sample over its spec rows."""
    model, logits = _build(net, mats, bounds, lo, hi)
    best, lower, optimal = np.inf, np.inf, True
    for s in np.argsort(clean):
        if crown[s] >= best:
            lower = min(lower, crown[s])
            continue
        res = model.solve(logits, C[s], time_limit, gap)
        dual = getattr(res, "mip_dual_bound", None)
        dual = dual if dual is not None and np.isfinite(dual) else None
        if res.status == 0:
            best = min(best, res.fun)
            lower = min(lower, res.fun if dual is None else dual)
        elif res.status == 1:
            optimal = False
            best = min(best, res.fun if res.x is not None else clean[s])
            lower = min(lower, crown[s] if dual is None else max(dual, crown[s]))
        else:
            raise RuntimeError(f"exact_margin: HiGHS returned status {res.status} ({res.message}) on a feasible MILP")
    return best, min(lower, best), optimal


@x64
def exact_margin(net, params, X, y, eps, *, clip=None, time_limit: float = 60.0, max_neurons: int = 1000,
                 mip_rel_gap: float = 1e-9) -> ExactMargin:
    """Exact robust margin min_{x' ∈ B∞(x, ε) ∩ clip} min_j (f_y − f_j)(x') of each sample, by MILP.

    For small nets only: a net with more than ``max_neurons`` ReLU neurons is refused
    (ValueError); a MILP that hits ``time_limit`` seconds gives status "time_limit" with the
    best margin found and a proven lower bound. For a single-output net with ±1 labels the
    margin is y·f. Computed in float64.
    """
    params = jax.tree_util.tree_map(lambda v: jnp.asarray(v, jnp.float64), params)
    pb = NI.problem(net, params, np.asarray(X, np.float64), y, eps, clip)
    time_limit = V.positive_float("time_limit", time_limit)
    shape = tuple(pb.X.shape[1:])
    count = relu_count(net, shape)
    if count > V.positive_int("max_neurons", max_neurons):
        raise NtkflowError(f"net: exact_margin is for small nets; this one has {count} ReLU neurons "
                         f"> max_neurons={max_neurons} (raise max_neurons to try anyway)")
    mats = jax.tree_util.tree_map(np.asarray, _affine_matrices(net, params, shape))
    crown_b, ibp_b, crown = jax.tree_util.tree_map(np.asarray, _sound_bounds(net, params, pb.C, pb.lo, pb.hi))
    clean = np.einsum("nsk,nk->ns", np.asarray(pb.C), np.asarray(net.apply(params, pb.X)).reshape(len(pb.X), -1))
    out = []
    for k in range(pb.X.shape[0]):
        bounds = {i: (np.maximum(crown_b[i][0][k], ibp_b[i][0][k]), np.minimum(crown_b[i][1][k], ibp_b[i][1][k]))
                  for i in crown_b}
        out.append(_solve_sample(net, mats, bounds, np.asarray(pb.lo[k]), np.asarray(pb.hi[k]), np.asarray(pb.C[k]),
                                 crown[k], clean[k], time_limit, mip_rel_gap))
    m, lo, ok = (np.array(v) for v in zip(*out))
    return ExactMargin(m.astype(float), lo.astype(float), np.where(ok, "optimal", "time_limit"))
