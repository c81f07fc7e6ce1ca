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
import numpy as np

HIGHEST = jax.lax.Precision.HIGHEST


def x64(fn):
    """Run ``fn`` with 64-bit JAX types enabled, restoring the caller's setting."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    return wrapper


#: jax aliases numpy memory aligned to this many bytes (on CPU) and copies anything else.
_ALIGN = 64


def to_device(x: np.ndarray) -> jax.Array:
    """A numpy array as a jax array, fast: on CPU jax aliases 64-byte aligned numpy memory for
    free but copies unaligned memory about 10× slower than a memcpy (1–2 s for a 500 MB W);
    numpy aligns large arrays to 16 bytes only. So an unaligned array is first copied by
    numpy into aligned memory. The result may alias ``x``: for reading inside one call only
    (never return it or keep it past the call).
    """
    x = np.asarray(x)
    if jax.default_backend() == "cpu" and (x.ctypes.data % _ALIGN or not x.flags.c_contiguous):
        buf = np.empty(x.nbytes + _ALIGN, np.uint8)
        start = -buf.ctypes.data % _ALIGN
        aligned = buf[start:start + x.nbytes].view(x.dtype).reshape(x.shape)
        np.copyto(aligned, x)
        x = aligned
    return jax.device_put(x)


@jax.jit
def row_norms(W):
    """‖w_r‖₁ of every row, (m,): a jitted pass of its own, so that it is never fused into a
    product's epilogue (see ``model._ibp_preact``)."""
    return jnp.sum(jnp.abs(W), axis=1)


def mm(a, b):
    """``a @ b`` at full precision (no TF32)."""
    return jnp.matmul(a, b, precision=HIGHEST)


def mmt(a, b):
    """``a @ b.T`` at full precision."""
    return jax.lax.dot_general(a, b, (((a.ndim - 1,), (b.ndim - 1,)), ((), ())), precision=HIGHEST)


def chunk_size(n: int, m: int, d: int, budget: int = 1 << 19, requested: int | None = None) -> int:
    """Neurons per chunk: about ``budget`` entries per (n, chunk) array, clamped to
    [256, 2048] (cache-sized blocks measured fastest on CPU), or ``requested``; never
    more than m, and chunk·d < 2²⁴ so integer products stay exact in float32."""
    c = requested if requested is not None else min(2048, max(256, budget // max(n, 1)))
    return int(max(1, min(m, c, (1 << 24) // max(d, 1) - 1)))


def scan_chunks(body, init, arrays, chunk: int):
    """Fold ``body(carry, *row_blocks)`` over blocks of ``chunk`` rows of ``arrays`` (inside jit).

    Full blocks are read in place with dynamic slices (no padded copy of a large W);
    a shorter tail block, if any, is folded last.
    """
    m = arrays[0].shape[0]
    full = m // chunk

    def step(carry, i):
        return body(carry, *(jax.lax.dynamic_slice_in_dim(x, i * chunk, chunk) for x in arrays)), None

    carry, _ = jax.lax.scan(step, init, jnp.arange(full))
    if m > full * chunk:
        carry = body(carry, *(x[full * chunk:] for x in arrays))
    return carry


def tree_distance(g_prev, g):
    """(‖g − g_prev‖₂, 1 − cos(g, g_prev)) over pytrees; the cosine distance is NaN when a
    gradient is zero (the first step has no predecessor). lee2021's gradient-smoothness
    measures along training (the trainers record them per step)."""
    leaves = list(zip(jax.tree_util.tree_leaves(g_prev), jax.tree_util.tree_leaves(g)))
    diff = sum(jnp.sum((b - a) ** 2) for a, b in leaves)
    dot = sum(jnp.vdot(a, b) for a, b in leaves)
    na = sum(jnp.sum(a ** 2) for a, _ in leaves)
    nb = sum(jnp.sum(b ** 2) for _, b in leaves)
    den = jnp.sqrt(na * nb)
    return jnp.sqrt(diff), jnp.where(den > 0, 1 - dot / jnp.where(den > 0, den, 1.0), jnp.nan)
