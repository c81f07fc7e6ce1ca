#!/usr/bin/env bash
# GPU benchmarks (issue 7): the CPU benchmarks plus the paper-scale workload on one GPU.
# Full-MNIST-shaped data (n = 11,800, d = 784), 70 epochs of SGD with batch 128, at
# m = 80,000 and m = 10⁶, float32 with full-precision products (Precision.HIGHEST; no TF32),
# then the same at TF32 to show whether certified errors change.
# Usage: bash benchmarks/gpu.sh   (needs a CUDA jax; writes gpu_results.txt here)
set -euo pipefail
cd "$(dirname "$0")"
python - <<'PY' | tee gpu_results.txt
import time, jax, jax.numpy as jnp, numpy as np, optax
import ntkflow._jax as J
from ntkflow.train import _epoch
from ntkflow.model import _ibp_lower_margin
from _common import machine
print("#", machine())
n, d, B, epochs = 11_800, 784, 128, 70
rng = np.random.default_rng(0)
X = jnp.asarray(rng.uniform(size=(n, d)), jnp.float32)
y = jnp.asarray(rng.choice([-1.0, 1.0], n), jnp.float32)
steps = n // B
for m in (80_000, 1_000_000):
    for prec in ("highest", "tf32"):
        J.HIGHEST = jax.lax.Precision.HIGHEST if prec == "highest" else jax.lax.Precision.DEFAULT
        jax.clear_caches()
        W = jax.random.normal(jax.random.PRNGKey(0), (m, d), jnp.float32)
        a = jnp.where(jax.random.bernoulli(jax.random.PRNGKey(1), 0.5, (m,)), 1.0, -1.0).astype(jnp.float32)
        opt = optax.sgd(6.8e-5); st = opt.init(W)
        eps = jnp.full((steps,), 0.04, jnp.float32)
        idx = jnp.asarray(rng.permutation(n)[: steps * B].reshape(steps, B))
        W1, _ = _epoch(W, st, a, X, y, idx, eps, n / B, opt); jax.block_until_ready(W1)  # compile
        t = time.perf_counter()
        for _ in range(epochs):
            W, st = _epoch(W, st, a, X, y, idx, eps, n / B, opt)
        jax.block_until_ready(W)
        dt = time.perf_counter() - t
        cert = float(jnp.mean(_ibp_lower_margin(W, a, X, y, 0.04) <= 0))
        print(f"m={m} precision={prec}: {epochs} epochs in {dt:.1f}s ({dt / epochs * 1e3:.0f} ms/epoch); "
              f"certified error {cert:.4f}")
PY
python run_all.py | tee -a gpu_results.txt
