"""Cells of a sweep — one (method, width, ε, seed) each — and the cell function."""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import asdict, dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..metrics import final_columns
from .config import DEFAULTS, canonical

__all__ = ["Cell", "cells_of", "cell_key", "run_cell", "lambda0_task", "FINAL_KEYS"]

#: Keys of a record's "final" table (the results.csv columns a cell produces): the run's
#: bookkeeping, then the final value of every registered metric with a ``final`` column
#: (``ntkflow.metrics``; NaN where a metric does not apply).
_RUN_KEYS = ("final_train_error", "final_certified_error", "final_loss", "lambda_min_final", "max_weight_change",
             "flip_fraction_final", "final_test_error", "final_test_certified_error", "error_estimate",
             "diverged", "n_train", "normalized", "wall_time", "lr", "converged", "epochs_run",
             "dead_fraction_final", "zero_output_fraction_final", "n_lr_diverged",
             "final_train_error_tie_positive", "final_certified_error_tie_positive",
             "final_train_error_tie_half", "final_certified_error_tie_half")
FINAL_KEYS = _RUN_KEYS + tuple(k for k in final_columns() if k not in _RUN_KEYS)
#: Config keys added after the first results format: left out of a cell's key while at their
#: default, so results computed before they existed keep their keys (nothing recomputed).
LATER_KEYS = {"data": ("cifar_dir", "classes"),
              "train": ("eps_schedule", "t_nat", "t_adv", "beta_start", "beta_end", "lam0", "regularize", "tau"),
              "track": ("attack_every",)}
#: Methods whose training uses [attack] / [advibp].
ATTACK_METHODS = ("pgd", "fgsm", "advibp", "advibp_fixed")


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
                for e in (g["eps"] if method != "standard" or g.get("standard_at_eps") else [0.0]):
                    for s in g["seed"]:
                        out.add(Cell(int(w), method, float(e), int(s)))
    return sorted(out)


def cell_key(cfg: dict, cell: Cell) -> str:
    """Hash of everything a cell's result depends on (not the rest of the grid)."""
    relevant = {sec: {k: v for k, v in cfg[sec].items()
                      if not (k in LATER_KEYS.get(sec, ()) and v == DEFAULTS[sec][k])}
                for sec in ("data", "train", "track")}
    relevant["track"] = {k: v for k, v in relevant["track"].items() if not k.startswith("lambda_0")}
    attack = cfg.get("attack", DEFAULTS["attack"])
    evals = {k: v for k, v in attack.items() if k.startswith("eval_") and v != DEFAULTS["attack"][k]}
    if evals:  # the evaluation attack sets every cell's final_pgd_error
        relevant["eval_attack"] = evals
    if cell.method in ATTACK_METHODS:
        relevant["attack"] = {k: v for k, v in attack.items() if not k.startswith("eval_")}
    if cell.method.startswith("advibp"):
        relevant["advibp"] = cfg.get("advibp", DEFAULTS["advibp"])
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
    from ..train import train

    tr_cfg, track = cfg["train"], cfg["track"]
    if tr_cfg["flow"]:
        return gradient_flow(W0, a, ds.X, ds.y, cell.eps, tr_cfg["t1"], solver=tr_cfg["solver"],
                             save_at=np.linspace(0, tr_cfg["t1"], track["saves"]), certify=tr_cfg["certify"],
                             dt=tr_cfg["dt"] or None, track_gram=track["gram"], progress=progress)
    options, fit_options = method_options(cfg, cell.method)
    return train(W0, a, ds.X, ds.y, cell.eps, optimizer=tr_cfg["optimizer"], lr=lr,
                 epochs=tr_cfg["epochs"], batch_size=tr_cfg["batch_size"] or None, eps_schedule=eps_schedule(cfg),
                 seed=cell.seed, momentum=tr_cfg["momentum"] or None, stop=tr_cfg["stop"] or None,
                 tie=track["tie"], track_gram=track["gram"], record_every=track["every"], dtype=tr_cfg["dtype"],
                 progress=progress, objective=cell.method, options=options, fit_options=fit_options)


def eps_schedule(cfg: dict):
    """The ε schedule of [train]: a ramp (eps_warmup, eps_ramp) or fan2021's warm-up
    (t_nat, t_adv, then the ramp). Every method at ε > 0 follows it (standard trains at 0)."""
    from ..objectives import FanWarmup, Ramp

    t = cfg["train"]
    if t.get("eps_schedule", "ramp") == "fan_warmup":
        return FanWarmup(t["t_nat"], t["t_adv"], t["eps_ramp"])
    return Ramp(t["eps_warmup"], t["eps_ramp"])


def method_options(cfg: dict, method: str) -> tuple[dict, dict]:
    """(objective options, extra ``ntkflow.fit`` arguments) of ``method`` under ``cfg``."""
    from ..metrics import AttackSettings
    from ..objectives import BetaFromEps

    t, a = cfg["train"], cfg.get("attack", DEFAULTS["attack"])
    adv = cfg.get("advibp", DEFAULTS["advibp"])
    options = {"steps": a["steps"], "step_size": a["step_size"] or None, "restarts": a["restarts"],
               "alpha": a["alpha"], "regularize": t.get("regularize", False), "tau": t.get("tau", 0.5)}
    if method.startswith("advibp"):
        options.update(t_nat=t["t_nat"], t_adv=t["t_adv"], ramp=t["eps_ramp"], **adv)
    fit_options = {"beta_schedule": BetaFromEps(t.get("beta_start", 1.0), t.get("beta_end", 0.0)),
                   "lam0": t.get("lam0", 0.0), "attack_every": cfg["track"].get("attack_every", 0) or None,
                   "attack": AttackSettings(steps=a["eval_steps"], restarts=a["eval_restarts"])}
    return options, fit_options


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


#: Registry finals that are errors (NaN in a diverged run, like the other errors).
ERROR_FINALS = ("final_certified_error_ibp", "final_certified_error_crown", "final_pgd_error")


def _recorder(cfg, cell, W, a, X, y, names):
    """``metrics.recorder`` for the cell's final weights on (X, y), as its method judges them."""
    from ..metrics import recorder
    from ..nets import two_layer
    from ..objectives import objective, own_bound

    options, fit_options = method_options(cfg, cell.method)
    with jax.enable_x64(True):
        net, params = two_layer(W, a)
        rec = recorder(net, params, jnp.asarray(X), jnp.asarray(y), cell.eps, names=names,
                       own_bound=own_bound(objective(cell.method, **options)), attack=fit_options["attack"],
                       tie=cfg["track"]["tie"])
        return rec(params, cell.eps, full=True)


def _registry_finals(cfg, cell, tr, a, ds, diverged) -> dict:
    """The final value of every registered metric with a results column: the run's last
    record where it has one (``ntkflow.fit`` records them all), computed at the final
    weights otherwise (the closed-form IBP loop records the theory quantities only)."""
    from ..metrics import METRICS

    cols = {m.final: m.name for m in METRICS.values() if m.final in FINAL_KEYS and m.final not in _RUN_KEYS}
    have = {c: float(tr.series[n][-1]) for c, n in cols.items() if n in tr.series and np.isfinite(tr.series[n][-1])}
    missing = [n for c, n in cols.items() if c not in have]
    if missing and not diverged:
        got = _recorder(cfg, cell, tr.W, a, ds.X, ds.y, missing)
        have.update({c: float(got[n]) for c, n in cols.items() if n in missing})
    return {c: have.get(c, float("nan")) for c in cols}


def _test_errors(cfg, cell, W, a, ds, tie, diverged):
    """(clean, certified) error on the test set; certified under the method's own bound."""
    if len(ds.y_test) == 0 or diverged:
        return float("nan"), float("nan")
    if cell.method in ("ibp", "standard", "pgd", "fgsm", "advibp", "advibp_fixed"):
        return _errors(W, a, ds.X_test, ds.y_test, cell.eps, tie)
    got = _recorder(cfg, cell, W, a, ds.X_test, ds.y_test, ("train_error", "certified_error"))
    return got["train_error"], got["certified_error"]


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
    diverged = bool(tr.meta.get("diverged", False)) or not (
        np.all(np.isfinite(tr.W)) and np.isfinite(tr.series["loss"][-1]))
    test_err, test_cert = _test_errors(cfg, cell, tr.W, a, ds, tie, diverged)
    ties = {f"final_{k}_tie_{rule}": v for rule in ("positive", "half")
            for k, v in zip(("train_error", "certified_error"), _errors(tr.W, a, ds.X, ds.y, cell.eps, rule))}
    s = tr.series
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
        **_registry_finals(cfg, cell, tr, a, ds, diverged),
    }
    if diverged:
        final.update({k: float("nan") for k in ("final_train_error", "final_certified_error", "final_loss",
                                                 "final_test_error", "final_test_certified_error", *ties,
                                                 *ERROR_FINALS)})
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
