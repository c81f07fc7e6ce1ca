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

from .._core.errors import NtkflowError
from .._io import read_json, read_npz, write_json, write_npz
from .._jax import chunk_size, scan_chunks
from .gram import _gram
from .loss import logistic, loss_derivative
from .model import _ibp_preact, _signed_relu_sum

__all__ = ["Trajectory", "tracker", "stack_rows", "SERIES", "TIE_RULES", "error_rate", "sym_norm"]

#: Names of the tracked series (part of the API).
SERIES = (
    "loss", "train_error", "certified_error", "lambda_min", "gram_change",
    "flip_fraction", "neuron_flip_fraction", "max_weight_change", "identity_residual", "eps",
    "dead_fraction", "zero_output_fraction",
)

#: How an error rate counts a tie u = y·f(x) = 0 (e.g. a dead net, f ≡ 0):
#: "wrong" — an error (certification needs u > 0; ntkflow's default and the only honest
#: rule for a certified error); "positive" — f = 0 predicts class +1; "half" — a coin flip,
#: half an error per tie (the expected error of a random guess at a tie).
TIE_RULES = ("wrong", "positive", "half")


def error_rate(u, y, tie: str = "wrong") -> float:
    """Fraction of samples misclassified, from margins u_i = y_i f(x_i) (or their lower
    bounds), with ties counted by ``tie`` (``TIE_RULES``). NaN when a margin is not
    finite: a diverged run's NaN margin is never a correct prediction."""
    u, y = np.asarray(u, float), np.asarray(y, float)
    if u.size == 0 or not np.all(np.isfinite(u)):
        return float("nan")
    ties = u == 0
    wrong = (u < 0).astype(float)
    if tie == "wrong":
        wrong[ties] = 1.0
    elif tie == "positive":
        wrong[ties] = (y[ties] < 0).astype(float)
    elif tie == "half":
        wrong[ties] = 0.5
    else:
        raise NtkflowError(f"tie: unknown {tie!r}; choose one of {', '.join(TIE_RULES)}")
    return float(np.mean(wrong))


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
        on = plain > 0
        return (carry[0] + _signed_relu_sum(plain, s), carry[1] + _signed_relu_sum(z, s),
                carry[2] + jnp.sum(flip), carry[3] + jnp.sum(jnp.any(flip, axis=0)),
                jnp.maximum(carry[4], jnp.max(move)), carry[5] + jnp.sum(~jnp.any(on, axis=0)),
                carry[6] + jnp.sum(on, axis=1, dtype=carry[6].dtype))

    zero = jnp.zeros((n,), W.dtype)
    init = (zero, zero, 0, 0, jnp.asarray(0.0, W.dtype), 0, jnp.zeros((n,), jnp.int32))
    u, u_lo, flips, nflips, move, dead, active = scan_chunks(body, init, (W, W0, a), chunk)
    scale = jnp.sqrt(W.shape[0])
    return u / scale, u_lo / scale, flips, nflips, move, dead, jnp.sum(active == 0)


def tracker(W0, a, X, y, eps, *, gram: bool = True, loss_rate=None, H0=None, tie: str = "wrong"):
    """Builder: ``record(W, eps=None)`` → dict of the tracked scalars at weights W.

    Inputs are float64 jax arrays (internal API; inside ``jax.enable_x64``). With
    ``gram=False`` the O(n²m) Gram quantities are NaN. ``eps`` in ``record`` lets a
    schedule change ε; flips are counted against the indicators at t = 0 with ε of t = 0.
    ``loss_rate(W)``, when given, is the integrator's dL̄/dt at W and adds
    ``identity_residual`` = dL̄/dt + l'(u̲)ᵀ H l'(u̲), which Eq. 5 says is 0.
    ``H0``: H(0), when the caller already has it. ``tie``: how errors count f(x) = 0
    (``TIE_RULES``). ``dead_fraction``: neurons inactive (w_rᵀx_i ≤ 0) on every sample;
    ``zero_output_fraction``: samples on which every neuron is inactive, so f(x) = 0.
    """
    n, d = X.shape
    m = W0.shape[0]
    chunk = chunk_size(n, m, d)
    if gram and H0 is None:
        H0 = np.asarray(_gram(W0, a, X, y, eps))
    if tie not in TIE_RULES:
        raise NtkflowError(f"tie: unknown {tie!r}; choose one of {', '.join(TIE_RULES)}")
    y_np = np.asarray(y)

    def record(W, eps_t=None):
        e = eps if eps_t is None else eps_t
        u, u_lo, flips, nflips, move, dead, zero_out = _record_stats(W, W0, a, X, y, e, eps, chunk)
        u, u_lo = np.asarray(u), np.asarray(u_lo)
        flips, nflips, move = float(flips), float(nflips), float(move)
        out = {
            "loss": float(jnp.sum(logistic(u_lo))),
            "train_error": error_rate(u, y_np, tie),
            "certified_error": error_rate(u_lo, y_np, tie),
            "dead_fraction": float(dead) / m,
            "zero_output_fraction": float(zero_out) / n,
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
            out["gram_change"] = sym_norm(D)
            if loss_rate is not None:
                lp = np.asarray(loss_derivative(u_lo))
                out["identity_residual"] = float(loss_rate(W) + lp @ H @ lp)
        return out

    return record


def sym_norm(D) -> float:
    """‖D‖₂ of a (numerically) symmetric matrix: the largest |eigenvalue| of (D + Dᵀ)/2."""
    D = np.asarray(D, np.float64)
    return float(np.max(np.abs(scipy.linalg.eigvalsh((D + D.T) / 2))))


def stack_rows(rows: list[dict]) -> dict:
    """``record`` outputs over save times → {name: array over save times}: every key any row
    has (NaN where a row lacks it, e.g. per-step measures at t = 0)."""
    keys = [k for k in SERIES if any(k in r for r in rows)]
    keys += sorted({k for r in rows for k in r} - set(keys))
    return {k: np.array([r.get(k, np.nan) for r in rows], float) for k in keys}


@dataclass
class Trajectory:
    """Tracked quantities over save times ``ts``; ``series[name]`` is an array like ``ts``.

    ``W`` holds the final weights (m, d) of the paper's two-layer net (with ``a``) and
    ``W_saved`` (optional) the weights at every save time; ``params`` the final params of
    any net (``training.fit``; one dict per layer), None for ``nf.train`` and the flow. ``error_estimate`` is the step-error certificate (gradient flow; NaN for
    discrete training), ``meta`` what produced the run (JSON-ready).
    """

    ts: np.ndarray
    series: dict
    W: np.ndarray | None
    a: np.ndarray | None
    meta: dict = field(default_factory=dict)
    error_estimate: float = float("nan")
    W_saved: np.ndarray | None = None
    params: tuple | None = None

    def __getattr__(self, name):
        series = self.__dict__.get("series", {})
        if name in series:
            return series[name]
        raise AttributeError(name)

    def save(self, path) -> Path:
        """Write ``path`` (.npz arrays) and ``path`` with .json (metadata), each atomically."""
        path = Path(path).with_suffix(".npz")
        arrays = {"ts": self.ts, **{f"series_{k}": v for k, v in self.series.items()}}
        for k in ("W", "a", "W_saved"):
            if getattr(self, k) is not None:
                arrays[k] = getattr(self, k)
        layers = [] if self.params is None else [sorted(p) for p in self.params]
        for i, p in enumerate(self.params or ()):
            arrays.update({f"param_{i}_{k}": np.asarray(v) for k, v in p.items()})
        write_npz(path, arrays)
        write_json(path.with_suffix(".json"), {"meta": self.meta, "error_estimate": self.error_estimate,
                                               "series": sorted(self.series), "params": layers if self.params is not None
                                               else None, "format": "ntkflow.trajectory/1"})
        return path

    @classmethod
    def load(cls, path) -> "Trajectory":
        """Read what ``save`` wrote. A missing, truncated or malformed file is a one-line
        ``ValueError`` naming it."""
        path = Path(path).with_suffix(".npz")
        jpath = path.with_suffix(".json")
        meta = read_json(jpath)
        if not isinstance(meta, dict) or meta.get("format") != "ntkflow.trajectory/1":
            raise NtkflowError(f"{jpath}: not an ntkflow trajectory")
        names, info = meta.get("series"), meta.get("meta")
        if not isinstance(names, list) or not all(isinstance(k, str) for k in names) or not isinstance(info, dict):
            raise NtkflowError(f"{jpath}: malformed trajectory metadata ('series' must be a list of names, "
                             f"'meta' a dict)")
        try:
            err = float(meta.get("error_estimate", float("nan")))
        except (TypeError, ValueError):
            raise NtkflowError(f"{jpath}: error_estimate is not a number") from None
        arr = read_npz(path)
        layers = meta.get("params")
        if layers is not None and not (isinstance(layers, list) and all(
                isinstance(p, list) and all(isinstance(k, str) for k in p) for p in layers)):
            raise NtkflowError(f"{jpath}: malformed trajectory metadata ('params' must list each layer's names)")
        need = [f"param_{i}_{k}" for i, p in enumerate(layers or ()) for k in p]
        if layers is None:
            need += ["W", "a"]
        missing = [k for k in ("ts", *need, *(f"series_{k}" for k in names)) if k not in arr]
        if missing:
            raise NtkflowError(f"{path}: not a complete ntkflow trajectory (missing {', '.join(missing)})")
        series = {k: arr[f"series_{k}"] for k in names}
        if any(v.shape != arr["ts"].shape for v in series.values()):
            raise NtkflowError(f"{path}: trajectory series are of the wrong length")
        params = None if layers is None else tuple({k: arr[f"param_{i}_{k}"] for k in p} for i, p in enumerate(layers))
        return cls(ts=arr["ts"], series=series, W=arr.get("W"), a=arr.get("a"), meta=info,
                   error_estimate=err, W_saved=arr.get("W_saved"), params=params)
