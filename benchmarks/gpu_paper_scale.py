"""Paper-scale IBP training on one GPU (issues 7 and 15): full-MNIST-shaped data (n = 11,800,
d = 784), SGD with batch 128, float32 with full-precision products (Precision.HIGHEST, no
TF32) and then with TF32, at m = 80,000 and m = 10⁶, timing epochs of the jitted training
step (the step ``training.fit`` runs on the paper's net). Also prints whether the certified error changes under
TF32. ``--quick`` runs a CPU-sized version (for the test that keeps this script working).
"""

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import ntkflow._jax as J
from ntkflow.paper.model import _ibp_lower_margin
from ntkflow.paper.epoch import sgd_epoch

quick = "--quick" in sys.argv
n, d, B, epochs = (512, 784, 128, 2) if quick else (11_800, 784, 128, 70)
widths = (500,) if quick else (80_000, 1_000_000)
print(f"# paper-scale training, {jax.devices()[0].device_kind}, jax {jax.__version__}, n={n} B={B} epochs={epochs}")
rng = np.random.default_rng(0)
X = jnp.asarray(rng.uniform(size=(n, d)), jnp.float32)
y = jnp.asarray(rng.choice([-1.0, 1.0], n), jnp.float32)
steps = n // B
idx = jnp.asarray(rng.permutation(n)[: steps * B].reshape(steps, B))
eps = jnp.full((steps,), 0.04, jnp.float32)
for m in widths:
    for prec in ("highest", "tf32"):
        J.HIGHEST = jax.lax.Precision.HIGHEST if prec == "highest" else jax.lax.Precision.DEFAULT
        jax.clear_caches()
        W = jax.random.normal(jax.random.PRNGKey(0), (m, d), jnp.float32)
        a = jnp.where(jax.random.bernoulli(jax.random.PRNGKey(1), 0.5, (m,)), 1.0, -1.0).astype(jnp.float32)
        opt = optax.sgd(1.0)
        st = opt.init(W)
        lr = jnp.float32(6.8e-5)
        t = time.perf_counter()
        W1 = sgd_epoch(W, st, jnp.zeros_like(W), a, X, y, idx, eps, n / B, lr, opt)[0]
        jax.block_until_ready(W1)
        t_first = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(epochs):
            W, st = sgd_epoch(W, st, jnp.zeros_like(W), a, X, y, idx, eps, n / B, lr, opt)[:2]
        jax.block_until_ready(W)
        dt = time.perf_counter() - t
        cert = float(jnp.mean(_ibp_lower_margin(W, a, X, y, 0.04) <= 0))
        print(f"m={m} precision={prec}: {epochs} epochs in {dt:.2f} s ({dt / epochs * 1e3:.1f} ms/epoch; first epoch "
              f"with compile {t_first:.1f} s); certified error {cert:.4f}", flush=True)
J.HIGHEST = jax.lax.Precision.HIGHEST
