"""Precision policy shared by every module.

ntkflow computes in float64 by default: Gram matrices, eigenvalues and λ0 need it.
Public functions run inside ``jax.enable_x64(True)`` (a context manager, so the
user's global ``jax_enable_x64`` setting is never changed). Every matrix product
asks for ``Precision.HIGHEST``: on NVIDIA GPUs JAX would otherwise run float32
products as TF32, which breaks the exactness of IBP bounds.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

HIGHEST = jax.lax.Precision.HIGHEST


def x64(fn):
    """Run ``fn`` with 64-bit JAX types enabled, restoring the caller's setting."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    return wrapper


def mm(a, b):
    """``a @ b`` at full precision (no TF32)."""
    return jnp.matmul(a, b, precision=HIGHEST)


def mmt(a, b):
    """``a @ b.T`` at full precision."""
    return jax.lax.dot_general(a, b, (((a.ndim - 1,), (b.ndim - 1,)), ((), ())), precision=HIGHEST)


def chunk_size(n: int, m: int, budget: int = 1 << 22) -> int:
    """Neurons per chunk so that an (n, chunk) array holds about ``budget`` entries."""
    return int(max(1, min(m, max(64, budget // max(n, 1)))))


def pad_rows(W, a, chunk: int):
    """Pad (W, a) with zero neurons (they are never active) to a multiple of ``chunk``."""
    m = W.shape[0]
    k = -(-m // chunk)
    extra = k * chunk - m
    if extra:
        W = jnp.concatenate([W, jnp.zeros((extra, W.shape[1]), W.dtype)])
        a = jnp.concatenate([a, jnp.ones((extra,), a.dtype)])
    return W.reshape(k, chunk, W.shape[1]), a.reshape(k, chunk)
