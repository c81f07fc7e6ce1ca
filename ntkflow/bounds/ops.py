"""The two primitives every bound rule is made of, for one sample.

- ``affine_back``: a linear function A·z of an affine layer's output, rewritten as a
  function of its input: (A∘L, A·b). Generically the vjp of the layer's linear map
  (``affine_back_vjp``: the transpose of any affine layer); a Conv2d takes all S rows (and,
  vmapped, all samples × rows) through ONE transposed convolution written as a matrix
  product and col2im (``nets.conv.conv_transpose_gemm``): the same sums, but its weight
  gradient is a matrix product, where XLA's CPU convolution gradient over thousands of rows
  (and any convolution inside the β-cond or a training scan) is many times slower.
- ``box_lower``: min over the box [lo, hi] of A·x + c = A·mid − |A|·rad + c.

All products run at ``Precision.HIGHEST`` (the layers and ``ntkflow._jax.mm`` ask for it).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._jax import mm
from ..nets.conv import conv_transpose_gemm
from ..nets.layers import Conv2d, Patched, weight_abs

__all__ = ["affine_back", "affine_back_vjp", "box_lower", "interval_affine", "interval_step", "interval_batchnorm",
           "batchnorm_back"]


def affine_back(layer, p, A, in_shape: tuple):
    """A (S, *out_shape) → (A∘L (S, *in_shape), A·b (S,)) for an affine layer L(x) = scale·Wx + b."""
    W = layer.weight(p)
    if isinstance(layer, Conv2d) and not isinstance(W, Patched):
        At = layer.scale_of(W) * conv_transpose_gemm(A, W, layer.stride, layer.padding, layer.dilation, in_shape)
        return At, _bias_term(layer, p, A)
    return affine_back_vjp(layer, p, A, in_shape)


def affine_back_vjp(layer, p, A, in_shape: tuple):
    """``affine_back`` for any affine layer, as the vjp of its linear map (the generic path)."""
    W = layer.weight(p)
    _, vjp = jax.vjp(lambda x: layer.linear(W, x), jnp.zeros(in_shape, A.dtype))
    return jax.vmap(lambda a: vjp(a)[0])(A), _bias_term(layer, p, A)


def _bias_term(layer, p, A):
    """A·b (S,) for the layer's bias broadcast to its output."""
    b = layer.bias_full(p, None)
    if b is None:
        return jnp.zeros(A.shape[0], A.dtype)
    full = jnp.broadcast_to(b, A.shape[1:]).reshape(-1)
    return mm(A.reshape(A.shape[0], -1), full)


def box_lower(A, const, lo, hi):
    """min_{lo ≤ x ≤ hi} Σ A_s·x + const_s for every row s, (S,)."""
    mid, rad = ((hi + lo) / 2).reshape(-1), ((hi - lo) / 2).reshape(-1)
    A2 = A.reshape(A.shape[0], -1)
    return mm(A2, mid) - mm(jnp.abs(A2), rad) + const


def interval_affine(layer, p, l, u):
    """IBP through an affine layer in centre–radius form: W·mid + b ± |W|·rad."""
    W = layer.weight(p)
    mid = layer.linear(W, (u + l) / 2)
    rad = layer.linear(weight_abs(W), (u - l) / 2)
    b = layer.bias_full(p, None)
    if b is not None:
        mid = mid + b
    return mid - rad, mid + rad


def interval_step(layer, p, l, u):
    """IBP through any layer (ReLU and Flatten are monotone / a reshape)."""
    if layer.kind == "affine":
        return interval_affine(layer, p, l, u)
    if layer.kind == "relu":
        return jax.nn.relu(l), jax.nn.relu(u)
    if layer.kind == "reshape":
        return l.reshape(-1), u.reshape(-1)
    if layer.kind == "batchnorm":
        return interval_batchnorm(layer, p, l, u)
    raise unknown_kind(layer, "interval_step", "ntkflow/bounds/ops.py")


def interval_batchnorm(layer, p, l, u):
    """IBP through BatchNorm's per-channel map y = s·x + t, by the sign of s: [s·l + t, s·u + t]
    where s ≥ 0, [s·u + t, s·l + t] where s < 0 — exact, and each end is one rounded product."""
    s, t = layer.channel_affine(p, l.ndim)
    a, b = s * l + t, s * u + t
    pos = s >= 0
    return jnp.where(pos, a, b), jnp.where(pos, b, a)


def batchnorm_back(layer, p, A):
    """A (S, *shape) → (A·diag(s) (S, *shape), A·t (S,)) for BatchNorm's map y = s·x + t."""
    s, t = (v[None] for v in layer.channel_affine(p, A.ndim - 1))
    return A * s, jnp.sum((A * t).reshape(A.shape[0], -1), axis=1)


def unknown_kind(layer, rule: str, where: str) -> NotImplementedError:
    """The error a layer-kind dispatcher raises for a kind it has no rule for."""
    return NotImplementedError(f"{rule}: no rule for layer kind {layer.kind!r} ({type(layer).__name__}); "
                               f"add one in {where}")
