"""The one place that turns bad input into a one-line ``ValueError``.

Every public function validates here, once, before calling jitted internals.
The messages name the argument and the problem; they never leak a JAX traceback.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "array",
    "eps_value",
    "labels",
    "output_weights",
    "positive_int",
    "positive_float",
    "problem",
    "data",
]


def _fail(msg: str) -> None:
    raise ValueError(msg)


def array(name: str, x: Any, ndim: int, *, dtype=np.float64) -> np.ndarray:
    """``x`` as a finite float array with ``ndim`` dimensions."""
    try:
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError):
        _fail(f"{name}: cannot be read as a numeric array")
    if arr.ndim != ndim:
        _fail(f"{name}: expected {ndim} dimension(s), got shape {arr.shape}")
    if arr.size == 0:
        _fail(f"{name}: is empty (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        bad = "NaN" if np.isnan(arr).any() else "inf"
        _fail(f"{name}: contains {bad}")
    return arr


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


def positive_int(name: str, v: Any, minimum: int = 1) -> int:
    """An integer >= ``minimum``."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        else:
            _fail(f"{name}: must be an integer >= {minimum}, got {v!r}")
    if v < minimum:
        _fail(f"{name}: must be >= {minimum}, got {v}")
    return int(v)


def positive_float(name: str, v: Any, *, allow_zero: bool = False) -> float:
    """A finite float > 0 (or >= 0)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        _fail(f"{name}: must be a number, got {v!r}")
    if not math.isfinite(f) or f < 0 or (f == 0 and not allow_zero):
        _fail(f"{name}: must be {'>=' if allow_zero else '>'} 0 and finite, got {f}")
    return f


def problem(W: Any, a: Any, X: Any, y: Any, eps: Any = 0.0):
    """Validate a full (W, a, X, y, eps) problem; return numpy float64 arrays and eps."""
    W = array("W", W, 2)
    X = array("X", X, 2)
    if W.shape[1] != X.shape[1]:
        _fail(f"W and X disagree: W has d={W.shape[1]} columns, X has d={X.shape[1]}")
    a = output_weights(a, W.shape[0])
    y = labels(y, X.shape[0])
    return W, a, X, y, eps_value(eps)


def data(X: Any, y: Any, eps: Any = 0.0):
    """Validate a data set (X, y, eps)."""
    X = array("X", X, 2)
    y = labels(y, X.shape[0])
    return X, y, eps_value(eps)
