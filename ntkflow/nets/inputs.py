"""Boundary validation for the net/bound engine (bounds, attacks, kernels): one-line ValueErrors.

Value checks (finite, labels in range, points inside ``clip``) run on concrete arrays
only, so the engine also works inside ``jax.jit`` / ``jax.grad`` on traced inputs, where
only shapes are checked. Dtypes follow JAX's rules: float64 inputs stay float64 when x64
is enabled; everything else computes in the default float.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate as V
from .._core.errors import NtkflowError
from .base import Net, float_dtype

__all__ = ["Problem", "problem", "concrete", "spec_matrix", "input_box", "check_net", "check_values", "unit_float"]


class Problem(NamedTuple):
    """Validated engine input: X (n, *shape), y as given (validated), spec rows C (n, S, K),
    the input box lo/hi (n, *shape) = [X − ε, X + ε] ∩ clip."""

    X: jax.Array
    y: jax.Array
    C: jax.Array
    lo: jax.Array
    hi: jax.Array
    eps: float


def concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_net(net, params, input_shape, dtype=None) -> None:
    """The net's structure, and the values of concrete params: real numbers, finite, and finite
    in ``dtype`` (the float the engine computes in) — a float32 run of a weight above 3.4e38
    would give inf/NaN bounds with no error."""
    if not isinstance(net, Net):
        raise NtkflowError(f"net: expected an ntkflow.nets.Net, got {type(net).__name__}")
    net.check_params(params, input_shape)
    check_values(params, dtype)


def check_values(params, dtype=None) -> None:
    """One-line ValueError for a concrete parameter that is complex, not numeric, or overflowing."""
    dtype = float_dtype(dtype)
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if not concrete(leaf):
            continue
        name = "params" + jax.tree_util.keystr(path)
        v = np.asarray(leaf)
        if np.iscomplexobj(v):
            raise NtkflowError(f"{name}: complex weights are not supported (the engine's bounds are real)")
        if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)
                or v.dtype == np.bool_):
            raise NtkflowError(f"{name}: expected a real number array, got dtype {v.dtype}")
        # NaN/inf params are not refused here: a diverged run's metrics are computed on them and
        # must come back NaN (recorded as diverged); a finite weight that overflows is refused
        fin = v[np.isfinite(v)] if v.dtype.kind == "f" else v
        with np.errstate(over="ignore", invalid="ignore"):
            if not np.all(np.isfinite(fin.astype(dtype))):
                raise NtkflowError(f"{name}: a weight overflows {dtype} (|w| up to {np.max(np.abs(v)):.3g})")


def _inputs(net, params, X):
    if np.iscomplexobj(X):
        raise NtkflowError("X: complex inputs are not supported (the imaginary part would be dropped)")
    X = jnp.asarray(X)
    if not jnp.issubdtype(X.dtype, jnp.floating):
        X = X.astype(float_dtype())
    if X.ndim < 2 or X.shape[0] == 0:
        raise NtkflowError(f"X: expected (n, *input_shape) with n ≥ 1, got shape {X.shape}")
    if not isinstance(net, Net):
        raise NtkflowError(f"net: expected an ntkflow.nets.Net, got {type(net).__name__}")
    if net.input_shape is not None and tuple(X.shape[1:]) != net.input_shape:
        raise NtkflowError(f"X: per-sample shape {tuple(X.shape[1:])} does not match the net's input {net.input_shape}")
    check_net(net, params, X.shape[1:], X.dtype)
    if concrete(X) and not np.all(np.isfinite(np.asarray(X))):
        raise NtkflowError("X: contains NaN or inf")
    return X


def _labels(net, y, n):
    y = jnp.asarray(y)
    if y.shape != (n,):
        raise NtkflowError(f"y: expected {n} labels (shape ({n},)), got shape {y.shape}")
    if not concrete(y):
        return y
    v = np.asarray(y)
    if net.num_outputs == 1:
        if not np.all(np.abs(v) == 1):
            raise NtkflowError(f"y: a single-output net needs labels ±1, got values {np.unique(v)[:5].tolist()}")
    elif not (np.all(v == np.round(v)) and v.min() >= 0 and v.max() < net.num_outputs):
        raise NtkflowError(f"y: class labels must be integers in [0, {net.num_outputs}), "
                         f"got values {np.unique(v)[:5].tolist()}")
    return y


def spec_matrix(y, K: int, dtype):
    """Margin spec rows (n, S, K): e_y − e_j for j ≠ y in increasing order (S = K − 1), or
    [[y]] for a single-output net with ±1 labels (S = 1)."""
    if K == 1:
        return y.astype(dtype)[:, None, None]
    yi = y.astype(jnp.int32)
    others = jnp.arange(K - 1)[None, :] + (jnp.arange(K - 1)[None, :] >= yi[:, None])
    return (jax.nn.one_hot(yi, K, dtype=dtype)[:, None, :] - jax.nn.one_hot(others, K, dtype=dtype))


def unit_float(name: str, v, *, allow_none: bool = True):
    """None, a tracer, or a float in [0, 1]."""
    if v is None and allow_none:
        return None
    if not concrete(v):
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise NtkflowError(f"{name}: must be a number in [0, 1], got {v!r}") from None
    if not 0.0 <= f <= 1.0:
        raise NtkflowError(f"{name}: must be in [0, 1], got {f}")
    return f


def _clip(clip, X):
    if clip is None:
        return None
    try:
        c0, c1 = (float(c) for c in clip)
    except (TypeError, ValueError):
        raise NtkflowError(f"clip: must be a pair (low, high) of numbers, got {clip!r}") from None
    if not (np.isfinite(c0) and np.isfinite(c1) and c0 < c1):
        raise NtkflowError(f"clip: needs finite low < high, got {clip!r}")
    if concrete(X) and (np.any(np.asarray(X) < c0) or np.any(np.asarray(X) > c1)):
        raise NtkflowError(f"X: has points outside clip=({c0}, {c1})")
    return c0, c1


def input_box(X, eps, clip):
    """[X − ε, X + ε] ∩ [clip₀, clip₁] elementwise."""
    lo, hi = X - eps, X + eps
    if clip is not None:
        lo, hi = jnp.maximum(lo, clip[0]), jnp.minimum(hi, clip[1])
    return lo, hi


@partial(jax.jit, static_argnames=("K", "clip"))
def _prepare(X, y, eps, K, clip):
    # One compiled call instead of a dozen eager ops (each new shape of which compiles).
    return (spec_matrix(y, K, X.dtype), *input_box(X, eps, clip))


def problem(net, params, X, y, eps, clip=None) -> Problem:
    """Validate (net, params, X, y, ε, clip) once; build the spec rows and the input box."""
    X = _inputs(net, params, X)
    y = _labels(net, y, X.shape[0])
    eps = V.eps_value(eps) if concrete(eps) else eps
    c = _clip(clip, X)
    C, lo, hi = _prepare(X, y, eps, net.num_outputs, c)
    return Problem(X, y, C, lo, hi, eps)
