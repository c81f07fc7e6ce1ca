"""Deep-net IBP training steps (issue 15): a 3×1024 MLP and DM-small on MNIST-shaped
batches of 256 at ε = 0.1, float32 with full-precision products. Prints per-step times of
a plain (clean cross-entropy) step and an IBP step (cross-entropy on the IBP margin lower
bounds), and the per-model time of K models trained at once with ``jax.vmap`` against one
model. ``--quick`` runs a CPU-sized version.
"""

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ntkflow.bounds.engine import sample_bounds
from ntkflow.nets import dm_small, mlp

quick = "--quick" in sys.argv
B, K_LIST, eps = (32, (1, 4), 0.1) if quick else (256, (1, 8, 32), 0.1)


def spec_matrix(y, k):
    """C with rows e_y − e_j, j ≠ y: (n, k − 1, k)."""
    eye = jnp.eye(k)
    rows = jnp.arange(k - 1)
    others = rows[None, :] + (rows[None, :] >= y[:, None])
    return eye[y][:, None, :] - eye[others]


def losses(net, k):
    def clean(params, X, y):
        z = jax.vmap(lambda x: net.apply_one(params, x))(X)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(z, y))

    def ibp(params, X, y):
        C = spec_matrix(y, k)
        lo, hi = jnp.clip(X - eps, 0, 1), jnp.clip(X + eps, 0, 1)
        m = jax.vmap(lambda c, l, h: sample_bounds(net, params, c, l, h, "ibp"))(C, lo, hi)
        z = jnp.concatenate([jnp.zeros((m.shape[0], 1), m.dtype), -m], axis=1)
        return jnp.mean(jax.nn.logsumexp(z, axis=1))

    return clean, ibp


def stepper(loss, opt):
    def step(params, state, X, y):
        g = jax.grad(loss)(params, X, y)
        upd, state = opt.update(g, state, params)
        return optax.apply_updates(params, upd), state

    return step


def timeit(fn, args, reps):
    out = fn(*args)
    jax.block_until_ready(out)
    best = np.inf
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - t) / reps)
    return best


def main():
    print(f"# deep-net steps, {jax.devices()[0].device_kind}, jax {jax.__version__}, batch {B}, eps {eps}")
    rng = np.random.default_rng(0)
    nets = {"mlp 3x1024": (mlp([784, 1024, 1024, 1024, 10], input_shape=(784,)), (784,)),
            "DM-small": (dm_small((1, 28, 28), 10), (1, 28, 28))}
    with jax.default_matmul_precision("highest"):
        for name, (net, shape) in nets.items():
            X = jnp.asarray(rng.uniform(size=(B, *shape)), jnp.float32)
            y = jnp.asarray(rng.integers(0, 10, B))
            opt = optax.sgd(1e-3)
            clean, ibp = losses(net, 10)
            times = {}
            for lname, loss in (("plain", clean), ("ibp", ibp)):
                step = jax.jit(stepper(loss, opt))
                params = net.init(0, shape, dtype=jnp.float32)
                times[lname] = timeit(step, (params, opt.init(params), X, y), 5 if quick else 20)
            print(f"{name}: plain step {times['plain'] * 1e3:.3f} ms, IBP step {times['ibp'] * 1e3:.3f} ms "
                  f"= {times['ibp'] / times['plain']:.2f}x", flush=True)
            one = None
            for K in K_LIST:
                ps = jax.tree_util.tree_map(lambda *v: jnp.stack(v), *[net.init(s, shape, dtype=jnp.float32)
                                                                       for s in range(K)])
                st = jax.vmap(opt.init)(ps)
                vstep = jax.jit(jax.vmap(stepper(ibp, opt), in_axes=(0, 0, None, None)))
                t = timeit(vstep, (ps, st, X, y), 5 if quick else 20) / K
                one = one or t
                print(f"  {name}: K = {K:>2} vmapped IBP steps: {t * 1e3:.4f} ms per model "
                      f"({t / one:.2f}x of one model)", flush=True)


if __name__ == "__main__":
    main()
