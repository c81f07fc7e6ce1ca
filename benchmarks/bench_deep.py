"""Deep-net training benchmarks on CPU (issue 15), printed as ratios measured in one process.

The step timed is the real trainer's: ``training.steps.epoch`` (a jitted ``lax.scan`` of
objective steps, optax SGD), float32 with full-precision products, inside x64 as ``fit``
runs it, per step of a ``STEPS``-step epoch; DM-small (MNIST shape) and a 3×1024 MLP,
batch 256, ε = 0.1 (clip to [0, 1]).

(a) IBP training step (objective "ibp") vs plain step (objective "standard": clean
    cross-entropy). Target ≤ 2× (auto_LiRPA measured 3.3×; a plain JAX prototype 1.9×
    DM-small, 3.1× MLP).
(b) Per-model time of K = 8 models grouped (``training.batched``: "vmap" = one
    ``group_epoch``, "loop" = the K solo epochs in turn) vs one model, IBP steps. Target
    ≤ 1.1× with the grouping "auto" picks (``choose_grouping``).
(c) Where (a)'s time goes: the plain step inside ``fit.epoch``'s scan vs the same step
    (objective step + SGD update) jitted alone, one call per step.

Times are the best of interleaved rounds (``_common.interleaved_best``).
Usage: python benchmarks/bench_deep.py [--quick]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from _common import cli, interleaved_best, machine
from ntkflow import nets
from ntkflow.training.batched import choose_grouping, group_epoch
from ntkflow.training.fastpath import Generic
from ntkflow.training.steps import epoch
from ntkflow.objectives import Context, objective
from ntkflow.training.settings import optimizer

EPS = 0.1


class Case:
    """One net's training problem: ``steps`` batches of ``B`` samples, float32."""

    def __init__(self, net, shape, B: int, steps: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.net, self.shape, self.B, self.steps = net, shape, B, steps
        self.X = jnp.asarray(rng.uniform(0, 1, (B * steps, *shape)), jnp.float32)
        self.y = jnp.asarray(rng.integers(0, 10, B * steps))
        self.idx = jnp.arange(B * steps).reshape(steps, B)
        self.sched = jnp.asarray(np.tile([EPS, 0.0, 0.0, 0.0], (steps, 1)), jnp.float32)
        self.scale = jnp.asarray(float(steps), jnp.float32)
        self.lr = jnp.asarray(1e-3, jnp.float32)
        self.opt = optimizer("sgd", None)

    def carry(self, seed: int, obj):
        p = self.net.init(seed, self.shape, dtype=jnp.float32)
        return p, self.opt.init(p), obj.init(p), jax.tree_util.tree_map(jnp.zeros_like, p)

    def solo(self, obj, seed: int = 0):
        """() -> one model's epoch (fit's path)."""
        c, keys = self.carry(seed, obj), jax.random.split(jax.random.PRNGKey(seed), self.steps)
        return lambda: epoch(self.net, *c, self.X, self.y, self.idx, self.sched, keys, self.scale, self.lr, 1.0, obj,
                             self.opt)

    def bare(self, obj):
        """() -> ``steps`` jitted single steps (objective step + SGD update), no scan."""
        p = self.net.init(0, self.shape, dtype=jnp.float32)
        ctx = Context(*(jnp.asarray(v, jnp.float32) for v in (EPS, 0.0, 0.0)), jax.random.PRNGKey(0),
                      *(jnp.asarray(0.0, jnp.float32) for _ in range(2)))

        @jax.jit
        def step(p, rows):
            g = obj.step(self.net, p, obj.init(p), self.X[rows], self.y[rows], ctx).grads
            return jax.tree_util.tree_map(lambda u, v: u - self.lr * self.scale * v, p, g)

        return lambda: [step(p, self.idx[k]) for k in range(self.steps)]

    def loop(self, obj, K: int):
        """() -> K models' epochs in turn (fit_group's "loop")."""
        fns = [self.solo(obj, s) for s in range(K)]
        return lambda: [f() for f in fns]

    def vmap(self, obj, K: int):
        """() -> one ``group_epoch`` of K models (fit_group's "vmap", one device)."""
        c = jax.tree_util.tree_map(lambda *v: jnp.stack(v), *[self.carry(s, obj) for s in range(K)])
        keys = jnp.stack([jax.random.split(jax.random.PRNGKey(s), self.steps) for s in range(K)])
        rep = lambda v: jnp.stack([v] * K)  # noqa: E731
        idx, sched, lr = rep(self.idx), rep(self.sched), rep(self.lr)
        return lambda: group_epoch(self.net, c, self.X, self.y, idx, sched, keys, self.scale, lr, 1.0, obj, self.opt, Generic())


def cases(quick: bool):
    B, steps = (32, 2) if quick else (256, 2)
    return [("DM-small", Case(nets.dm_small(), (1, 28, 28), B, steps)),
            ("3x1024 MLP", Case(nets.mlp((1024, 1024, 1024, 10)), (784,), B, steps))]


def ibp_vs_plain(quick: bool):
    ibp, plain = objective("ibp", clip=(0.0, 1.0)), objective("standard")
    for name, c in cases(quick):
        t_plain, t_ibp = interleaved_best([c.solo(plain), c.solo(ibp)], 2 if quick else 4)
        print(f"(a) {name}, batch {c.B}, float32: plain step {1e3 * t_plain / c.steps:.1f} ms, IBP step "
              f"{1e3 * t_ibp / c.steps:.1f} ms = {t_ibp / t_plain:.2f}x (target ≤ 2x)", flush=True)


def scan_vs_bare(quick: bool):
    plain = objective("standard")
    for name, c in cases(quick):
        t_scan, t_bare = interleaved_best([c.solo(plain), c.bare(plain)], 2 if quick else 3)
        print(f"(c) {name}: plain step inside fit.epoch's scan {1e3 * t_scan / c.steps:.1f} ms vs the same step "
              f"jitted alone {1e3 * t_bare / c.steps:.1f} ms = {t_scan / t_bare:.2f}x", flush=True)


def grouped_vs_one(quick: bool):
    K = 2 if quick else 8
    ibp = objective("ibp", clip=(0.0, 1.0))
    for name, c in cases(quick):
        t_one, t_vmap, t_loop = interleaved_best([c.solo(ibp), c.vmap(ibp, K), c.loop(ibp, K)], 1 if quick else 2)
        ratio = {"vmap": t_vmap / K / t_one, "loop": t_loop / K / t_one}
        auto = choose_grouping(c.net)
        print(f"(b) {name}, K = {K} IBP models, per model vs one model ({1e3 * t_one / c.steps:.1f} ms/step): "
              f"vmap {ratio['vmap']:.2f}x, loop {ratio['loop']:.2f}x; auto picks {auto}: {ratio[auto]:.2f}x "
              f"(target ≤ 1.1x)", flush=True)


def main(quick: bool = False):
    print(f"# bench_deep — {machine()}")
    with jax.enable_x64(True):  # as fit runs the epoch: float32 params and data, int64 indices
        ibp_vs_plain(quick)
        scan_vs_bare(quick)
        grouped_vs_one(quick)


if __name__ == "__main__":
    cli(main)
