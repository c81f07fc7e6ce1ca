"""Public gradient and gradient-flow right-hand side vs their two GEMMs (issue 10), as ratios.

At n=128, d=784, m=80,000, float64 (what the public API and the flow compute in), each
against the two GEMMs the closed-form gradient must do, X Wᵀ (n×d·d×m) and the
(m×n)(n×d) product Gᵀ X, jitted on device arrays:
  public   ``robust_loss_grad(W, a, X, y, eps)`` as a user calls it (validation and
           transfers included), W from ``init_params`` (jax memory, 64-byte aligned) and W
           a fresh numpy array (16-byte aligned); beside it the generic path it replaced:
           the numpy arrays handed straight to the jitted function (jax copies unaligned
           memory itself) with ‖w_r‖₁ reduced inside it;
  flow     the right-hand side as ``gradient_flow`` evaluates it, per evaluation of a
           fixed-step segment of 8 evaluations (2 RK4 steps, 8 Euler steps, stage
           updates included), with ‖w_r‖₁ carried and generic (``carry_norms=False``).
Target: ≤ 1.3× the two GEMMs. Candidates run in interleaved rounds and each keeps its best
round, so that load from other processes hits them alike; the process's CPU time (all
threads) is printed beside the wall time as a check less sensitive to such load.
Usage: python benchmarks/bench_grad.py [--quick]
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from _common import cli, machine
from ntkflow import _validate as V
from ntkflow import init_params, robust_loss_grad
from ntkflow._jax import HIGHEST
from ntkflow.paper.flow import _fixed_segment
from ntkflow.paper.loss import _robust_loss_and_grad


def interleaved(fns: dict, rounds: int) -> tuple[dict, dict]:
    """Best wall time and best CPU time of each blocking call over ``rounds`` rounds that run
    every call once."""
    for f in fns.values():
        jax.block_until_ready(f())  # compile
    wall, cpu = dict.fromkeys(fns, float("inf")), dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for k, f in fns.items():
            t, c = time.perf_counter(), time.process_time()
            jax.block_until_ready(f())
            wall[k] = min(wall[k], time.perf_counter() - t)
            cpu[k] = min(cpu[k], time.process_time() - c)
    return wall, cpu


def generic_public(W, a, X, y, eps):
    """``robust_loss_grad`` before issue 10: numpy arrays into the jit, ‖w_r‖₁ inside."""
    W, a, X, y, eps = V.problem(W, a, X, y, eps)
    with jax.enable_x64(True):
        return np.asarray(_robust_loss_and_grad(W, a, X, y, eps)[1])


def main(quick: bool = False):
    n, d, m = (128, 784, 8000) if quick else (128, 784, 80_000)
    eps, k = 0.04, 2  # RK4 steps per segment; Euler takes 4k
    rng = np.random.default_rng(0)
    X = 0.04 + 0.96 * rng.uniform(size=(n, d))
    y = rng.choice([-1.0, 1.0], n)
    W_lib, a = init_params(0, m, d)
    W_np = rng.standard_normal((m, d))
    with jax.enable_x64(True):
        Wd, ad, Xd, yd = (jnp.asarray(v) for v in (W_lib, a, X, y))
        G = jnp.asarray(rng.standard_normal((n, m)))

        @jax.jit
        def gemms(W, G):
            return jnp.matmul(Xd, W.T, precision=HIGHEST), jnp.matmul(G.T, Xd, precision=HIGHEST)

        def segment(method, steps, carry):
            return lambda: _fixed_segment(Wd, ad, Xd, yd, eps, 1e-4, steps, method, carry_norms=carry)

        wall, cpu = interleaved({
            "gemm": lambda: gemms(Wd, G),
            "lib": lambda: robust_loss_grad(W_lib, a, X, y, eps),
            "lib generic": lambda: generic_public(W_lib, a, X, y, eps),
            "np": lambda: robust_loss_grad(W_np, a, X, y, eps),
            "np generic": lambda: generic_public(W_np, a, X, y, eps),
            "rk4": segment("rk4", k, True), "rk4 generic": segment("rk4", k, False),
            "euler": segment("euler", 4 * k, True), "euler generic": segment("euler", 4 * k, False),
        }, rounds=2 if quick else 5)

    def ratio(name):
        per = 4 * k if name.split()[0] in ("rk4", "euler") else 1
        return f"{wall[name] / per / wall['gemm']:.2f}x (CPU time {cpu[name] / per / cpu['gemm']:.2f}x)"

    print(f"# bench_grad — {machine()}")
    print(f"public robust_loss_grad and the flow's right-hand side, n={n} d={d} m={m} float64, vs two GEMMs "
          f"{wall['gemm'] * 1e3:.0f} ms (target ≤ 1.3x); now / generic path:")
    for name, what in (("lib", "robust_loss_grad, W from init_params"), ("np", "robust_loss_grad, W a numpy array"),
                       ("rk4", f"flow RHS, per evaluation of {k} RK4 steps"),
                       ("euler", f"flow RHS, per evaluation of {4 * k} Euler steps")):
        print(f"  {what}: {ratio(name)} / {ratio(name + ' generic')}")


if __name__ == "__main__":
    cli(main)
