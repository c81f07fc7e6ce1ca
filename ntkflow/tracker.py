"""Quantities the lemmas talk about, recorded along a trajectory, and ``Trajectory``.

``tracker(W0, a, X, y, eps)`` returns ``record(W, eps=None) -> dict`` (jax-md style
builder): every value is recomputed from W alone, relative to t = 0. Costs
O(mnd + n²m) per call, chunked over neurons; never an (n, m, d) array.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from ._io import read_json, read_npz, write_json, write_npz
from ._jax import chunk_size, scan_chunks
from .gram import _gram
from .loss import logistic, loss_derivative
from .model import _ibp_preact, _signed_relu_sum

__all__ = ["Trajectory", "tracker", "stack_rows", "SERIES"]

#: Names of the tracked series (part of the API).
SERIES = (
    "loss", "train_error", "certified_error", "lambda_min", "gram_change",
    "flip_fraction", "neuron_flip_fraction", "max_weight_change", "identity_residual", "eps",
)


@partial(jax.jit, static_argnames=("chunk",))
def _record_stats(W, W0, a, X, y, eps, eps0, chunk):
    """One pass over neuron chunks: (u, u̲, flipped (i, r) pairs, neurons with a flip,
    max_r ‖w_r − w_r(0)‖₂).

    A flip is a change of (A⁺_ri, A⁻_ri) from t = 0; since y_i a_r fixes which one can be
    non-zero, that is a change of the active indicator A_ri.
    """
    n = X.shape[0]

    def body(carry, w, w0, ar):
        z, s = _ibp_preact(w, ar, X, y, eps)
        plain = z + s * (eps * jnp.sum(jnp.abs(w), axis=1))[None, :]  # X wᵀ, without a second product
        flip = (z > 0) != (_ibp_preact(w0, ar, X, y, eps0)[0] > 0)
        move = jnp.sqrt(jnp.sum((w - w0) ** 2, axis=1))
        return (carry[0] + _signed_relu_sum(plain, s), carry[1] + _signed_relu_sum(z, s),
                carry[2] + jnp.sum(flip), carry[3] + jnp.sum(jnp.any(flip, axis=0)),
                jnp.maximum(carry[4], jnp.max(move)))

    zero = jnp.zeros((n,), W.dtype)
    u, u_lo, *rest = scan_chunks(body, (zero, zero, 0, 0, jnp.asarray(0.0, W.dtype)), (W, W0, a), chunk)
    scale = jnp.sqrt(W.shape[0])
    return (u / scale, u_lo / scale, *rest)


def tracker(W0, a, X, y, eps, *, gram: bool = True, loss_rate=None, H0=None):
    """Builder: ``record(W, eps=None)`` → dict of the tracked scalars at weights W.

    Inputs are float64 jax arrays (internal API; inside ``jax.enable_x64``). With
    ``gram=False`` the O(n²m) Gram quantities are NaN. ``eps`` in ``record`` lets a
    schedule change ε; flips are counted against the indicators at t = 0 with ε of t = 0.
    ``loss_rate(W)``, when given, is the integrator's dL̄/dt at W and adds
    ``identity_residual`` = dL̄/dt + l'(u̲)ᵀ H l'(u̲), which Eq. 5 says is 0.
    ``H0``: H(0), when the caller already has it.
    """
    n, d = X.shape
    m = W0.shape[0]
    chunk = chunk_size(n, m, d)
    if gram and H0 is None:
        H0 = np.asarray(_gram(W0, a, X, y, eps))

    def record(W, eps_t=None):
        e = eps if eps_t is None else eps_t
        u, u_lo, flips, nflips, move = _record_stats(W, W0, a, X, y, e, eps, chunk)
        u, u_lo = np.asarray(u), np.asarray(u_lo)
        flips, nflips, move = float(flips), float(nflips), float(move)
        out = {
            "loss": float(jnp.sum(logistic(u_lo))),
            "train_error": float(np.mean(u <= 0)),
            "certified_error": float(np.mean(u_lo <= 0)),
            "flip_fraction": flips / (n * m),
            "neuron_flip_fraction": nflips / m,
            "max_weight_change": move,
            "eps": float(e),
            "lambda_min": np.nan,
            "gram_change": np.nan,
            "identity_residual": np.nan,
        }
        if gram:
            H = np.asarray(_gram(W, a, X, y, e))
            out["lambda_min"] = float(scipy.linalg.eigvalsh(H, subset_by_index=[0, 0])[0])
            D = H - H0
            out["gram_change"] = float(np.max(np.abs(scipy.linalg.eigvalsh((D + D.T) / 2))))
            if loss_rate is not None:
                lp = np.asarray(loss_derivative(u_lo))
                out["identity_residual"] = float(loss_rate(W) + lp @ H @ lp)
        return out

    return record


def stack_rows(rows: list[dict]) -> dict:
    """``record`` outputs over save times → {name: array over save times} for every SERIES."""
    return {k: np.array([r[k] for r in rows]) for k in SERIES}


@dataclass
class Trajectory:
    """Tracked quantities over save times ``ts``; ``series[name]`` is an array like ``ts``.

    ``W`` holds the final weights (m, d) and ``W_saved`` (optional) the weights at every
    save time. ``error_estimate`` is the step-error certificate (gradient flow; NaN for
    discrete training), ``meta`` what produced the run (JSON-ready).
    """

    ts: np.ndarray
    series: dict
    W: np.ndarray
    a: np.ndarray
    meta: dict = field(default_factory=dict)
    error_estimate: float = float("nan")
    W_saved: np.ndarray | None = None

    def __getattr__(self, name):
        series = self.__dict__.get("series", {})
        if name in series:
            return series[name]
        raise AttributeError(name)

    def save(self, path) -> Path:
        """Write ``path`` (.npz arrays) and ``path`` with .json (metadata), each atomically."""
        path = Path(path).with_suffix(".npz")
        arrays = {"ts": self.ts, "W": self.W, "a": self.a, **{f"series_{k}": v for k, v in self.series.items()}}
        if self.W_saved is not None:
            arrays["W_saved"] = self.W_saved
        write_npz(path, arrays)
        write_json(path.with_suffix(".json"), {"meta": self.meta, "error_estimate": self.error_estimate,
                                               "series": sorted(self.series), "format": "ntkflow.trajectory/1"})
        return path

    @classmethod
    def load(cls, path) -> "Trajectory":
        """Read what ``save`` wrote. A missing, truncated or malformed file is a one-line
        ``ValueError`` naming it."""
        path = Path(path).with_suffix(".npz")
        jpath = path.with_suffix(".json")
        meta = read_json(jpath)
        if not isinstance(meta, dict) or meta.get("format") != "ntkflow.trajectory/1":
            raise ValueError(f"{jpath}: not an ntkflow trajectory")
        names, info = meta.get("series"), meta.get("meta")
        if not isinstance(names, list) or not all(isinstance(k, str) for k in names) or not isinstance(info, dict):
            raise ValueError(f"{jpath}: malformed trajectory metadata ('series' must be a list of names, "
                             f"'meta' a dict)")
        try:
            err = float(meta.get("error_estimate", float("nan")))
        except (TypeError, ValueError):
            raise ValueError(f"{jpath}: error_estimate is not a number") from None
        arr = read_npz(path)
        missing = [k for k in ("ts", "W", "a", *(f"series_{k}" for k in names)) if k not in arr]
        if missing:
            raise ValueError(f"{path}: not a complete ntkflow trajectory (missing {', '.join(missing)})")
        series = {k: arr[f"series_{k}"] for k in names}
        if any(v.shape != arr["ts"].shape for v in series.values()):
            raise ValueError(f"{path}: trajectory series are of the wrong length")
        return cls(ts=arr["ts"], series=series, W=arr["W"], a=arr["a"], meta=info,
                   error_estimate=err, W_saved=arr.get("W_saved"))
