"""CROWN-IBP training steps on DM-small as ratios to our IBP step, measured in one process (issue 21).

DM-small (MNIST shape, 10 classes), ε = 0.1, inputs clipped to [0, 1], float32 params with
full-precision products inside x64 as ``fit`` runs them. The step timed is one training step
(objective step + SGD update) jitted alone — ``bench_steps.py`` measures what ``fit.epoch``'s
scan adds around it. Rows:

- ``ibp``: the IBP step (the baseline of every ratio);
- ``crown_ibp β = 0``: CROWN-IBP at β = 0, whose backward pass is skipped (target ≈ 1×);
- ``crown_ibp β = 0.5``: both bounds computed, K − 1 = 9 backward rows per sample (unfused);
- ``crown_ibp β = 0.5 fused``: loss fusion, one backward row per sample (target ≤ 3×);
- ``... host branch``: the same steps compiled with β's branch known (``Context.beta_branch``
  "zero" / "mix": no ``lax.cond``), as ``training.steps.loop_epoch`` runs them on the CPU;
- ``standard``: the clean step, and a plain PyTorch step of the same net (same init-free
  shapes, SGD, summed cross-entropy) when torch is importable — ours / torch (target ≤ 1.2×);
- auto_LiRPA's IBP / CROWN-IBP steps when auto_LiRPA is importable (skipped with a message
  otherwise: auto_LiRPA 0.7.1 is not installable here).

Times are the best of interleaved rounds (``_common.interleaved_best``): a load burst on the
shared machine hits every contender alike.
Usage: python benchmarks/bench_crown_ibp.py [--quick] [--batch B] [--rounds R] [--scan] [--skip-unfused]
  (torch from a separate location: PYTHONPATH=/path/to/torch-site python benchmarks/bench_crown_ibp.py)
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from _common import interleaved_best, machine
from ntkflow import nets
from ntkflow.objectives import Context, objective

EPS, CLIP, LR = 0.1, (0.0, 1.0), 1e-3


def data(B: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 1, (B, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, B))


def our_step(net, params, X, y, obj, beta: float, branch: str = "cond", scan: bool = False):
    """() -> one jitted step (objective step + SGD update) at mix β, compiled knowing ``branch``
    of β; ``scan``: two such steps inside one jitted ``lax.scan`` (as ``fit.epoch`` runs them;
    the time is per step)."""
    b = jnp.asarray(beta, jnp.float32)

    @jax.jit
    def step(p, X, y, b):  # β an argument, as in training (a closed-over β would be constant-folded)
        ctx = Context(jnp.asarray(EPS, jnp.float32), b, jnp.asarray(0.0, jnp.float32),
                      jax.random.PRNGKey(0), jnp.asarray(0.0, jnp.float32), jnp.asarray(0.0, jnp.float32), branch)
        g = obj.step(net, p, obj.init(p), X, y, ctx).grads
        return jax.tree_util.tree_map(lambda u, v: u - LR * v, p, g)

    if scan:
        two = jax.jit(lambda p, b: jax.lax.scan(lambda c, _: (step(c, X, y, b), None), p, None, length=2)[0])
        return lambda: two(params, b)
    return lambda: step(params, X, y, b)


def torch_step(X, y):
    """() -> a plain PyTorch SGD step of DM-small (summed cross-entropy), or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 4, 2), torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 4, 1),
                              torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(3200, 100), torch.nn.ReLU(),
                              torch.nn.Linear(100, 10))
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(np.asarray(y, np.int64))

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(Xt), yt, reduction="sum").backward()
        opt.step()

    return step


def auto_lirpa_steps(X, y):
    """{name: () -> step} of auto_LiRPA's IBP and CROWN-IBP steps, or a message why there are none."""
    try:
        import torch
        from auto_LiRPA import BoundedModule, BoundedTensor, PerturbationLpNorm
    except Exception as e:  # ImportError, or auto_LiRPA failing on this torch
        return f"auto_LiRPA rows skipped: not importable ({type(e).__name__}: {e})"
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 4, 2), torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 4, 1),
                              torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(3200, 100), torch.nn.ReLU(),
                              torch.nn.Linear(100, 10))
    Xt, yt = torch.from_numpy(X), torch.from_numpy(np.asarray(y, np.int64))
    model = BoundedModule(net, Xt)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    C = torch.eye(10)[yt].unsqueeze(1) - torch.eye(10).unsqueeze(0)
    keep = (torch.arange(10).unsqueeze(0) != yt.unsqueeze(1))
    C = C[keep].view(len(yt), 9, 10)
    ptb = PerturbationLpNorm(norm=np.inf, x_L=(Xt - EPS).clamp(0, 1), x_U=(Xt + EPS).clamp(0, 1))
    xb = BoundedTensor(Xt, ptb)

    def make(method):
        def step():
            opt.zero_grad()
            lb, _ = model.compute_bounds(x=(xb,), C=C, method=method)
            loss = torch.nn.functional.softplus(torch.logsumexp(-lb, dim=1)).sum()  # ≈ log(1 + Σ e^{−m})
            loss.backward()
            opt.step()
        return step

    return {"auto_LiRPA IBP": make("IBP"), "auto_LiRPA CROWN-IBP": make("CROWN-IBP")}


def torch_best(fn, rounds: int) -> float:
    fn()
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-unfused", action="store_true", help="leave out the unfused β > 0 row (the slowest)")
    ap.add_argument("--scan", action="store_true", help="time the steps inside a 2-step lax.scan (fit.epoch's form)")
    a = ap.parse_args()
    B, rounds = (32, 1) if a.quick else (a.batch, a.rounds)
    print(f"# bench_crown_ibp — {machine()} — DM-small, batch {B}, ε = {EPS}, clip {CLIP}, float32", flush=True)
    X, y = data(B)
    net = nets.dm_small()
    fused = objective("crown_ibp", clip=CLIP, loss_fusion=True)
    rows = [("ibp", objective("ibp", clip=CLIP), 0.0, "cond"),
            ("crown_ibp β = 0", objective("crown_ibp", clip=CLIP), 0.0, "cond"),
            ("crown_ibp β = 0 host branch", objective("crown_ibp", clip=CLIP), 0.0, "zero"),
            ("crown_ibp β = 0.5 fused", fused, 0.5, "cond"),
            ("crown_ibp β = 0.5 fused host branch", fused, 0.5, "mix"),
            ("standard (clean)", objective("standard"), 0.0, "cond")]
    if not a.skip_unfused:
        rows.insert(3, ("crown_ibp β = 0.5 unfused", objective("crown_ibp", clip=CLIP), 0.5, "cond"))
    with jax.enable_x64(True):  # as fit runs its steps: float32 params and data
        params = net.init(0, dtype=jnp.float32)
        Xj, yj = jnp.asarray(X), jnp.asarray(y)
        times = interleaved_best([our_step(net, params, Xj, yj, obj, b, br, a.scan) for _, obj, b, br in rows], rounds)
        times = [t / 2 for t in times] if a.scan else times
    base = times[0]
    if a.scan:
        print("(inside a 2-step lax.scan, per step)")
    for (name, *_), t in zip(rows, times):
        print(f"{name:36s} {1e3 * t:9.1f} ms   {t / base:6.2f}x our IBP step", flush=True)
    ts = torch_step(X, y)
    if ts is None:
        print("plain torch step: skipped (torch not importable; run with torch on PYTHONPATH)")
    else:
        import torch

        t_t = torch_best(ts, max(rounds, 3))
        t_ours = times[[r[0] for r in rows].index("standard (clean)")]
        print(f"plain torch step (torch {torch.__version__}, {torch.get_num_threads()} threads) {1e3 * t_t:.1f} ms; "
              f"our plain step / torch = {t_ours / t_t:.2f}x (target ≤ 1.2x)")
    al = auto_lirpa_steps(X, y)
    if isinstance(al, str):
        print(al)
    else:
        for name, fn in al.items():
            t = torch_best(fn, rounds)
            print(f"{name:28s} {1e3 * t:9.1f} ms   our IBP step / it = {base / t:.2f}x")


if __name__ == "__main__":
    main()
