"""Full CROWN (backward intermediate bounds) on DM-small images: the batched unstable-only path vs the
per-sample dense one, in one process (issue 21).

``margin_bounds(..., "crown")`` runs ``bounds.sparse``: IBP seeds every ReLU input, only the
(sample, neuron) pairs IBP leaves unstable get backward rows, chunked within ``MEMORY_BUDGET``
entries. The baseline is the same bounds computed per sample with every neuron's rows
(``preactivation_bounds(..., "backward")``, ``lax.map`` in batches sized by the dense
``backward_cost``: the path ``margin_bounds`` took before). Both give the same numbers
(tests/test_bounds_sparse.py); printed: times, their ratio, the largest difference, the
fraction of unstable neurons, and XLA's temp-buffer estimate of each compiled call.
float32 params and inputs, ε = 0.1 (and 0.02), clip (0, 1).
Usage: python benchmarks/bench_full_crown.py [--quick] [--n 64]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from _common import best_time, machine
from ntkflow.nets import inputs as NI
from ntkflow import nets
from ntkflow.bounds.engine import MEMORY_BUDGET, _over_samples, bounds_batched
from ntkflow.bounds.ibp import ibp_intervals
from ntkflow.bounds.linear import backward_cost


def temp_bytes(fn, *args):
    try:
        return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes
    except Exception:  # not every backend reports it
        return float("nan")


def train_memory(B: int):
    """XLA's temp-buffer estimate of the gradient of Σ exp(−CROWN margins) at batch B."""
    from ntkflow.bounds import margin_bounds

    net = nets.dm_small()
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.uniform(0, 1, (B, 1, 28, 28)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 10, B))
    params = net.init(0, dtype=jnp.float32)
    loss = lambda p: jnp.sum(jnp.exp(-margin_bounds(net, p, X, y, 0.1, "crown", clip=(0.0, 1.0))))  # noqa: E731
    m = temp_bytes(jax.grad(loss), params)
    print(f"# bench_full_crown — {machine()} — CROWN training gradient, DM-small, batch {B}: XLA temp estimate "
          f"{m / 2**30:.2f} GiB (chunks of MEMORY_BUDGET = {MEMORY_BUDGET} entries)", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--skip-dense", action="store_true")
    ap.add_argument("--train-memory", type=int, default=0, metavar="B",
                    help="only XLA's temp-buffer estimate of a CROWN training gradient at batch B (compiled, not run)")
    a = ap.parse_args()
    if a.train_memory:
        return train_memory(a.train_memory)
    n = 4 if a.quick else a.n
    net = nets.dm_small()
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.uniform(0, 1, (n, 1, 28, 28)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 10, n))
    params = net.init(0, dtype=jnp.float32)
    print(f"# bench_full_crown — {machine()} — DM-small, {n} images, float32", flush=True)
    for eps in (0.1, 0.02):
        pb = NI.problem(net, params, X, y, eps, (0.0, 1.0))
        ivals = jax.vmap(lambda lo, hi: ibp_intervals(net, params, lo, hi))(pb.lo, pb.hi)
        unst = {i: float(jnp.mean((ivals[i][0] < 0) & (ivals[i][1] > 0))) for i in (3, 6)}
        sparse = lambda p, C, lo, hi: bounds_batched(net, p, C, lo, hi, "crown", None, n)  # noqa: E731
        t_s = best_time(lambda: sparse(params, pb.C, pb.lo, pb.hi), 1 if a.quick else 2)
        m_s = temp_bytes(sparse, params, pb.C, pb.lo, pb.hi)
        line = (f"ε = {eps}: unstable under IBP {100 * unst[3]:.1f}% (conv 2), {100 * unst[6]:.1f}% (FC); "
                f"sparse batched {t_s:.2f} s (XLA temp {m_s / 2**30:.2f} GiB)")
        if not a.skip_dense:
            batch = int(max(1, min(n, MEMORY_BUDGET // backward_cost(net, (1, 28, 28), "backward", 9))))
            dense = jax.jit(lambda p, C, lo, hi: _over_samples(net, p, C, lo, hi, "crown", None, batch))
            t_d = best_time(lambda: dense(params, pb.C, pb.lo, pb.hi), 1)
            m_d = temp_bytes(dense, params, pb.C, pb.lo, pb.hi)
            diff = float(jnp.max(jnp.abs(sparse(params, pb.C, pb.lo, pb.hi) - dense(params, pb.C, pb.lo, pb.hi))))
            line += (f"; dense per sample (lax.map, {batch} at a time) {t_d:.2f} s (XLA temp {m_d / 2**30:.2f} GiB)"
                     f" = {t_d / t_s:.1f}x the sparse time; max |difference| {diff:.1e}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
