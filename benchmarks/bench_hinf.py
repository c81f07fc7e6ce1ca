"""H∞ Monte Carlo benchmark (issue 7, item 4) on the embedded MNIST 2-vs-5 data (n = 1,000).

Neurons per second, and the λ0 95% CI half-width reached per minute of compute, with
and without the ε = 0 control variate, at ε ∈ {0.001, 0.04} (data mapped into [ε, 1]^d).
The half-width per minute is extrapolated with the 1/√samples law from one timed run.
Usage: python benchmarks/bench_hinf.py [--quick]
"""

from __future__ import annotations

import time

import ntkflow as nf
from _common import cli, machine


def main(quick: bool = False):
    samples = 4000 if quick else 40_000
    n = 200 if quick else None
    print(f"# bench_hinf — {machine()}")
    for eps in (0.001, 0.04):
        ds = nf.data.mnist25(n=n, normalize_eps=eps)
        nf.lambda_0(ds.X[:50], ds.y[:50], eps, samples=100, warn=False)  # compile
        for cv in (True, False):
            t = time.perf_counter()
            est = nf.h_inf(ds.X, ds.y, eps, samples=samples, control_variate=cv)
            t_h = time.perf_counter() - t
            t = time.perf_counter()
            lam = nf.lambda_0(ds.X, ds.y, eps, samples=samples, control_variate=cv, warn=False)
            t_l = time.perf_counter() - t
            half = (lam.ci[1] - lam.ci[0]) / 2
            per_min = half * (t_l / 60) ** 0.5
            print(f"4. ε={eps} n={len(ds.y)} control variate={'on ' if cv else 'off'}: H∞ {est.samples / t_h:,.0f} "
                  f"neurons/s (matrix variance reduction ×{est.variance_reduction:.3g}); λ0 = {lam.value:.4g}, "
                  f"CI half-width {half:.3g} from {lam.samples} neurons in {t_l:.0f}s → {per_min:.3g} per minute")


if __name__ == "__main__":
    cli(main)
