"""One training step of each method as a ratio to the standard step (issue 14), in one process.

The step is the real trainer's (``training.steps.epoch``: objective step + optax SGD inside a
``lax.scan``), float32 with full-precision products, batch 256, per step of a 2-step epoch:
- the paper's two-layer net at m = 5,000 on MNIST-shaped inputs (d = 784, ±1 labels, ε = 0.01),
  plus its closed-form IBP loop (``training.fit``'s fast path on the paper's net) for reference;
- DM-small (10 classes, ε = 0.1, inputs clipped to [0, 1]).
Methods: standard, ibp, crown_ibp (β = 0.5: both bounds computed), crown, pgd (10 steps),
fgsm, advibp and advibp_fixed (joint phase: FGSM + IBP gradients every step). CROWN training
("crown small nets" in issue 14) is left out for DM-small: the gradient through its backward
intermediate bounds at batch 256 asks for 42 GB (measured: RESOURCE_EXHAUSTED on 24 GB).
``--only dm`` runs DM-small alone.
Times are the best of interleaved rounds (``_common.interleaved_best``).
Usage: python benchmarks/bench_methods.py [--quick]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from _common import cli, interleaved_best, machine
from ntkflow import nets
from ntkflow.training.steps import epoch
from ntkflow.paper.model import init_params
from ntkflow.objectives import objective
from ntkflow.paper.epoch import sgd_epoch as fast_epoch
from ntkflow.training.settings import optimizer

METHODS = ("standard", "ibp", "crown_ibp", "crown", "pgd", "fgsm", "advibp", "advibp_fixed")


class Problem:
    def __init__(self, net, params, X, y, eps, B, steps):
        self.net, self.params, self.X, self.y, self.B, self.steps = net, params, X, y, B, steps
        self.idx = jnp.arange(B * steps).reshape(steps, B)
        self.sched = jnp.asarray(np.tile([eps, 0.5, 0.0, 10.0], (steps, 1)), jnp.float32)  # β = 0.5, epoch 10
        self.keys = jax.random.split(jax.random.PRNGKey(0), steps)
        self.scale, self.lr = jnp.asarray(float(steps), jnp.float32), jnp.asarray(1e-4, jnp.float32)
        self.opt = optimizer("sgd", None)

    def step(self, obj):
        p = self.params
        c = (p, self.opt.init(p), obj.init(p), jax.tree_util.tree_map(jnp.zeros_like, p))
        return lambda: epoch(self.net, *c, self.X, self.y, self.idx, self.sched, self.keys, self.scale, self.lr, 20.0,
                             obj, self.opt)


def problems(quick: bool):
    B, steps, m = (32, 2, 500) if quick else (256, 2, 5000)
    rng = np.random.default_rng(0)
    W, a = init_params(0, m, 784)
    net, p = nets.two_layer(np.asarray(W, np.float32), a)
    X = jnp.asarray(rng.uniform(0, 1, (B * steps, 784)), jnp.float32)
    y2 = jnp.asarray(rng.choice([-1.0, 1.0], B * steps), jnp.float32)
    two = Problem(net, jax.tree_util.tree_map(lambda v: v.astype(jnp.float32), p), X, y2, 0.01, B, steps)
    dm = nets.dm_small()
    Xi = jnp.asarray(rng.uniform(0, 1, (B * steps, 1, 28, 28)), jnp.float32)
    y10 = jnp.asarray(rng.integers(0, 10, B * steps))
    deep = Problem(dm, dm.init(0, dtype=jnp.float32), Xi, y10, 0.1, B, steps)
    return [(f"two-layer m = {m:,}", two, None, METHODS),
            ("DM-small", deep, (0.0, 1.0), tuple(mth for mth in METHODS if mth != "crown"))]


def main(quick: bool = False, only: str = ""):
    print(f"# bench_methods — {machine()}")
    with jax.enable_x64(True):  # as fit runs the epoch: float32 params and data
        for name, pb, clip, methods in problems(quick):
            if only and only not in name.lower():
                continue
            objs = [objective(mth, clip=clip, steps=10) for mth in methods]
            fns = [pb.step(o) for o in objs]
            if pb.net.tag == "two_layer":
                W, a = pb.params[0]["weight"], pb.net.layers[2].fixed[0].astype(jnp.float32)
                st = pb.opt.init(W)
                fns.append(lambda: fast_epoch(W, st, jnp.zeros_like(W), a, pb.X, pb.y, pb.idx, pb.sched[:, 0],
                                              pb.scale, pb.lr, pb.opt))
            times = interleaved_best(fns, 1 if quick else 3)
            base = times[0]
            cols = ", ".join(f"{m} {t / base:.2f}x" for m, t in zip(methods, times))
            extra = f"; closed-form IBP loop {times[-1] / base:.2f}x" if len(times) > len(methods) else ""
            print(f"{name}, batch {pb.B}: standard step {1e3 * base / pb.steps:.1f} ms; per step vs standard: "
                  f"{cols}{extra}", flush=True)


if __name__ == "__main__":
    import sys

    if "--only" in sys.argv:  # python bench_methods.py --only dm
        main("--quick" in sys.argv, sys.argv[sys.argv.index("--only") + 1])
    else:
        cli(main)
