"""The backward pass through a Conv2d: one GEMM-form transposed convolution vs the vjp of lax's convolution.

DM-small's two conv layers, float32; rows A (N, *out shape) with N = samples × rows — 256 × 9
(CROWN-IBP unfused at batch 256) and 256 × 1 (loss fusion) — pushed back to the layer's input
by ``ops.affine_back`` (``nets.conv.conv_transpose_gemm``) and by ``ops.affine_back_vjp`` (what
the engine ran before: the vjp of ``lax.conv_general_dilated``, which the batching rule already
lowers to ONE transposed convolution over all N rows). Timed: the rows alone, and the gradient
in (W, A) of a scalar of them (what a training step needs), at top level and inside a
``lax.cond`` (where CROWN-IBP's backward pass sits). Best of interleaved rounds.
Usage: python benchmarks/bench_crown_conv.py [--quick]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from _common import cli, interleaved_best, machine
from ntkflow import nets
from ntkflow.bounds.ops import affine_back, affine_back_vjp


def main(quick: bool = False):
    net = nets.dm_small()
    shapes = net.shapes((1, 28, 28))
    params = net.init(0, dtype=jnp.float32)
    rng = np.random.default_rng(0)
    print(f"# bench_crown_conv — {machine()} — DM-small conv layers, float32", flush=True)
    for N in ((64, 32) if quick else (2304, 256)):
        for k in (2, 0):  # conv 2 (stride 1), conv 1 (stride 2)
            layer, p, ins = net.layers[k], params[k], shapes[k]
            A = jnp.asarray(rng.standard_normal((N, *shapes[k + 1])), jnp.float32)
            fns = {}
            for name, back in (("gemm", affine_back), ("vjp", affine_back_vjp)):
                rows = jax.jit(lambda p, A, back=back: back(layer, p, A, ins)[0])
                loss = lambda p, A, back=back: jnp.sum(jnp.sin(back(layer, p, A, ins)[0]))  # noqa: E731
                grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
                fns[f"{name} rows"] = lambda rows=rows: rows(p, A)
                fns[f"{name} grad"] = lambda grad=grad: grad(p, A)
                if N <= 256:
                    gc = jax.jit(lambda p, A, b, loss=loss: jax.lax.cond(
                        b > 0, lambda: jax.grad(loss, argnums=(0, 1))(p, A), lambda: (p, A)))
                    fns[f"{name} grad in cond"] = lambda gc=gc: gc(p, A, 1.0)
            names = list(fns)
            t = dict(zip(names, interleaved_best([fns[n] for n in names], 1 if quick else 2)))
            parts = [f"{kind}: gemm {1e3 * t['gemm ' + kind]:.0f} ms vs vjp {1e3 * t['vjp ' + kind]:.0f} ms = "
                     f"{t['vjp ' + kind] / t['gemm ' + kind]:.1f}x" for kind in ("rows", "grad", "grad in cond")
                     if "gemm " + kind in t]
            print(f"conv {k // 2 + 1}, N = {N} rows: " + "; ".join(parts), flush=True)


if __name__ == "__main__":
    cli(main)
