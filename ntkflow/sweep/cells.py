"""Cells of a sweep — one (method, width, ε, seed) each — and the cell function."""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import asdict, dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .._core.errors import NtkflowError
from ..metrics import final_columns
from .config import DEFAULTS, canonical

__all__ = ["Cell", "cells_of", "cell_key", "run_cell", "lambda0_task", "final_keys"]

#: Keys of a record's "final" table (the results.csv columns a cell produces): the run's
#: bookkeeping, then the final value of every registered metric with a ``final`` column
#: (``ntkflow.metrics``; NaN where a metric does not apply).
_RUN_KEYS = ("final_train_error", "final_certified_error", "final_loss", "lambda_min_final", "max_weight_change",
             "flip_fraction_final", "final_test_error", "final_test_certified_error", "error_estimate",
             "diverged", "n_train", "normalized", "wall_time", "lr", "converged", "epochs_run",
             "dead_fraction_final", "zero_output_fraction_final", "n_lr_diverged",
             "final_train_error_tie_positive", "final_certified_error_tie_positive",
             "final_train_error_tie_half", "final_certified_error_tie_half")


def final_keys() -> tuple:
    """The run's keys, then every metric registered now with a ``final`` column (read at call
    time: a metric registered after import gets its column)."""
    return _RUN_KEYS + tuple(k for k in final_columns() if k not in _RUN_KEYS)


#: What a valid record must have: the run's keys. A registered metric's final column is
#: checked when present and empty in the table when absent, so registering a metric never
#: invalidates the records computed before it existed.
REQUIRED_FINALS = _RUN_KEYS
#: Config keys added after the first results format: left out of a cell's key while at their
#: default, so results computed before they existed keep their keys (nothing recomputed).
LATER_KEYS = {"data": ("cifar_dir", "classes", "scale", "pool"), "model": ("net", "init"),
              "train": ("eps_schedule", "t_nat", "t_adv", "beta_start", "beta_end", "lam0", "regularize", "tau"),
              "track": ("attack_every",)}


def reads(method: str, section: str) -> bool:
    """Whether ``method``'s objective takes any option of config ``section`` ([attack] training
    keys, [advibp]): its builder's keywords (``ntkflow.objectives.spec``) decide."""
    from ..objectives import ATTACK_KEYS, spec

    keys = ATTACK_KEYS if section == "attack" else tuple(DEFAULTS[section])
    return bool(set(spec(method).options) & set(keys))


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
                for sec in ("data", "train", "track", "model") if sec in cfg}
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
    return hashlib.sha1(canonical([relevant, asdict(cell)]).encode()).hexdigest()[:10]


@functools.lru_cache(maxsize=8)
def _dataset(data_json: str, eps: float):
    import json

    from ..data import load

    d = json.loads(data_json)
    return load(d["source"], n=d["n_train"] or None, eps=eps, mnist_dir=d["mnist_dir"] or None, seed=d["seed"],
                normalize=d["normalize"], n_test=d["n_test"], d=d["d"], cifar_dir=d["cifar_dir"] or None,
                classes=d["classes"] or None, scale=d.get("scale", 1.0), pool=d.get("pool", 1))


def dataset_for(cfg: dict, eps: float):
    """The data a cell at radius ε trains on (normalized into [ε, 1]^d when data.normalize)."""
    return _dataset(canonical(cfg["data"]), eps if cfg["data"]["normalize"] else 0.0)


def model_for(cfg: dict, cell: Cell, ds):
    """(net, params0, X): the cell's net at its width, initialized with its seed, and the
    training inputs in the net's layout. The paper's two-layer net takes the paper's
    initialization (w_r ~ N(0, I), a_r = ±1: ``model.init_params``); every other net
    ``net.init(seed, init=model.init or "torch")``."""
    from ..paper.model import init_params
    from ..nets import two_layer
    from ..nets.spec import net_from_spec

    spec = cfg.get("model", DEFAULTS["model"])
    if spec["net"] == "two_layer":
        W0, a = init_params(cell.seed, cell.width, ds.X.shape[1])
        with jax.enable_x64(True):
            net, p0 = two_layer(W0, a)
        return net, p0, ds.X
    X = inputs_for(spec["net"], ds.X)
    y = np.asarray(ds.y)
    classes = 1 if np.all(np.isin(y, (-1, 1))) else int(y.max()) + 1
    net = net_from_spec(spec["net"], width=cell.width, input_shape=X.shape[1:], classes=classes)
    dtype = np.float64 if cfg["train"]["dtype"] == "float64" else np.float32
    with jax.enable_x64(True):
        p0 = net.init(cell.seed, init=spec["init"] or "torch", dtype=dtype)
    return net, p0, X


def inputs_for(net_spec: str, X):
    """Inputs in a net's layout: images (n, C, H, W) for the conv nets (flat MNIST 784 →
    (1, 28, 28), CIFAR 3072 → (3, 32, 32)); as stored otherwise (an MLP flattens)."""
    from ..nets.spec import is_conv

    X = np.asarray(X)
    if not is_conv(net_spec) or X.ndim == 4:
        return X
    shapes = {784: (1, 28, 28), 3072: (3, 32, 32)}
    if X.ndim != 2 or X.shape[1] not in shapes:
        raise NtkflowError(f"model.net: {net_spec!r} needs images; the data has samples of shape {X.shape[1:]}")
    return X.reshape((X.shape[0], *shapes[X.shape[1]]))


def _train_args(cfg: dict, cell: Cell, progress: bool) -> tuple[dict, dict]:
    """(settings shared by ``train`` / ``fit`` / ``fit_group``, extra ``fit`` arguments) of the
    cell's method under ``cfg`` — everything but the lr, seed and ε of one run."""
    tr_cfg, track = cfg["train"], cfg["track"]
    options, fit_options = method_options(cfg, cell.method)
    common = dict(optimizer=tr_cfg["optimizer"], epochs=tr_cfg["epochs"], batch_size=tr_cfg["batch_size"] or None,
                  eps_schedule=eps_schedule(cfg, cell.method), momentum=tr_cfg["momentum"] or None,
                  stop=tr_cfg["stop"] or None, tie=track["tie"], track_gram=track["gram"],
                  record_every=track["every"], dtype=tr_cfg["dtype"], progress=progress, objective=cell.method,
                  options=options)
    return common, fit_options


def _train_cell(cfg: dict, cell: Cell, ds, net, p0, X, lr: float, progress: bool):
    """One training run of the cell at learning rate ``lr``: the paper's net through
    ``ntkflow.train`` (its closed-form loop for IBP, else ``fit``) or the gradient flow;
    any other net through ``ntkflow.fit``."""
    from ..fit import fit
    from ..paper.flow import gradient_flow
    from ..nets import two_layer_weights
    from ..train import train

    tr_cfg, track = cfg["train"], cfg["track"]
    common, fit_options = _train_args(cfg, cell, progress)
    common.update(lr=lr, seed=cell.seed)
    if net.tag != "two_layer":
        return fit(net, p0, X, ds.y, cell.eps, **common, **fit_options)
    W0, a = (np.asarray(v, np.float64) for v in two_layer_weights(net, p0))
    if tr_cfg["flow"]:
        return gradient_flow(W0, a, ds.X, ds.y, cell.eps, tr_cfg["t1"], solver=tr_cfg["solver"],
                             save_at=np.linspace(0, tr_cfg["t1"], track["saves"]), certify=tr_cfg["certify"],
                             dt=tr_cfg["dt"] or None, track_gram=track["gram"], progress=progress)
    return train(W0, a, ds.X, ds.y, cell.eps, **common, fit_options=fit_options)


def eps_schedule(cfg: dict, method: str | None = None):
    """The ε schedule of [train]: a ramp (eps_warmup, eps_ramp) or fan2021's warm-up
    (t_nat, t_adv, then the ramp). Every method at ε > 0 follows it (standard trains at 0).

    AdvIBP and its fixed-κ baseline always get fan2021's warm-up: their objective switches
    phase by epoch (clean, FGSM, joint), and Alg. 2 runs the FGSM warm-up at the target ε;
    a ramp with ``eps_warmup`` < t_nat + t_adv would run it at a fraction of the target."""
    from ..objectives import FanWarmup, Ramp

    t = cfg["train"]
    if t.get("eps_schedule", "ramp") == "fan_warmup" or (method or "").startswith("advibp"):
        return FanWarmup(t["t_nat"], t["t_adv"], t["eps_ramp"])
    return Ramp(t["eps_warmup"], t["eps_ramp"])


def method_options(cfg: dict, method: str) -> tuple[dict, dict]:
    """(objective options, extra ``ntkflow.fit`` arguments) of ``method`` under ``cfg``."""
    from ..metrics import AttackSettings
    from ..objectives import BetaFromEps

    from ..objectives import spec

    t, a = cfg["train"], cfg.get("attack", DEFAULTS["attack"])
    adv = cfg.get("advibp", DEFAULTS["advibp"])
    # every config value an objective option may be set from, by the option's name; a method
    # gets the ones its builder declares, then its own [objective.NAME] table
    pool = {"steps": a["steps"], "step_size": a["step_size"] or None, "restarts": a["restarts"], "alpha": a["alpha"],
            "regularize": t.get("regularize", False), "tau": t.get("tau", 0.5), "t_nat": t["t_nat"],
            "t_adv": t["t_adv"], "ramp": t["eps_ramp"], **adv}
    declared = spec(method).options
    options = {k: pool[k] for k in declared if k in pool}
    options.update(cfg.get("objective", {}).get(method, {}))
    fit_options = {"beta_schedule": BetaFromEps(t.get("beta_start", 1.0), t.get("beta_end", 0.0)),
                   "reg_weight": t.get("lam0", 0.0), "attack_every": cfg["track"].get("attack_every", 0) or None,
                   "attack": AttackSettings(steps=a["eval_steps"], restarts=a["eval_restarts"])}
    return options, fit_options


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


#: Registry finals that are errors (NaN in a diverged run, like the other errors).
ERROR_FINALS = ("final_certified_error_ibp", "final_certified_error_crown", "final_pgd_error")
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

    options, fit_options = method_options(cfg, cell.method)
    with jax.enable_x64(True):
        params = jax.tree_util.tree_map(lambda v: jnp.asarray(v, jnp.float64), params)
        y = jnp.asarray(y, jnp.float64) if net.num_outputs == 1 else jnp.asarray(y)
        rec = recorder(net, params, jnp.asarray(X, jnp.float64), y, cell.eps, names=names,
                       own_bound=own_bound(objective(cell.method, **options)), attack=fit_options["attack"],
                       tie=tie or cfg["track"]["tie"])
        return rec(params, cell.eps, full=True)


def _registry_finals(cfg, cell, net, params, tr, X, y, diverged) -> dict:
    """The final value of every registered metric with a results column: the run's last
    record where it has one (``ntkflow.fit`` records them all), computed at the final
    params otherwise (the closed-form IBP loop records the theory quantities only)."""
    from ..metrics import METRICS

    cols = {m.final: m.name for m in METRICS.values() if m.final in final_keys() and m.final not in _RUN_KEYS
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
    ds = dataset_for(cfg, cell.eps)
    net, p0, X = model_for(cfg, cell, ds)
    tr, lr, grid = _grid_runs(cfg, cell, ds, net, p0, X, progress)
    return finish_record(cfg, cell, ds, net, X, tr, lr, grid, time.perf_counter() - t0)


def finish_record(cfg: dict, cell: Cell, ds, net, X, tr, lr: float, grid: list, wall: float) -> dict:
    """The cell's record from its chosen run ``tr`` (trained at ``lr``; ``grid`` the
    summaries of every lr): final values, test errors, the series."""
    from ..nets.spec import is_conv
    from .store import environment

    s = tr.series
    params = final_params(net, tr)
    finite = all(np.all(np.isfinite(np.asarray(v))) for v in jax.tree_util.tree_leaves(params))
    diverged = bool(tr.meta.get("diverged", False)) or not (finite and np.isfinite(s["loss"][-1]))
    Xt = inputs_for(cfg.get("model", DEFAULTS["model"])["net"], ds.X_test) if is_conv(
        cfg.get("model", DEFAULTS["model"])["net"]) and len(ds.y_test) else ds.X_test
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
                                                 *ERROR_FINALS)})
    return {"cell": asdict(cell), "key": cell_key(cfg, cell), "env": environment(), "final": final,
            "lr_grid": grid, "ts": tr.ts.tolist(),
            "series": {k: np.asarray(v, float).tolist() for k, v in s.items()}}


def lambda0_task(cfg: dict, eps: float) -> dict:
    """λ0 = λmin(H∞) with its 95% CI on the data the ε cells train on."""
    from ..paper.hinf import lambda_0

    ds = dataset_for(cfg, eps)
    lam = lambda_0(ds.X, ds.y, eps, samples=cfg["track"]["lambda_0_samples"], seed=0, warn=False)
    return {"eps": eps, "lambda_0": lam.value, "ci_low": lam.ci[0], "ci_high": lam.ci[1], "samples": lam.samples,
            "n_train": int(len(ds.y))}
