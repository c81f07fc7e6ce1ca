"""Bound engine benchmarks (issue 13), printed as ratios measured in one process.

1. IBP bound pass vs the plain forward pass (target ≤ 2.5×), and CROWN-IBP vs IBP,
   on DM-small (MNIST shape) and a 3×1024 MLP, batch 256, float32 (the deep-net default).
2. Generic margin Gram (J·Jᵀ over parameter blocks) vs the structured Eq. 6 fast path,
   two-layer net, float64.
3. Exact MILP margin: seconds per sample against net size (ReLU count, unstable neurons).
Usage: python benchmarks/bench_bounds.py [--quick]
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from _common import best_time, cli, interleaved_best, machine
import ntkflow as nf
from ntkflow.nets import inputs as NI
from ntkflow import nets
from ntkflow.bounds import exact_margin
from ntkflow.bounds.engine import bounds_batched
from ntkflow.bounds.exact import relu_count
from ntkflow.kernels import jacobian_gram


def _timings(net, params, X, y, eps, rounds):
    pb = NI.problem(net, params, X, y, eps, (0.0, 1.0))
    fwd = jax.jit(net.apply)
    n = X.shape[0]
    return interleaved_best([lambda: fwd(params, pb.X),
                             lambda: bounds_batched(net, params, pb.C, pb.lo, pb.hi, "ibp", None, n),
                             lambda: bounds_batched(net, params, pb.C, pb.lo, pb.hi, "crown_ibp", None, n)], rounds)


def bound_passes(quick: bool):
    n = 64 if quick else 256
    rng = np.random.default_rng(0)
    cases = [("DM-small", nets.dm_small(), (1, 28, 28)), ("3x1024 MLP", nets.mlp((1024, 1024, 1024, 10)), (784,))]
    for name, net, shape in cases:
        params = net.init(0, shape)
        X = rng.uniform(0, 1, (n, *shape)).astype(np.float32)
        y = rng.integers(0, 10, n)
        t_fwd, t_ibp, t_cib = _timings(net, params, X, y, 0.1, 3 if quick else 15)
        print(f"1. {name} batch {n} float32: forward {1e3 * t_fwd:.2f} ms, IBP {1e3 * t_ibp:.2f} ms "
              f"= {t_ibp / t_fwd:.2f}x forward (target ≤ 2.5x); CROWN-IBP {1e3 * t_cib:.2f} ms "
              f"= {t_cib / t_ibp:.2f}x IBP")


def gram_paths(quick: bool):
    n, d, m = (20, 784, 200) if quick else (100, 784, 1000)
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        W, a = rng.standard_normal((m, d)), rng.choice([-1.0, 1.0], m)
        X, y = rng.uniform(0.04, 1, (n, d)), rng.choice([-1.0, 1.0], n)
        net, params = nets.two_layer(W, a)
        pb = NI.problem(net, params, X, y, 0.04)
        t_gen = best_time(lambda: jacobian_gram(net, params, pb.C, pb.lo, pb.hi, "ibp"), 1 if not quick else 2)
        t_str = best_time(lambda: nf.gram_matrix(W, a, X, y, 0.04), 3)
        err = float(np.max(np.abs(np.asarray(jacobian_gram(net, params, pb.C, pb.lo, pb.hi, "ibp"))
                                  - nf.gram_matrix(W, a, X, y, 0.04))))
    print(f"2. margin Gram, two-layer n={n} d={d} m={m} float64: generic J·Jᵀ {t_gen:.3f} s, structured Eq. 6 "
          f"{1e3 * t_str:.1f} ms = fast path {t_gen / t_str:.0f}x faster; max |ΔH| = {err:.1e}")


def milp_scaling(quick: bool):
    widths = (8, 16) if quick else (8, 16, 32, 48)
    rng = np.random.default_rng(2)
    d, n, eps = 10, 3, 0.1
    X, y = rng.uniform(0, 1, (n, d)), rng.integers(0, 3, n)
    for w in widths:
        net = nets.mlp((w, w, 3))
        with jax.enable_x64(True):
            params = net.init(0, (d,))
            pb = NI.problem(net, params, X, y, eps, (0.0, 1.0))
            pre = jax.vmap(lambda lo, hi: nf.bounds.preactivation_bounds(net, params, lo, hi, "backward", "adaptive"))(
                pb.lo, pb.hi)
            unstable = np.mean([float(jnp.sum((l < 0) & (u > 0))) / n for l, u in pre.values()]) * len(pre)
            exact_margin(net, params, X, y, eps, clip=(0, 1), time_limit=30.0)  # compile outside the timing
            t = time.perf_counter()
            res = exact_margin(net, params, X, y, eps, clip=(0, 1), time_limit=30.0)
            dt = (time.perf_counter() - t) / n
        print(f"3. MILP mlp({w},{w},3) d={d} ε={eps}: {relu_count(net, (d,))} ReLUs, {unstable:.1f} unstable per "
              f"sample, {dt:.3f} s/sample, status {sorted(set(res.status))}")


def main(quick: bool = False):
    print(f"# bench_bounds — {machine()}")
    bound_passes(quick)
    gram_paths(quick)
    milp_scaling(quick)


if __name__ == "__main__":
    cli(main)
