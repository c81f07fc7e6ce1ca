"""Cells of a sweep — one (method, width, ε, seed), and (n, d) on a synthetic source's data
axes, each — and the cell function."""

from __future__ import annotations

import hashlib
import itertools
import time
from dataclasses import asdict, dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..metrics import final_columns
from .build import attack_settings, cell_config, dataset_for, fit_settings_for, inputs_for, method_options, model_for
from .config import DATA_AXES, DEFAULTS, canonical
from .env import environment

__all__ = ["Cell", "cells_of", "cell_key", "cell_dict", "run_cell", "lambda0_task", "final_keys"]

#: Keys of a record's "final" table (the results.csv columns a cell produces): the run's
#: bookkeeping, then the final value of every registered metric with a ``final`` column
#: (``ntkflow.metrics``; NaN where a metric does not apply).
_RUN_KEYS = ("final_train_error", "final_certified_error", "final_loss", "lambda_min_final", "max_weight_change",
             "flip_fraction_final", "final_test_error", "final_test_certified_error", "error_estimate",
             "diverged", "n_train", "normalized", "wall_time", "lr", "converged", "epochs_run",
             "dead_fraction_final", "zero_output_fraction_final", "n_lr_diverged",
             "final_train_error_tie_positive", "final_certified_error_tie_positive",
             "final_train_error_tie_half", "final_certified_error_tie_half")


#: The run's keys that records written before them lack: checked when present, like a metric's.
_LATER_RUN_KEYS = ("d", "assumption_2_holds")


def final_keys() -> tuple:
    """The run's keys, then every metric registered now with a ``final`` column (read at call
    time: a metric registered after import gets its column)."""
    run = _RUN_KEYS + _LATER_RUN_KEYS
    return run + tuple(k for k in final_columns() if k not in run)


#: What a valid record must have: the run's keys. A registered metric's final column is
#: checked when present and empty in the table when absent, so registering a metric never
#: invalidates the records computed before it existed.
REQUIRED_FINALS = _RUN_KEYS
#: Config keys added after the first results format: left out of a cell's key while at their
#: default, so results computed before they existed keep their keys (nothing recomputed).
LATER_KEYS = {"data": ("cifar_dir", "classes", "scale", "pool"), "model": ("net", "init"),
              "train": ("eps_schedule", "t_nat", "t_adv", "beta_start", "beta_end", "lam0", "regularize", "tau"),
              "track": ("attack_every",)}


def without_later_defaults(cfg: dict) -> dict:
    """``cfg`` without the ``LATER_KEYS`` that sit at their defaults: the form two configs are
    compared in, so that a results directory written before a key existed resumes unchanged."""
    return {sec: ({k: v for k, v in val.items() if not (k in LATER_KEYS.get(sec, ()) and v == DEFAULTS[sec].get(k))}
                  if isinstance(val, dict) and sec in LATER_KEYS else val)
            for sec, val in cfg.items()}


def reads(method: str, section: str) -> bool:
    """Whether ``method``'s objective takes any option of config ``section`` ([attack] training
    keys, [advibp]): its builder's keywords (``ntkflow.objectives.spec``) decide."""
    from ..objectives import ATTACK_KEYS, spec

    keys = ATTACK_KEYS if section == "attack" else tuple(DEFAULTS[section])
    return bool(set(spec(method).options) & set(keys))


@dataclass(frozen=True, order=True)
class Cell:
    """One training run. ``standard`` training has ε = 0 unless ``grid.standard_at_eps``.
    ``n_train``, ``d``: the cell's point on the data axes ``grid.n_train`` / ``grid.d``
    (0: off the axis, the ``[data]`` value)."""

    width: int
    method: str
    eps: float
    seed: int
    n_train: int = 0
    d: int = 0

    @property
    def id(self) -> str:
        data = (f"-n{self.n_train}" if self.n_train else "") + (f"-d{self.d}" if self.d else "")
        return f"{self.method}-m{self.width}-eps{self.eps:g}-s{self.seed}{data}"


def cell_dict(cell: Cell) -> dict:
    """The cell as its record stores it and its key hashes it: the data axes only where the
    cell is on them, so a cell of a config without them keeps its record and key."""
    return {k: v for k, v in asdict(cell).items() if k not in DATA_AXES or v}


def cells_of(cfg: dict) -> list[Cell]:
    """The union of the grid products, deduplicated, ordered by width (same shapes adjacent)."""
    out = set()
    for g in cfg["grid"]:
        for method in g["method"]:
            eps = g["eps"] if method != "standard" or g.get("standard_at_eps") else [0.0]
            for w, e, s, n, d in itertools.product(g["width"], eps, g["seed"], g.get("n_train", [0]),
                                                   g.get("d", [0])):
                out.add(Cell(int(w), method, float(e), int(s), int(n), int(d)))
    return sorted(out)


def cell_key(cfg: dict, cell: Cell) -> str:
    """Hash of everything a cell's result depends on (not the rest of the grid)."""
    stable = without_later_defaults(cfg)
    relevant = {sec: stable[sec] for sec in ("data", "train", "track", "model") if sec in cfg}
    relevant = {sec: v for sec, v in relevant.items() if v or sec != "model"}
    relevant["track"] = {k: v for k, v in relevant["track"].items() if not k.startswith("lambda_0")}
    attack = cfg.get("attack", DEFAULTS["attack"])
    evals = {k: v for k, v in attack.items() if k.startswith("eval_") and v != DEFAULTS["attack"][k]}
    if evals:  # the evaluation attack sets every cell's final_pgd_error
        relevant["eval_attack"] = evals
    if reads(cell.method, "attack"):
        relevant["attack"] = {k: v for k, v in attack.items() if not k.startswith("eval_")}
    if reads(cell.method, "advibp"):
        relevant["advibp"] = cfg.get("advibp", DEFAULTS["advibp"])
    if cell.method in cfg.get("objective", {}):
        relevant["objective"] = cfg["objective"][cell.method]
    return hashlib.sha1(canonical([relevant, cell_dict(cell)]).encode()).hexdigest()[:10]


def _train_cell(cfg: dict, cell: Cell, ds, net, p0, X, lr: float, progress: bool):
    """One training run of the cell at learning rate ``lr``: the paper's net through
    ``training.two_layer.train_with`` (``fit``, the closed-form epoch for IBP) or the gradient flow;
    any other net through ``training.fit.fit``; the settings objects from ``build.fit_settings_for``."""
    from ..training.fit import fit
    from ..paper.flow import gradient_flow
    from ..nets import two_layer_weights
    from ..training.two_layer import train_with

    tr_cfg, track = cfg["train"], cfg["track"]
    if net.tag == "two_layer" and tr_cfg["flow"]:
        W0, a = (np.asarray(v, np.float64) for v in two_layer_weights(net, p0))
        return gradient_flow(W0, a, ds.X, ds.y, cell.eps, tr_cfg["t1"], solver=tr_cfg["solver"],
                             save_at=np.linspace(0, tr_cfg["t1"], track["saves"]), certify=tr_cfg["certify"],
                             dt=tr_cfg["dt"] or None, track_gram=track["gram"], progress=progress)
    run = fit_settings_for(cfg, cell.method, progress).for_run(lr, cell.seed)
    options = method_options(cfg, cell.method)
    if net.tag != "two_layer":
        return fit(net, p0, X, ds.y, cell.eps, objective=cell.method, options=options, **run.parts())
    W0, a = (np.asarray(v, np.float64) for v in two_layer_weights(net, p0))
    return train_with(W0, a, ds.X, ds.y, cell.eps, run, objective=cell.method, options=options)


def _grid_runs(cfg: dict, cell: Cell, ds, net, p0, X, progress: bool):
    """Train the cell at every lr of its grid; return (chosen trajectory, chosen lr, summaries).

    The choice reads the training summaries only (``protocol.select_run``)."""
    from .protocol import lr_grid, select_run, train_summary

    grid = [float("nan")] if cfg["train"]["flow"] else lr_grid(cfg["train"]["lr"])
    runs, summaries = [], []
    for lr in grid:
        tr = _train_cell(cfg, cell, ds, net, p0, X, lr, progress)
        runs.append(tr)
        summaries.append(train_summary(tr, lr, cell.method))
    k = select_run(summaries, cfg["train"]["select"])
    return runs[k], grid[k], summaries


def error_finals() -> tuple:
    """The registered metrics' final columns that are errors (NaN in a diverged run, like the
    run's own errors): every final column named ``*error*``, read from the registry now."""
    return tuple(k for k in final_columns() if "error" in k and k not in _RUN_KEYS)

#: Final values read from the chosen run's last record: (final key, series name).
_SERIES_FINALS = (("final_train_error", "train_error"), ("final_certified_error", "certified_error"),
                  ("final_loss", "loss"), ("lambda_min_final", "lambda_min"), ("max_weight_change", "max_weight_change"),
                  ("flip_fraction_final", "flip_fraction"), ("dead_fraction_final", "dead_fraction"),
                  ("zero_output_fraction_final", "zero_output_fraction"))


def final_params(net, tr):
    """The trained params of a trajectory (``fit``: ``tr.params``; the two-layer trainers: W)."""
    if tr.params is not None:
        return tr.params
    return ({"weight": np.asarray(tr.W, np.float64)}, {}, {})  # the layout of nets.two_layer (W may be NaN)


def _probe(cfg, cell, net, params, X, y, names, tie=None) -> dict:
    """The registered metrics ``names`` of ``params`` on (X, y), as the cell's method judges
    them (its own bound for ``certified_error``; the [attack] eval PGD)."""
    from ..metrics import recorder
    from ..objectives import objective, own_bound

    options = method_options(cfg, cell.method)
    with jax.enable_x64(True):
        params = jax.tree_util.tree_map(lambda v: jnp.asarray(v, jnp.float64), params)
        y = jnp.asarray(y, jnp.float64) if net.num_outputs == 1 else jnp.asarray(y)
        rec = recorder(net, params, jnp.asarray(X, jnp.float64), y, cell.eps, names=names,
                       own_bound=own_bound(objective(cell.method, **options)), attack=attack_settings(cfg),
                       tie=tie or cfg["track"]["tie"])
        return rec(params, cell.eps, full=True)


def _registry_finals(cfg, cell, net, params, tr, X, y, diverged) -> dict:
    """The final value of every registered metric with a results column: the run's last
    record where it has one (``training.fit`` records them all), computed at the final
    params otherwise (the closed-form IBP loop records the theory quantities only)."""
    from ..metrics import METRICS

    cols = {m.final: m.name for m in METRICS.values() if m.final in final_keys()
            and m.final not in _RUN_KEYS + _LATER_RUN_KEYS
            and "opt_in" not in m.needs}
    have = {c: float(tr.series[n][-1]) for c, n in cols.items() if n in tr.series and np.isfinite(tr.series[n][-1])}
    missing = [n for c, n in cols.items() if c not in have]
    if missing and not diverged:
        got = _probe(cfg, cell, net, params, X, y, missing)
        have.update({c: float(got.get(n, float("nan"))) for c, n in cols.items() if n in missing})
    return {c: have.get(c, float("nan")) for c in cols}


def _error_pair(cfg, cell, net, params, X, y, tie=None):
    """(clean, certified) error on (X, y); NaN without data."""
    if len(y) == 0:
        return float("nan"), float("nan")
    got = _probe(cfg, cell, net, params, X, y, ("train_error", "certified_error"), tie)
    return got["train_error"], got["certified_error"]


def run_cell(cfg: dict, cell: Cell, progress: bool = False) -> dict:
    """Train one cell (at each lr of its grid, keeping the run the selection rule prefers);
    return its record: final numbers, the chosen run's tracked series and every grid run's
    training summary (JSON-ready).

    A run whose weights, margins or loss became non-finite is recorded with
    ``diverged = True`` and NaN errors, never as a result. Test errors are computed for the
    chosen run only, after the choice.
    """
    t0 = time.perf_counter()
    ds = dataset_for(cell_config(cfg, cell), cell.eps)
    net, p0, X = model_for(cfg, cell, ds)
    tr, lr, grid = _grid_runs(cfg, cell, ds, net, p0, X, progress)
    return finish_record(cfg, cell, ds, net, X, tr, lr, grid, time.perf_counter() - t0)


def finish_record(cfg: dict, cell: Cell, ds, net, X, tr, lr: float, grid: list, wall: float) -> dict:
    """The cell's record from its chosen run ``tr`` (trained at ``lr``; ``grid`` the
    summaries of every lr): final values, test errors, the series."""
    from ..nets.spec import is_conv

    s = tr.series
    params = final_params(net, tr)
    finite = all(np.all(np.isfinite(np.asarray(v))) for v in jax.tree_util.tree_leaves(params))
    diverged = bool(tr.meta.get("diverged", False)) or not (finite and np.isfinite(s["loss"][-1]))
    net_spec = cfg["model"]["net"]
    Xt = inputs_for(net_spec, ds.X_test) if is_conv(net_spec) and len(ds.y_test) else ds.X_test
    nan = (float("nan"), float("nan"))
    test_err, test_cert = nan if diverged else _error_pair(cfg, cell, net, params, Xt, ds.y_test)
    ties = {f"final_{k}_tie_{rule}": v for rule in ("positive", "half")
            for k, v in zip(("train_error", "certified_error"),
                            nan if diverged else _error_pair(cfg, cell, net, params, X, ds.y, rule))}
    final = {k: float(s[n][-1]) if n in s else float("nan") for k, n in _SERIES_FINALS}
    final.update({
        "final_test_error": test_err,
        "final_test_certified_error": test_cert,
        "error_estimate": float(tr.error_estimate),
        "diverged": diverged,
        "n_train": int(len(ds.y)),
        "d": int(np.prod(np.shape(ds.X)[1:])),
        "assumption_2_holds": assumption_2_holds(cfg, cell, ds),
        "normalized": bool(cfg["data"]["normalize"]),
        "wall_time": wall,
        "lr": lr,
        "converged": bool(tr.meta.get("converged", False)),
        "epochs_run": int(tr.meta.get("epochs_run", 0)),
        "n_lr_diverged": sum(g["diverged"] for g in grid),
        **ties,
        **_registry_finals(cfg, cell, net, params, tr, X, ds.y, diverged),
    })
    if diverged:
        final.update({k: float("nan") for k in ("final_train_error", "final_certified_error", "final_loss",
                                                 "final_test_error", "final_test_certified_error", *ties,
                                                 *error_finals())})
    return {"cell": cell_dict(cell), "key": cell_key(cfg, cell), "env": environment(), "final": final,
            "lr_grid": grid, "ts": tr.ts.tolist(),
            "series": {k: np.asarray(v, float).tolist() for k, v in s.items()}}


def assumption_2_holds(cfg: dict, cell: Cell, ds) -> float:
    """1.0 when Assumption 2 holds exactly on a synthetic source's training points at the cell's
    ε (``paper.assumptions.check_assumption_2``: no two ε-boxes hold parallel points), 0.0
    when it fails; NaN for the other sources (O(n²d): not run on real data sets)."""
    from ..paper.assumptions import check_assumption_2
    from .config import SYNTHETIC_SOURCES

    if cfg["data"]["source"] not in SYNTHETIC_SOURCES:
        return float("nan")
    return float(check_assumption_2(np.asarray(ds.X, np.float64), cell.eps).holds)


def lambda0_task(cfg: dict, eps: float, n_train: int = 0, d: int = 0) -> dict:
    """λ0 = λmin(H∞) with its 95% CI on the data the ε cells (at ``n_train``, ``d`` on the data
    axes; 0: off them) train on."""
    from ..paper.hinf import lambda_0

    ds = dataset_for(cell_config(cfg, Cell(0, "", eps, 0, n_train, d)), eps)
    lam = lambda_0(ds.X, ds.y, eps, samples=cfg["track"]["lambda_0_samples"], seed=0, warn=False)
    return {"eps": eps, "lambda_0": lam.value, "ci_low": lam.ci[0], "ci_high": lam.ci[1], "samples": lam.samples,
            "n_train": int(len(ds.y)), "d": int(np.prod(np.shape(ds.X)[1:]))}
