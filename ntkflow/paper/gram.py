"""The Gram matrix H(t) of Eq. 6 in structured, neuron-chunked form.

H_ij = Σ_r ⟨∂u̲_i/∂w_r, ∂u̲_j/∂w_r⟩ splits (Eq. 6) into

    α-term  (1/m) y_i y_j x_iᵀx_j Σ_r α_rij,          α_rij = A_ri A_rj
    β-term  −(ε/m) y_i y_j Σ_r (β_rij x_i + β_rji x_j)ᵀ sign(w_r),   β_rij = A_ri S_rj
    γ-term  (ε²/m) y_i y_j Σ_r γ_rij ‖sign(w_r)‖²,      γ_rij = S_ri S_rj

with A = A⁺ + A⁻ and S = A⁺ − A⁻. Each sum over r is one (n×c)(c×n) product over a
chunk of c neurons, so the cost is O(mnd + n²m) and memory does not grow with m.
Eq. 6 writes ε²d for ε²‖sign(w_r)‖²; they agree unless a weight is exactly 0, and
we use the exact count.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate as V
from .._jax import chunk_size, mmt, scan_chunks, x64
from .model import _ibp_preact

__all__ = ["gram_matrix", "gram_terms", "GramTerms"]


class GramTerms(NamedTuple):
    """The three terms of Eq. 6; ``alpha + beta + gamma`` is H. Each (n, n)."""

    alpha: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray


def _sums(W, a, X, y, eps):
    """Σ_r α_rij, Σ_r β_rij x_iᵀsign(w_r), Σ_r γ_rij ‖sign(w_r)‖² over the given neurons.

    The α and γ sums are products of integer matrices with entries below 2²⁴
    (≤ chunk·d), so they run in float32 without rounding and are accumulated in float64.
    """
    sw = jnp.sign(W)
    zp = mmt(X, jnp.concatenate([W, sw]))  # [X Wᵀ | X sign(W)ᵀ] in one product
    c = W.shape[0]
    s = y[:, None] * a[None, :]
    z = zp[:, :c] - s * (eps * jnp.sum(jnp.abs(W), axis=1))[None, :]
    act = z > 0
    sact = jnp.where(act, s, 0.0).astype(jnp.float32)
    act32 = act.astype(jnp.float32)
    nnz = jnp.sum(sw * sw, axis=1).astype(jnp.float32)
    alpha = mmt(act32, act32).astype(X.dtype)
    gamma = mmt(sact * nnz[None, :], sact).astype(X.dtype)
    beta = mmt(act.astype(X.dtype) * zp[:, c:], sact.astype(X.dtype))
    return alpha, beta, gamma


def _assemble(X, y, eps, m, sums):
    alpha, beta, gamma = sums
    yy = y[:, None] * y[None, :] / m
    return (
        yy * mmt(X, X) * alpha,
        -eps * yy * (beta + beta.T),
        eps**2 * yy * gamma,
    )


@partial(jax.jit, static_argnames=("chunk",))
def _gram_terms(W, a, X, y, eps, chunk):
    n = X.shape[0]
    zero = jnp.zeros((n, n), X.dtype)
    sums = scan_chunks(lambda c, w, ar: tuple(ci + si for ci, si in zip(c, _sums(w, ar, X, y, eps))),
                       (zero, zero, zero), (W, a), chunk)
    return _assemble(X, y, eps, W.shape[0], sums)


def _gram(W, a, X, y, eps, chunk=None):
    """H as a jax array (internal: valid float64 input, inside x64)."""
    chunk = chunk_size(X.shape[0], W.shape[0], X.shape[1], requested=chunk)
    return sum(_gram_terms(W, a, X, y, eps, chunk))


@x64
def gram_terms(W, a, X, y, eps, *, chunk: int | None = None) -> GramTerms:
    """The α, β, γ terms of Eq. 6 (each (n, n), float64); they sum to ``gram_matrix``."""
    W, a, X, y, eps, _ = V.device_problem(W, a, X, y, eps, gram=True)
    chunk = chunk_size(X.shape[0], W.shape[0], X.shape[1], requested=None if chunk is None else V.positive_int("chunk", chunk))
    terms = GramTerms(*(np.asarray(t) for t in _gram_terms(W, a, X, y, eps, chunk)))
    V.finite_result("the Gram matrix", sum(terms), "X")
    return terms


@x64
def gram_matrix(W, a, X, y, eps, *, chunk: int | None = None) -> np.ndarray:
    """H_ij = Σ_r ⟨∂u̲_i/∂w_r, ∂u̲_j/∂w_r⟩ of Eq. 6, (n, n) float64, symmetric PSD.

    Computed in the structured form of Eq. 6 over chunks of ``chunk`` neurons
    (default: about 4M entries per (n, chunk) block), never through the Jacobian.
    """
    W, a, X, y, eps, _ = V.device_problem(W, a, X, y, eps, gram=True)
    chunk = V.positive_int("chunk", chunk) if chunk is not None else None
    H = np.asarray(_gram(W, a, X, y, eps, chunk))
    V.finite_result("the Gram matrix", H, "X")
    return H
