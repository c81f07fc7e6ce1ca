"""Cells of a sweep — one (method, width, ε, seed) each — and the cell function."""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import asdict, dataclass

import numpy as np

from .config import canonical

__all__ = ["Cell", "cells_of", "cell_key", "run_cell", "lambda0_task", "FINAL_KEYS"]

#: Keys of a record's "final" table (the results.csv columns a cell produces).
FINAL_KEYS = ("final_train_error", "final_certified_error", "final_loss", "lambda_min_final", "max_weight_change",
              "flip_fraction_final", "final_test_error", "final_test_certified_error", "error_estimate",
              "diverged", "n_train", "normalized", "wall_time", "lr", "converged", "epochs_run",
              "dead_fraction_final", "zero_output_fraction_final", "n_lr_diverged",
              "final_train_error_tie_positive", "final_certified_error_tie_positive",
              "final_train_error_tie_half", "final_certified_error_tie_half")


@dataclass(frozen=True, order=True)
class Cell:
    """One training run. ``standard`` training always has ε = 0."""

    width: int
    method: str
    eps: float
    seed: int

    @property
    def id(self) -> str:
        return f"{self.method}-m{self.width}-eps{self.eps:g}-s{self.seed}"


def cells_of(cfg: dict) -> list[Cell]:
    """The union of the grid products, deduplicated, ordered by width (same shapes adjacent)."""
    out = set()
    for g in cfg["grid"]:
        for method in g["method"]:
            for w in g["width"]:
                for e in (g["eps"] if method == "ibp" else [0.0]):
                    for s in g["seed"]:
                        out.add(Cell(int(w), method, float(e), int(s)))
    return sorted(out)


def cell_key(cfg: dict, cell: Cell) -> str:
    """Hash of everything a cell's result depends on (not the rest of the grid)."""
    relevant = {k: cfg[k] for k in ("data", "train", "track")}
    relevant["track"] = {k: v for k, v in relevant["track"].items() if not k.startswith("lambda_0")}
    return hashlib.sha1(canonical([relevant, asdict(cell)]).encode()).hexdigest()[:10]


@functools.lru_cache(maxsize=8)
def _dataset(data_json: str, eps: float):
    import json

    from ..data import load

    d = json.loads(data_json)
    return load(d["source"], n=d["n_train"] or None, eps=eps, mnist_dir=d["mnist_dir"] or None, seed=d["seed"],
                normalize=d["normalize"], n_test=d["n_test"], d=d["d"], cifar_dir=d["cifar_dir"] or None,
                classes=d["classes"] or None)


def dataset_for(cfg: dict, eps: float):
    """The data a cell at radius ε trains on (normalized into [ε, 1]^d when data.normalize)."""
    return _dataset(canonical(cfg["data"]), eps if cfg["data"]["normalize"] else 0.0)


def _errors(W, a, X, y, eps, tie: str = "wrong"):
    """Clean and IBP-certified error on (X, y); NaN without data or with non-finite margins
    (a non-finite margin is never counted as a correct prediction)."""
    from ..model import ibp_lower_margin, margin
    from ..tracker import error_rate

    if len(y) == 0 or not np.all(np.isfinite(W)):
        return float("nan"), float("nan")
    u, u_lo = margin(W, a, X, y), ibp_lower_margin(W, a, X, y, eps)
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(u_lo))):
        return float("nan"), float("nan")
    return error_rate(u, y, tie), error_rate(u_lo, y, tie)


def _train_cell(cfg: dict, cell: Cell, ds, W0, a, lr: float, progress: bool):
    from ..flow import gradient_flow
    from ..train import EpsSchedule, train

    tr_cfg, track = cfg["train"], cfg["track"]
    if tr_cfg["flow"]:
        return gradient_flow(W0, a, ds.X, ds.y, cell.eps, tr_cfg["t1"], solver=tr_cfg["solver"],
                             save_at=np.linspace(0, tr_cfg["t1"], track["saves"]), certify=tr_cfg["certify"],
                             dt=tr_cfg["dt"] or None, track_gram=track["gram"], progress=progress)
    sched = EpsSchedule(tr_cfg["eps_warmup"], tr_cfg["eps_ramp"]) if cell.method == "ibp" else None
    return train(W0, a, ds.X, ds.y, cell.eps, optimizer=tr_cfg["optimizer"], lr=lr,
                 epochs=tr_cfg["epochs"], batch_size=tr_cfg["batch_size"] or None, eps_schedule=sched,
                 seed=cell.seed, momentum=tr_cfg["momentum"] or None, stop=tr_cfg["stop"] or None,
                 tie=track["tie"], track_gram=track["gram"], record_every=track["every"], dtype=tr_cfg["dtype"],
                 progress=progress)


def _grid_runs(cfg: dict, cell: Cell, ds, W0, a, progress: bool):
    """Train the cell at every lr of its grid; return (chosen trajectory, chosen lr, summaries).

    The choice reads the training summaries only (``protocol.select_run``)."""
    from .protocol import lr_grid, select_run, train_summary

    grid = [float("nan")] if cfg["train"]["flow"] else lr_grid(cfg["train"]["lr"])
    runs, summaries = [], []
    for lr in grid:
        tr = _train_cell(cfg, cell, ds, W0, a, lr, progress)
        runs.append(tr)
        summaries.append(train_summary(tr, lr, cell.method))
    k = select_run(summaries, cfg["train"]["select"])
    return runs[k], grid[k], summaries


def run_cell(cfg: dict, cell: Cell, progress: bool = False) -> dict:
    """Train one cell (at each lr of its grid, keeping the run the selection rule prefers);
    return its record: final numbers, the chosen run's tracked series and every grid run's
    training summary (JSON-ready).

    A run whose weights, margins or loss became non-finite is recorded with
    ``diverged = True`` and NaN errors, never as a result. Test errors are computed for the
    chosen run only, after the choice.
    """
    from ..model import init_params
    from .store import environment

    t0 = time.perf_counter()
    ds = dataset_for(cfg, cell.eps)
    W0, a = init_params(cell.seed, cell.width, ds.X.shape[1])
    tr, lr, grid = _grid_runs(cfg, cell, ds, W0, a, progress)
    tie = cfg["track"]["tie"]
    test_err, test_cert = _errors(tr.W, a, ds.X_test, ds.y_test, cell.eps, tie)
    ties = {f"final_{k}_tie_{rule}": v for rule in ("positive", "half")
            for k, v in zip(("train_error", "certified_error"), _errors(tr.W, a, ds.X, ds.y, cell.eps, rule))}
    s = tr.series
    diverged = bool(tr.meta.get("diverged", False)) or not (
        np.all(np.isfinite(tr.W)) and np.isfinite(s["loss"][-1]))
    final = {
        "final_train_error": float(s["train_error"][-1]),
        "final_certified_error": float(s["certified_error"][-1]),
        "final_loss": float(s["loss"][-1]),
        "lambda_min_final": float(s["lambda_min"][-1]),
        "max_weight_change": float(s["max_weight_change"][-1]),
        "flip_fraction_final": float(s["flip_fraction"][-1]),
        "final_test_error": test_err,
        "final_test_certified_error": test_cert,
        "error_estimate": float(tr.error_estimate),
        "diverged": diverged,
        "n_train": int(len(ds.y)),
        "normalized": bool(cfg["data"]["normalize"]),
        "wall_time": time.perf_counter() - t0,
        "lr": lr,
        "converged": bool(tr.meta.get("converged", False)),
        "epochs_run": int(tr.meta.get("epochs_run", 0)),
        "dead_fraction_final": float(s["dead_fraction"][-1]),
        "zero_output_fraction_final": float(s["zero_output_fraction"][-1]),
        "n_lr_diverged": sum(g["diverged"] for g in grid),
        **ties,
    }
    if diverged:
        final.update({k: float("nan") for k in ("final_train_error", "final_certified_error", "final_loss",
                                                 "final_test_error", "final_test_certified_error", *ties)})
    return {"cell": asdict(cell), "key": cell_key(cfg, cell), "env": environment(), "final": final,
            "lr_grid": grid, "ts": tr.ts.tolist(),
            "series": {k: np.asarray(v, float).tolist() for k, v in s.items()}}


def lambda0_task(cfg: dict, eps: float) -> dict:
    """λ0 = λmin(H∞) with its 95% CI on the data the ε cells train on."""
    from ..kernel import lambda_0

    ds = dataset_for(cfg, eps)
    lam = lambda_0(ds.X, ds.y, eps, samples=cfg["track"]["lambda_0_samples"], seed=0, warn=False)
    return {"eps": eps, "lambda_0": lam.value, "ci_low": lam.ci[0], "ci_high": lam.ci[1], "samples": lam.samples,
            "n_train": int(len(ds.y))}
