"""Backward (CROWN) pre-activation bounds for a whole batch: only the neurons IBP leaves unstable, in chunks.

The definition is ``linear.preactivation_bounds(..., "backward")``'s, per sample: IBP seeds
every ReLU input; a neuron IBP proves stable (l ≥ 0 or u ≤ 0) keeps IBP's bounds, whose
relaxation is then exact (ā = a̲ ∈ {0, 1}, b̄ = 0: no tighter bound could change it); an
unstable one gets the backward bound of the rows ±e_r intersected with IBP's interval. This
module computes the same numbers without running the rows of stable neurons:

1. the (sample, neuron) pairs of the batch that IBP leaves unstable are sorted first and cut
   into chunks of ``chunk`` pairs (a static size); a ``lax.scan`` over the chunks runs a
   chunk's 2·chunk rows (lower and upper) in one backward pass, each row with its own
   sample's relaxations and input box, and ``lax.cond`` skips every chunk past the last
   unstable pair — so the work follows the number of unstable neurons, not the width;
2. the one-hot rows' first step back (through the affine layer feeding the ReLU) is the
   layer's matrix row itself: ``Lᵀ e_r`` is computed once for all neurons and gathered
   (when that matrix fits the memory budget), not once per sample and row;
3. each chunk is ``jax.checkpoint``-ed: its gradient recomputes it instead of keeping every
   chunk's rows, so the memory of a differentiated pass stays that of one chunk.

Memory: a chunk holds 2·chunk rows of every node between the input and the ReLU plus the
gathered per-row slopes; ``chunk_size`` picks the largest chunk whose arrays stay within
``budget`` entries (``engine.MEMORY_BUDGET``: 2²⁵, ~128 MB in float32).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .ibp import ibp_intervals
from .linear import _exact_by_ibp, backward, refine_with_ibp, relu_relaxation
from .ops import affine_back

__all__ = ["backward_intervals", "chunk_size"]


def chunk_size(net, input_shape, i: int, budget: int) -> int:
    """(sample, neuron) pairs per chunk for ReLU layer i so a chunk's arrays stay within ``budget`` entries."""
    shapes = net.shapes(input_shape)
    sizes = [int(np.prod(s)) for s in shapes[: i + 1]]
    relus = sum(sizes[k] for k, layer in enumerate(net.layers[:i]) if layer.kind == "relu")
    per_row = 3 * relus + 2 * max(sizes) + 2 * sizes[0]  # slopes/intercepts gathered, A and its image, the box
    return int(max(1, budget // (2 * per_row)))


def _box_lower_rows(A, const, lo, hi):
    """min over row s's own box [lo_s, hi_s] of A_s·x + const_s, (S,)."""
    S = A.shape[0]
    mid, rad = ((hi + lo) / 2).reshape(S, -1), ((hi - lo) / 2).reshape(S, -1)
    A2 = A.reshape(S, -1)
    prec = jax.lax.Precision.HIGHEST
    return (jnp.einsum("sk,sk->s", A2, mid, precision=prec) - jnp.einsum("sk,sk->s", jnp.abs(A2), rad, precision=prec)
            + const)


def _first_rows(net, params, i: int, shapes, budget: int, dt):
    """(matrix (n, *shape of node i−1), bias (n,)) of the affine layer feeding ReLU i, or None when
    that layer is not affine or its matrix would exceed ``budget`` entries."""
    layer = net.layers[i - 1]
    n = int(np.prod(shapes[i]))
    if layer.kind != "affine" or n * int(np.prod(shapes[i - 1])) > budget:
        return None
    eye = jnp.eye(n, dtype=dt).reshape((n, *shapes[i]))
    return affine_back(layer, params[i - 1], eye, shapes[i - 1])


def _tighten(net, params, lo, hi, i: int, l_ibp, u_ibp, relax: dict, shapes, chunk: int, budget: int):
    """IBP's (l, u) (B, *shape of node i) with the unstable neurons' backward bounds intersected in."""
    Bn, sh = l_ibp.shape[0], shapes[i]
    n = int(np.prod(sh))
    lf, uf = l_ibp.reshape(-1), u_ibp.reshape(-1)
    total = Bn * n
    unstable = (lf < 0) & (uf > 0)
    count = jnp.sum(unstable)
    order = jnp.argsort(~unstable, stable=True)  # unstable pairs first
    chunks = -(-total // chunk)
    order = jnp.concatenate([order, jnp.full(chunks * chunk - total, total, order.dtype)])
    dt = lf.dtype
    first = _first_rows(net, params, i, shapes, budget, dt)

    def run(start):
        idx = jax.lax.dynamic_slice(order, (start,), (chunk,))
        s, r = jnp.divmod(jnp.where(idx < total, idx, 0), n)  # padding entries read row 0, then dropped
        s2 = jnp.concatenate([s, s])
        rel = {k: tuple(v[s2] for v in rk) for k, rk in relax.items()}
        if first is not None:
            M, c = first
            A, c0, t = M[r], c[r], i - 1
        else:
            A, c0, t = jax.nn.one_hot(r, n, dtype=dt).reshape((chunk, *sh)), jnp.zeros(chunk, dt), i
        A0, const = backward(net, params, jnp.concatenate([A, -A]), t, rel, shapes)
        v = _box_lower_rows(A0, const + jnp.concatenate([c0, -c0]), lo[s2], hi[s2])
        return v[:chunk], -v[chunk:]

    @jax.checkpoint
    def chunk_values(j):
        start = j * chunk
        zero = jnp.zeros(chunk, dt)
        return jax.lax.cond(start < count, lambda: run(start), lambda: (zero, zero))

    def body(_, j):
        # the chunk's values are the scan's outputs, not a carried copy of every bound; the
        # checkpoint around the cond keeps only j per chunk for the gradient (a checkpoint
        # inside the cond would stack the branch's operands, the gathered matrix too, per chunk)
        return None, chunk_values(j)

    _, (vl, vu) = jax.lax.scan(body, None, jnp.arange(chunks))
    valid = jnp.arange(chunks * chunk) < count
    safe = jnp.where(valid, order, 0)
    tgt = jnp.where(valid, order, total)  # out of range: dropped
    lf = lf.at[tgt].set(jnp.maximum(lf[safe], vl.reshape(-1)), mode="drop")
    uf = uf.at[tgt].set(jnp.minimum(uf[safe], vu.reshape(-1)), mode="drop")
    return lf.reshape(l_ibp.shape), uf.reshape(u_ibp.shape)


def backward_intervals(net, params, lo, hi, slope: str, budget: int, chunk: int | None = None) -> dict:
    """{i: (l, u)}, each (B, *shape), for the input of every ReLU layer i of a batch of boxes
    lo, hi (B, *input shape): ``linear.preactivation_bounds(..., "backward", slope)`` of every
    sample, computed for the IBP-unstable neurons only. ``chunk``: pairs per backward pass
    (default: the largest within ``budget`` entries, ``chunk_size``)."""
    shapes = net.shapes(lo.shape[1:])
    ivals = jax.vmap(lambda a, b: ibp_intervals(net, params, a, b))(lo, hi)
    bounds, relax = {}, {}
    for i, layer in enumerate(net.layers):
        if layer.kind != "relu":
            continue
        l_ibp, u_ibp = ivals[i]
        if _exact_by_ibp(net, i):
            bounds[i] = (l_ibp, u_ibp)
        else:
            c = chunk if chunk is not None else chunk_size(net, lo.shape[1:], i, budget)
            c = int(max(1, min(c, l_ibp.size)))
            bounds[i] = refine_with_ibp(l_ibp, u_ibp, *_tighten(net, params, lo, hi, i, l_ibp, u_ibp, relax, shapes,
                                                                  c, budget))
        relax[i] = relu_relaxation(*bounds[i], slope)
    return bounds
