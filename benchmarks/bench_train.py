"""Training-step benchmark (issue 7, item 3), printed as ratios measured in one run.

One IBP step (robust loss + closed-form gradient + optax SGD update) at n=128 (a batch),
d=784, m=80,000, float32, against (a) the two GEMMs it must do — X Wᵀ (n×d·d×m) and the
(m×n)(n×d) gradient product — and (b) jax.value_and_grad of the plain (ε = 0) loss.
The step is timed as ``train`` runs it: inside the jitted epoch scan, here 8 steps,
per step. A lone one-step scan is also reported: XLA inlines a length-1 loop and then
fuses the ‖w_r‖₁ reduction into the product's epilogue, which is 3× slower.
Target: (step) / (two GEMMs) ≤ 1.3.
Usage: python benchmarks/bench_train.py [--quick]
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import optax

from _common import best_time, cli, machine
from ntkflow._jax import HIGHEST
from ntkflow.paper.loss import logistic
from ntkflow.paper.model import _margin
from ntkflow.train import _epoch


def main(quick: bool = False):
    n, d, m = (128, 784, 8000) if quick else (128, 784, 80_000)
    k = 8  # steps per timed epoch
    rng = np.random.default_rng(0)
    Xall = jnp.asarray(rng.uniform(size=(n * k, d)), jnp.float32)
    yall = jnp.asarray(rng.choice([-1.0, 1.0], n * k), jnp.float32)
    X, y = Xall[:n], yall[:n]
    W = jnp.asarray(rng.standard_normal((m, d)), jnp.float32)
    a = jnp.asarray(rng.choice([-1.0, 1.0], m), jnp.float32)
    G = jnp.asarray(rng.standard_normal((n, m)), jnp.float32)
    opt = optax.sgd(1.0)  # unit rate: _epoch scales by a traced lr
    state = opt.init(W)
    lr = jnp.asarray(1e-4, jnp.float32)
    idx = jnp.arange(n * k).reshape(k, n)
    eps_steps = jnp.full((k,), 0.04, jnp.float32)
    epoch = lambda: _epoch(W, state, a, Xall, yall, idx, eps_steps, 1.0, lr, opt)  # noqa: E731
    lone = lambda: _epoch(W, state, a, X, y, idx[:1], eps_steps[:1], 1.0, lr, opt)  # noqa: E731

    @jax.jit
    def gemms(W, G):
        z = jnp.matmul(X, W.T, precision=HIGHEST)
        return z, jnp.matmul(G.T, X, precision=HIGHEST)

    plain = jax.jit(jax.value_and_grad(lambda W: jnp.sum(logistic(_margin(W, a, X, y)))))
    t_step = best_time(epoch, repeat=3) / k
    t_lone = best_time(lone, repeat=3)
    t_gemm = best_time(lambda: gemms(W, G), repeat=5)
    t_plain = best_time(lambda: plain(W), repeat=5)
    print(f"# bench_train — {machine()}")
    print(f"3. IBP training step n={n} d={d} m={m} float32, per step of an {k}-step epoch: {t_step * 1e3:.1f} ms "
          f"vs two GEMMs "
          f"{t_gemm * 1e3:.1f} ms = {t_step / t_gemm:.2f}x (target ≤ 1.3x); vs jax.value_and_grad of the plain "
          f"loss {t_plain * 1e3:.1f} ms = {t_step / t_plain:.2f}x; a lone one-step scan: {t_lone * 1e3:.1f} ms "
          f"= {t_lone / t_gemm:.2f}x")


if __name__ == "__main__":
    cli(main)
