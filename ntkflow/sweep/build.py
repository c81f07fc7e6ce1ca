"""A resolved config mapped onto the objects a cell trains with: its data, its net and initial
params, its objective's options, its ε schedule and the trainer's settings objects
(``training.settings.FitSettings``: ``fit_settings_for``).

Every function here reads a resolved config (``config.resolve``: every section and key
present) and builds; nothing here trains or writes.
"""

from __future__ import annotations

import functools
import json

import jax
import numpy as np

from .._core.errors import NtkflowError
from .config import canonical

__all__ = ["cell_config", "dataset_for", "model_for", "inputs_for", "fit_settings_for", "attack_settings",
           "eps_schedule", "method_options", "check_objectives"]


def cell_config(cfg: dict, cell) -> dict:
    """``cfg`` with the data section a cell trains on: a cell on a ``grid.n_train`` / ``grid.d``
    axis (``cell.n_train`` / ``cell.d`` > 0) sets ``data.n_train`` / ``data.d``; other cells get
    ``cfg`` itself. Cells with the same (n, d, data.seed) get equal data sections, hence the
    same data (``dataset_for`` caches on it)."""
    over = {k: v for k, v in (("n_train", getattr(cell, "n_train", 0)), ("d", getattr(cell, "d", 0))) if v}
    return {**cfg, "data": {**cfg["data"], **over}} if over else cfg


@functools.lru_cache(maxsize=8)
def _dataset(data_json: str, eps: float):
    from ..data import load

    d = json.loads(data_json)
    return load(d["source"], n=d["n_train"] or None, eps=eps, mnist_dir=d["mnist_dir"] or None, seed=d["seed"],
                normalize=d["normalize"], n_test=d["n_test"], d=d["d"], cifar_dir=d["cifar_dir"] or None,
                classes=d["classes"] or None, scale=d.get("scale", 1.0), pool=d.get("pool", 1))


def dataset_for(cfg: dict, eps: float):
    """The data a cell at radius ε trains on (normalized into [ε, 1]^d when data.normalize);
    ``cfg`` is the cell's config (``cell_config``)."""
    return _dataset(canonical(cfg["data"]), eps if cfg["data"]["normalize"] else 0.0)


def model_for(cfg: dict, cell, ds):
    """(net, params0, X): the cell's net at its width, initialized with its seed, and the
    training inputs in the net's layout. The paper's two-layer net takes the paper's
    initialization (w_r ~ N(0, I), a_r = ±1: ``paper.model.init_params``); every other net
    ``net.init(seed, init=model.init or "torch")``."""
    from ..nets import two_layer
    from ..nets.spec import net_from_spec
    from ..paper.model import init_params

    spec = cfg["model"]
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


def fit_settings_for(cfg: dict, method: str, progress: bool = False):
    """The ``training.settings.FitSettings`` of ``method``'s runs under ``cfg`` — the one place the
    TOML sections become the trainer's settings objects: [train] → ``OptimSettings`` (lr and seed
    left unset: they are the run's, ``FitSettings.for_run``), the ε schedule, β and the
    regularizer weight → ``ScheduleSettings``, [track] → ``RecordSettings``, [train].stop →
    ``StopRule``, [attack].eval_* → ``AttackSettings``."""
    from ..objectives import BetaFromEps
    from ..training.settings import FitSettings, OptimSettings, RecordSettings, ScheduleSettings, stop_rule

    t, track = cfg["train"], cfg["track"]
    return FitSettings(
        optim=OptimSettings(optimizer=t["optimizer"], epochs=t["epochs"], batch_size=t["batch_size"] or None,
                            momentum=t["momentum"] or None, dtype=t["dtype"]),
        schedule=ScheduleSettings(eps_schedule=eps_schedule(cfg, method),
                                  beta_schedule=BetaFromEps(t["beta_start"], t["beta_end"]), reg_weight=t["lam0"]),
        record=RecordSettings(record_every=track["every"], attack_every=track["attack_every"] or None,
                              track_gram=track["gram"], tie=track["tie"], progress=progress),
        stop=stop_rule(t["stop"] or None), attack=attack_settings(cfg))


def attack_settings(cfg: dict):
    """The evaluation attack of every cell (``metrics.AttackSettings`` from [attack].eval_*)."""
    from ..metrics import AttackSettings

    a = cfg["attack"]
    return AttackSettings(steps=a["eval_steps"], restarts=a["eval_restarts"])


def eps_schedule(cfg: dict, method: str | None = None):
    """The ε schedule of [train]: a ramp (eps_warmup, eps_ramp) or fan2021's warm-up
    (t_nat, t_adv, then the ramp). Every method at ε > 0 follows it (standard trains at 0).

    A method whose objective declares ``phases_by_epoch`` (AdvIBP and its fixed-κ baseline)
    always gets fan2021's warm-up: its objective switches phase by epoch (clean, FGSM,
    joint), and Alg. 2 runs the FGSM warm-up at the target ε; a ramp with ``eps_warmup`` <
    t_nat + t_adv would run it at a fraction of the target."""
    from ..objectives import FanWarmup, Ramp, phases_by_epoch

    t = cfg["train"]
    if t["eps_schedule"] == "fan_warmup" or (method is not None and phases_by_epoch(method)):
        return FanWarmup(t["t_nat"], t["t_adv"], t["eps_ramp"])
    return Ramp(t["eps_warmup"], t["eps_ramp"])


def method_options(cfg: dict, method: str) -> dict:
    """The objective options of ``method`` under ``cfg``: the config values its builder declares
    (``objectives.spec``), then its own ``[objective.NAME]`` table."""
    from ..objectives import spec

    t, a, adv = cfg["train"], cfg["attack"], cfg["advibp"]
    # every config value an objective option may be set from, by the option's name
    pool = {"steps": a["steps"], "step_size": a["step_size"] or None, "restarts": a["restarts"], "alpha": a["alpha"],
            "regularize": t["regularize"], "tau": t["tau"], "t_nat": t["t_nat"], "t_adv": t["t_adv"],
            "ramp": t["eps_ramp"], **adv}
    declared = spec(method).options
    options = {k: pool[k] for k in declared if k in pool}
    options.update(cfg.get("objective", {}).get(method, {}))
    return options


def check_objectives(cfg: dict) -> None:
    """Build every grid method's objective with the options the config gives it, so that a bad
    option value (its ``[objective.NAME]`` table, or an [attack] / [advibp] / [train] key its
    builder declares) is a one-line config error before a sweep writes anything, not a
    failure at its first cell."""
    from ..objectives import objective

    for method in sorted({m for g in cfg["grid"] for m in g["method"]}):
        options = method_options(cfg, method)
        try:
            objective(method, **options)
        except ValueError as e:  # NtkflowError and a builder's own ValueError: the user's setting
            raise NtkflowError(f"config: method {method!r}: {e}") from None
