"""A 2-D convolution and its transpose as one matrix product each (im2col / col2im), channels last.

``conv_gemm(x, W, ...)`` is ``torch.nn.Conv2d``'s cross-correlation of one (C, H, W) image:
the kh·kw shifted, strided views of the zero-padded image, stacked into patches
(Ho·Wo, kh·kw·C), times the weight as a (kh·kw·C, O) matrix. ``conv_transpose_gemm(A, W, ...)``
is its transpose applied to S rows at once, A (S, O, Ho, Wo) → A∘L (S, C, H, W): one product
(S·Ho·Wo, O)·(O, kh·kw·C), then each kernel offset's slab added back at its strided place
(``lax.pad`` with interior padding; col2im), the padding cropped.

Why not ``lax.conv_general_dilated``: on XLA's CPU backend a convolution inside a nested
computation (a ``lax.scan`` body, a ``lax.cond`` branch) and the weight gradient of a
convolution over many rows are far slower than the same arithmetic as a matrix product
(benchmarks/bench_steps.py); the gradient of these forms is matrix products and pads/slices
only. Both are exact rearrangements of the same sums (tests/test_bounds_conv.py compares them
with the vjp of ``lax.conv_general_dilated`` in float64).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from .._jax import HIGHEST

__all__ = ["conv_gemm", "conv_transpose_gemm", "out_hw"]


def out_hw(hw, kernel, stride, padding, dilation) -> tuple:
    """Output height and width of a convolution (PyTorch's formula)."""
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                 for n, k, s, p, d in zip(hw, kernel, stride, padding, dilation))


def _weight_matrix(W):
    """OIHW → (kh·kw·I, O), rows in (a, b, i) order (the patches' column order)."""
    O, I, kh, kw = W.shape
    return jnp.transpose(W, (2, 3, 1, 0)).reshape(kh * kw * I, O)


def conv_gemm(x, W, stride, padding, dilation):
    """W ⋆ x for one image x (C, H, W), W (O, C, kh, kw) → (O, Ho, Wo): patches times a matrix."""
    O, I, kh, kw = W.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    Ho, Wo = out_hw(x.shape[1:], (kh, kw), stride, padding, dilation)
    xt = jnp.pad(jnp.transpose(x, (1, 2, 0)), ((ph, ph), (pw, pw), (0, 0)))
    cols = [xt[a * dh: a * dh + sh * (Ho - 1) + 1: sh, b * dw: b * dw + sw * (Wo - 1) + 1: sw]
            for a in range(kh) for b in range(kw)]
    P = jnp.stack(cols, axis=2).reshape(Ho * Wo, kh * kw * I)
    dt = jnp.result_type(P, W)
    out = jnp.matmul(P.astype(dt), _weight_matrix(W).astype(dt), precision=HIGHEST)  # (Ho·Wo, O)
    return out.T.reshape(O, Ho, Wo)


def conv_transpose_gemm(A, W, stride, padding, dilation, in_shape):
    """Rows A (S, O, Ho, Wo) of a linear function of a convolution's output, as functions of
    its input: (S, C, H, W) with (A∘L)_s = Lᵀ A_s, L the convolution x ↦ W ⋆ x of ``in_shape``."""
    O, I, kh, kw = W.shape
    S, _, Ho, Wo = A.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    Hp, Wp = in_shape[1] + 2 * ph, in_shape[2] + 2 * pw
    dt = jnp.result_type(A, W)
    At = jnp.transpose(A, (0, 2, 3, 1)).reshape(S * Ho * Wo, O).astype(dt)
    P = jnp.matmul(At, _weight_matrix(W).astype(dt).T, precision=HIGHEST).reshape(S, Ho, Wo, kh, kw, I)
    zero = jnp.zeros((), dt)
    out = None
    for a in range(kh):
        for b in range(kw):
            lo_h, lo_w = a * dh, b * dw
            cfg = [(0, 0, 0), (lo_h, Hp - lo_h - sh * (Ho - 1) - 1, sh - 1),
                   (lo_w, Wp - lo_w - sw * (Wo - 1) - 1, sw - 1), (0, 0, 0)]
            term = lax.pad(P[:, :, :, a, b, :], zero, cfg)
            out = term if out is None else out + term
    out = out[:, ph: ph + in_shape[1], pw: pw + in_shape[2], :]
    return jnp.transpose(out, (0, 3, 1, 2))
