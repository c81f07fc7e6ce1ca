"""Peak memory benchmark (issue 7, item 5): each case runs in a fresh subprocess and
reports its peak resident set size (ru_maxrss) above the RSS it had once the inputs existed.

a. ``gram_matrix`` at n=1,000, d=784, m=100,000, float64 (target ≤ 1.5 GB above the inputs;
   W alone is 0.63 GB).
b. one training epoch (the jitted SGD scan, no recording) at n=1,000, d=784, m=10⁶, float32,
   batch 100 (W alone is 3.1 GB) — reported.
Usage: python benchmarks/bench_memory.py [--quick]
"""

from __future__ import annotations

import json
import subprocess
import sys

from _common import cli, machine

CASE = r"""
import json, resource, sys
import jax, jax.numpy as jnp, numpy as np
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * 4096
kind, n, d, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
X = rng.uniform(size=(n, d)); y = rng.choice([-1.0, 1.0], n)
if kind == "gram":
    import ntkflow as nf
    W = rng.standard_normal((m, d)); a = rng.choice([-1.0, 1.0], m)
    base = rss()
    H = nf.gram_matrix(W, a, X, y, 0.04)
else:
    import optax
    from ntkflow.paper.epoch import sgd_epoch
    W = jnp.asarray(rng.standard_normal((m, d), dtype=np.float32)); a = jnp.asarray(rng.choice([-1.0, 1.0], m), jnp.float32)
    Xf, yf = jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32)
    opt = optax.sgd(1.0); st = opt.init(W)
    idx = jnp.asarray(rng.permutation(n).reshape(-1, 100)); eps = jnp.full((n // 100,), 0.04, jnp.float32)
    base = rss()
    W = sgd_epoch(W, st, jnp.zeros_like(W), a, Xf, yf, idx, eps, n / 100, jnp.float32(1e-4), opt)[0]; jax.block_until_ready(W)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"base": base, "peak": peak}))
"""


def run(kind, n, d, m):
    out = subprocess.run([sys.executable, "-c", CASE, kind, str(n), str(d), str(m)], capture_output=True, text=True)
    if out.returncode != 0:
        return None, out.stderr.strip().splitlines()[-1:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return r, None


def main(quick: bool = False):
    print(f"# bench_memory — {machine()}")
    for kind, (n, d, m), label in (("gram", (1000, 784, 10_000 if quick else 100_000), "gram_matrix float64"),
                                   ("epoch", (1000, 784, 20_000 if quick else 1_000_000), "training epoch float32")):
        r, err = run(kind, n, d, m)
        if r is None:
            print(f"5. {label} n={n} d={d} m={m}: failed: {err}")
            continue
        extra = (r["peak"] - r["base"]) / 2**30
        print(f"5. {label} n={n} d={d} m={m}: peak RSS {r['peak'] / 2**30:.2f} GiB, {extra:.2f} GiB above the "
              f"inputs ({r['base'] / 2**30:.2f} GiB)" + (" (target ≤ 1.5 GB)" if kind == "gram" else ""))


if __name__ == "__main__":
    cli(main)
