"""The one place that turns bad input into a one-line ``ValueError``.

Every public function validates here, once, before calling jitted internals.
The messages name the argument and the problem; they never leak a JAX traceback.
Finite inputs whose products would overflow float64 are refused here too, by a bound
(``preactivation_scale``, ``gram_scale``), naming the input that is too large.
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np

from ._core.errors import NtkflowError
from ._jax import row_norms, to_device

__all__ = [
    "array",
    "eps_value",
    "labels",
    "output_weights",
    "positive_int",
    "positive_float",
    "seed",
    "flag",
    "row_l1",
    "weights",
    "preactivation_scale",
    "gram_scale",
    "finite_result",
    "problem",
    "device_problem",
    "data",
]

#: Largest seed: ``jax.random.PRNGKey`` takes a signed 64-bit integer (numpy's generators
#: take any, but one seed means the same draws everywhere).
SEED_MAX = 2**63 - 1
#: Headroom under the largest float64 (≈ 1.8e308) for the few sums and products that follow a bound.
_LIMIT = float(np.finfo(np.float64).max) / 16


def _fail(msg: str) -> None:
    raise NtkflowError(msg)


def array(name: str, x: Any, ndim: int, *, dtype=np.float64, finite: bool = True) -> np.ndarray:
    """``x`` as a real, finite float array with ``ndim`` dimensions.

    ``finite=False`` leaves the pass over the values to the caller (``weights`` does it
    through the row norms it needs anyway).
    """
    if np.iscomplexobj(x):  # numpy would drop the imaginary part with only a warning
        _fail(f"{name}: is complex; ntkflow needs real numbers")
    try:
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError):
        _fail(f"{name}: cannot be read as a numeric array")
    if arr.ndim != ndim:
        _fail(f"{name}: expected {ndim} dimension(s), got shape {arr.shape}")
    if arr.size == 0:
        _fail(f"{name}: is empty (shape {arr.shape})")
    if finite:
        _finite(name, arr)
    return arr


def _finite(name: str, arr: np.ndarray) -> None:
    if not np.all(np.isfinite(arr)):
        bad = "NaN" if np.isnan(arr).any() else "inf"
        _fail(f"{name}: contains {bad}")


def _pm1(name: str, x: Any, what: str) -> np.ndarray:
    arr = array(name, x, 1)
    if not np.all(np.abs(arr) == 1.0):
        vals = np.unique(arr)[:5]
        _fail(f"{name}: {what} must be +1 or -1, got values {vals.tolist()}")
    return arr


def labels(y: Any, n: int | None = None) -> np.ndarray:
    """Labels in {-1, +1} of length ``n``."""
    arr = _pm1("y", y, "labels")
    if n is not None and arr.shape[0] != n:
        _fail(f"y: has {arr.shape[0]} labels but X has {n} rows")
    return arr


def output_weights(a: Any, m: int) -> np.ndarray:
    """Second-layer weights in {-1, +1} of length ``m``."""
    arr = _pm1("a", a, "output weights")
    if arr.shape[0] != m:
        _fail(f"a: has {arr.shape[0]} entries but W has {m} rows")
    return arr


def eps_value(eps: Any) -> float:
    """A perturbation radius in [0, 1]."""
    try:
        e = float(eps)
    except (TypeError, ValueError):
        _fail(f"eps: must be a number in [0, 1], got {eps!r}")
    if not (0.0 <= e <= 1.0):  # also rejects NaN
        _fail(f"eps: must be in [0, 1], got {e}")
    return e


def positive_int(name: str, v: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer >= ``minimum`` (and <= ``maximum``)."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        else:
            _fail(f"{name}: must be an integer >= {minimum}, got {v!r}")
    if v < minimum:
        _fail(f"{name}: must be >= {minimum}, got {v}")
    if maximum is not None and v > maximum:
        _fail(f"{name}: must be <= {maximum}, got {v}")
    return int(v)


def seed(v: Any, name: str = "seed") -> int:
    """A random seed: an integer in [0, 2⁶³ − 1] (what ``jax.random.PRNGKey`` accepts)."""
    return positive_int(name, v, minimum=0, maximum=SEED_MAX)


def flag(name: str, v: Any) -> bool:
    """A bool (``"no"`` is truthy in Python; refuse it rather than guess)."""
    if not isinstance(v, (bool, np.bool_)):
        _fail(f"{name}: must be True or False, got {v!r}")
    return bool(v)


def positive_float(name: str, v: Any, *, allow_zero: bool = False) -> float:
    """A finite float > 0 (or >= 0)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        _fail(f"{name}: must be a number, got {v!r}")
    if not math.isfinite(f) or f < 0 or (f == 0 and not allow_zero):
        _fail(f"{name}: must be {'>=' if allow_zero else '>'} 0 and finite, got {f}")
    return f


def row_l1(W: np.ndarray, block: int = 256) -> np.ndarray:
    """‖w_r‖₁ for every row, in blocks of rows (no W-sized temporary). NaN/inf iff W has them
    (or a norm overflows)."""
    out = np.empty(W.shape[0])
    for s in range(0, W.shape[0], block):
        np.sum(np.abs(W[s:s + block]), axis=1, out=out[s:s + block])
    return out


def _log10(v: float) -> float:
    return math.log10(v) if v > 0 else -math.inf


def weights(W: np.ndarray, l1: np.ndarray) -> None:
    """W is finite, checked through its row norms ``l1`` = ‖w_r‖₁: one pass over W serves both."""
    if np.all(np.isfinite(l1)):
        return
    _finite("W", W)  # a NaN or inf entry, named as ``array`` names it
    r = int(np.flatnonzero(~np.isfinite(l1))[0])
    _fail(f"W: too large: ‖w_r‖₁ of row {r} overflows float64 (entries up to {np.max(np.abs(W[r])):.3g})")


def preactivation_scale(l1_max: float, X: np.ndarray, eps: float, m: int) -> None:
    """Refuse W and X whose pre-activations w_rᵀx_i ∓ ε‖w_r‖₁ (Eq. 3), summed over the m
    neurons of Eq. 1, could overflow float64; name the larger of the two factors.

    |w_rᵀx_i ∓ ε‖w_r‖₁| ≤ ‖w_r‖₁ (max|x| + ε), so m·max‖w_r‖₁·(max|x| + ε) below the limit
    keeps every pre-activation, margin and loss finite. Gradients are sums over the n
    samples of x_i ± ε: n·(max|x| + ε) is checked too.
    """
    x_scale = float(np.max(np.abs(X))) + eps
    n = X.shape[0]
    lw, lx = _log10(l1_max), _log10(x_scale)
    if lw + lx + math.log10(m) < math.log10(_LIMIT) and lx + math.log10(n) < math.log10(_LIMIT):
        return
    who = "W" if lw >= lx else "X"
    _fail(f"{who}: too large: pre-activations w_rᵀx_i summed over m = {m} neurons reach 1e{lw + lx + math.log10(m):.0f} "
          f"(max ‖w_r‖₁ = {l1_max:.3g}, max |x| + ε = {x_scale:.3g}) and overflow float64; rescale {who}")


def gram_scale(X: np.ndarray, eps: float, name: str = "X") -> None:
    """Refuse X whose inner products (x_i ∓ ε sign w)ᵀ(x_j ∓ ε sign w) of Eq. 6 and H∞ (and the
    n-term sums of an eigenvalue solver over them) could overflow float64."""
    n, d = X.shape
    lx = _log10(float(np.max(np.abs(X))) + eps)
    if 2 * lx + math.log10(n * d) < math.log10(_LIMIT):
        return
    _fail(f"{name}: too large: inner products x_iᵀx_j reach 1e{2 * lx + math.log10(d):.0f} "
          f"(max |x| = {float(np.max(np.abs(X))):.3g}, d = {d}) and overflow float64 in the Gram matrix; rescale {name}")


def finite_result(what: str, value, culprit: str) -> None:
    """An output that must be finite (a bound above said so): a last guard that names the input."""
    if not np.all(np.isfinite(value)):
        _fail(f"{culprit}: {what} is not finite (overflow in float64); rescale {culprit}")


def _problem_arrays(W, a, X, y, eps):
    W = array("W", W, 2, finite=False)
    X = array("X", X, 2)
    if W.shape[1] != X.shape[1]:
        _fail(f"W and X disagree: W has d={W.shape[1]} columns, X has d={X.shape[1]}")
    a = output_weights(a, W.shape[0])
    y = labels(y, X.shape[0])
    return W, a, X, y, eps_value(eps)


def _values(W, norms, X, eps, gram):
    weights(W, norms)
    preactivation_scale(float(np.max(norms)), X, eps, W.shape[0])
    if gram:
        gram_scale(X, eps)


def problem(W: Any, a: Any, X: Any, y: Any, eps: Any = 0.0, *, gram: bool = False):
    """Validate a full (W, a, X, y, eps) problem; return numpy float64 arrays and eps.

    Besides shapes and values, refuses inputs whose pre-activations would overflow float64
    (``preactivation_scale``) and, with ``gram``, whose Gram matrix would (``gram_scale``).
    """
    W, a, X, y, eps = _problem_arrays(W, a, X, y, eps)
    _values(W, row_l1(W), X, eps, gram)
    return W, a, X, y, eps


def device_problem(W: Any, a: Any, X: Any, y: Any, eps: Any = 0.0, *, gram: bool = False):
    """``problem`` for the hot paths (inside x64): ``(W, a, X, y, eps, l1)`` as float64 jax arrays.

    W reaches the device without jax's slow copy of unaligned numpy memory
    (``_jax.to_device``); its row norms ``l1`` = ‖w_r‖₁ are computed there once, serve
    as the check that W is finite, and go to the internals, so that XLA never fuses
    that row reduction into the product X Wᵀ (3× slower on CPU, see loss.py).
    """
    W, a, X, y, eps = _problem_arrays(W, a, X, y, eps)
    Wd = to_device(W)  # may alias the caller's W: read here, never returned to the caller
    l1 = row_norms(Wd)
    _values(W, np.asarray(l1), X, eps, gram)
    return (Wd, *(jnp.asarray(v) for v in (a, X, y)), eps, l1)


def data(X: Any, y: Any, eps: Any = 0.0, *, gram: bool = False):
    """Validate a data set (X, y, eps); with ``gram``, also that its Gram matrices stay finite."""
    X = array("X", X, 2)
    y = labels(y, X.shape[0])
    eps = eps_value(eps)
    if gram:
        gram_scale(X, eps)
    return X, y, eps
