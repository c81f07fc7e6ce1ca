"""Training-step benchmarks of the paper's net, printed as ratios measured in one process.

3.  One IBP step (robust loss + closed-form gradient + optax SGD update) at n=128 (a batch),
    d=784, m=80,000, float32, against the two GEMMs it must do — X Wᵀ (n×d·d×m) and the
    (m×n)(n×d) gradient product — and jax.value_and_grad of the plain (ε = 0) loss. The step
    is timed as the trainer runs it: inside the jitted epoch scan, here 8 steps, per step.
3b. One epoch of the paper's net through the one host loop (``training.fit.FitRun.step``:
    its inputs, the closed-form epoch ``training.fastpath`` picks, the divergence check, the
    stop rule, the path length) against the loop ``nf.train`` ran before it went over ``fit``
    (its host body copied below as the baseline; its jitted ``_epoch`` moved verbatim to
    ``paper.epoch.sgd_epoch``, which both sides call, so the ratio is the host loops'). The two run in turn each
    round (``interleaved_best``), timed by CPU seconds of the process (robust to other jobs on
    a shared machine) and by wall time; the script first checks that they give the same W bit
    for bit. Target: (fit) / (old loop) ≤ 1.05.
Usage: python benchmarks/bench_train.py [--quick]
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from _common import best_time, cli, interleaved_best, machine
from ntkflow._jax import HIGHEST
from ntkflow.nets import two_layer
from ntkflow.objectives import objective
from ntkflow.paper.epoch import sgd_epoch
from ntkflow.paper.loss import logistic
from ntkflow.paper.model import _margin
from ntkflow.training.fit import FitRun
from ntkflow.training.settings import fit_settings, optimizer


class OldLoop:
    """The baseline's host body of one epoch (permutation, ε per step, epoch, loss, path length, divergence)."""

    def __init__(self, W0, a, X, y, eps, lr, B, seed, dtype):
        self.n, self.B, self.steps = X.shape[0], B, X.shape[0] // B
        self.opt = optimizer("sgd", None)
        cast = lambda v: jnp.asarray(v, dtype)  # noqa: E731
        self.W, self.a, self.X, self.y = cast(W0), cast(a), cast(X), cast(y)
        self.state, self.g_prev = self.opt.init(self.W), jnp.zeros_like(self.W)
        self.eps, self.lr, self.rng = eps, lr, np.random.default_rng(seed)
        self.path = np.zeros(W0.shape[0])

    def step(self, ep):
        n, B, steps = self.n, self.B, self.steps
        idx = np.arange(n) if B == n else self.rng.permutation(n)
        idx = idx[: steps * B].reshape(steps, B)
        eps_steps = np.array([self.eps for _ in range(steps)])
        W_prev = self.W
        self.W, self.state, self.g_prev, total, l2, cos = sgd_epoch(
            self.W, self.state, self.g_prev, self.a, self.X, self.y, jnp.asarray(idx),
            jnp.asarray(eps_steps, self.W.dtype), n / B, jnp.asarray(self.lr, self.W.dtype), self.opt)
        epoch_loss = float(total) * n / (steps * B)
        self.path += np.linalg.norm(np.asarray(self.W, np.float64) - np.asarray(W_prev, np.float64), axis=1)
        return not (np.isfinite(epoch_loss) and bool(jnp.all(jnp.isfinite(self.W))))


def fit_run(W0, a, X, y, eps, lr, B, seed, dtype):
    """A ``FitRun`` of the paper's net that never records inside the timed epochs."""
    net, p0 = two_layer(W0, a)
    s = fit_settings(optimizer="sgd", lr=lr, epochs=10**6, batch_size=B, seed=seed, record_every=10**6,
                     dtype=dtype, metrics=("train_error",))
    return FitRun(net, p0, jnp.asarray(X), jnp.asarray(y), eps, objective("ibp"), s)


def step_vs_gemms(quick: bool):
    n, d, m = (128, 784, 8000) if quick else (128, 784, 80_000)
    k = 8  # steps per timed epoch
    rng = np.random.default_rng(0)
    Xall = jnp.asarray(rng.uniform(size=(n * k, d)), jnp.float32)
    yall = jnp.asarray(rng.choice([-1.0, 1.0], n * k), jnp.float32)
    X, y = Xall[:n], yall[:n]
    W = jnp.asarray(rng.standard_normal((m, d)), jnp.float32)
    a = jnp.asarray(rng.choice([-1.0, 1.0], m), jnp.float32)
    G = jnp.asarray(rng.standard_normal((n, m)), jnp.float32)
    opt = optax.sgd(1.0)  # unit rate: the epoch scales by a traced lr
    state = opt.init(W)
    g0 = jnp.zeros_like(W)
    lr = jnp.asarray(1e-4, jnp.float32)
    idx = jnp.arange(n * k).reshape(k, n)
    eps_steps = jnp.full((k,), 0.04, jnp.float32)
    epoch = lambda: sgd_epoch(W, state, g0, a, Xall, yall, idx, eps_steps, 1.0, lr, opt)  # noqa: E731

    @jax.jit
    def gemms(W, G):
        z = jnp.matmul(X, W.T, precision=HIGHEST)
        return z, jnp.matmul(G.T, X, precision=HIGHEST)

    plain = jax.jit(jax.value_and_grad(lambda W: jnp.sum(logistic(_margin(W, a, X, y)))))
    t_step = best_time(epoch, repeat=3) / k
    t_gemm = best_time(lambda: gemms(W, G), repeat=5)
    t_plain = best_time(lambda: plain(W), repeat=5)
    print(f"3. IBP training step n={n} d={d} m={m} float32, per step of an {k}-step epoch: {t_step * 1e3:.1f} ms "
          f"vs two GEMMs {t_gemm * 1e3:.1f} ms = {t_step / t_gemm:.2f}x (target ≤ 1.3x); vs jax.value_and_grad of "
          f"the plain loss {t_plain * 1e3:.1f} ms = {t_step / t_plain:.2f}x")


def fit_vs_old_loop(quick: bool):
    with jax.enable_x64(True):
        for n, d, m, B, rounds in ((64, 20, 200, 8, 300), (1024, 784, 2000 if quick else 20_000, 128,
                                                          5 if quick else 12)):
            rng = np.random.default_rng(1)
            X = rng.uniform(size=(n, d)) / d
            y = rng.choice([-1.0, 1.0], n)
            W0 = rng.standard_normal((m, d))
            a = rng.choice([-1.0, 1.0], m)
            args = (W0, a, X, y, 0.04, 1e-3, B, 0, "float32")
            old, new = OldLoop(*args), fit_run(*args)
            for ep in range(2):  # the same numbers before any timing
                old.step(ep)
                new.step(ep)
            assert np.array_equal(np.asarray(old.W), np.asarray(new.carry[0])), "fit's fast path left the old loop's W"
            assert np.array_equal(old.path, new.path_len)
            ep = iter(range(2, 10**6))
            fns = [lambda: old.step(next(ep)), lambda: new.step(next(ep))]
            c_old, c_new = interleaved_best(fns, rounds, time.process_time)
            t_old, t_new = interleaved_best(fns, rounds)
            print(f"3b. paper-net epoch n={n} d={d} m={m} B={B} float32 ({n // B} steps): fit (fast path) "
                  f"{c_new * 1e3:.2f} ms CPU vs the old nf.train loop {c_old * 1e3:.2f} ms = {c_new / c_old:.3f}x "
                  f"(wall {t_new * 1e3:.2f} vs {t_old * 1e3:.2f} ms = {t_new / t_old:.3f}x; target ≤ 1.05x; "
                  f"W bit-identical after 2 epochs)")


def main(quick: bool = False):
    print(f"# bench_train — {machine()}")
    fit_vs_old_loop(quick)
    step_vs_gemms(quick)


if __name__ == "__main__":
    cli(main)
