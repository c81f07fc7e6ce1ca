"""Figures from stored results (they never retrain). Each ``fig_*`` writes PNG and PDF.

The scripts in ``figures/`` and ``ntkflow figures DIR`` are thin calls of these.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ._io import read_json  # noqa: E402
from .tracker import Trajectory  # noqa: E402

__all__ = ["fig_flow", "save"]


def save(fig, path: Path) -> list[Path]:
    """Write ``path``.png and ``path``.pdf; return both paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = [path.with_suffix(".png"), path.with_suffix(".pdf")]
    for p in out:
        fig.savefig(p, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return out


def load_flows(directory) -> dict[float, dict[int, Trajectory]]:
    """Trajectories ``flow_eps{ε}_m{m}.npz`` in ``directory``, keyed by ε then m."""
    flows: dict[float, dict[int, Trajectory]] = {}
    for p in sorted(Path(directory).glob("flow_eps*_m*.npz")):
        m = re.fullmatch(r"flow_eps([0-9.e-]+)_m(\d+)\.npz", p.name)
        if m:
            flows.setdefault(float(m.group(1)), {})[int(m.group(2))] = Trajectory.load(p)
    return flows


def fig_flow(directory, out=None) -> list[Path]:
    """L̄(t) (log scale) and λmin(H(t))/λ0 against t for each width, one column per ε.

    The dashed line at 1/2 is Lemma 5's guarantee λmin(H(t)) ≥ λ0/2.
    """
    flows = load_flows(directory)
    if not flows:
        raise ValueError(f"{directory}: no flow_eps*_m*.npz trajectories (run `ntkflow flow --out DIR`)")
    eps_list = sorted(flows)
    fig, ax = plt.subplots(2, len(eps_list), figsize=(5 * len(eps_list), 7), squeeze=False)
    for c, eps in enumerate(eps_list):
        lam = read_json(Path(directory) / f"lambda0_eps{eps}.json")
        for m, tr in sorted(flows[eps].items()):
            ax[0, c].semilogy(tr.ts, tr.loss, label=f"m = {m}")
            ax[1, c].plot(tr.ts, tr.lambda_min / lam["value"], label=f"m = {m}")
        ax[0, c].set_title(f"ε = {eps}  (λ0 = {lam['value']:.3g}, n = {lam['n']})")
        ax[0, c].set_ylabel("robust loss L̄(t)")
        ax[1, c].axhline(0.5, ls="--", c="k", lw=1, label="Lemma 5: λ0/2")
        ax[1, c].axhline(0.75, ls=":", c="gray", lw=1, label="Lemma 4: ¾λ0 at t = 0")
        ax[1, c].set_ylabel("λmin(H(t)) / λ0")
        ax[1, c].set_xlabel("t (gradient-flow time)")
        for a in ax[:, c]:
            a.grid(alpha=0.3)
            a.legend(fontsize=8)
    fig.suptitle("Gradient flow of IBP training on MNIST 2-vs-5")
    return save(fig, Path(out or Path(directory) / "fig_flow"))
