"""Sweep configuration: a TOML file (``tomllib``, no eval), dotted overrides, validation.

Sections: ``[data]``, ``[grid]`` (a table, or ``[[grid]]`` tables whose products are
united), ``[train]``, ``[track]``. Unknown keys and wrong types are one-line errors.
"""

from __future__ import annotations

import copy
import json
import math
import tomllib
from pathlib import Path

from .. import _validate as V
from .._core.errors import NtkflowError

__all__ = ["DEFAULTS", "load_config", "resolve", "apply_override", "canonical"]

#: Every key with its default; the type of the default is the type required.
DEFAULTS: dict = {
    "data": {"source": "mnist25", "n_train": 0, "n_test": 0, "normalize": False, "mnist_dir": "", "seed": 0,
             "d": 784, "cifar_dir": "", "classes": "", "scale": 1.0, "pool": 1},
    "grid": {"method": ["ibp"], "width": [1000], "eps": [0.0], "seed": [0], "standard_at_eps": False},
    "train": {"optimizer": "sgd", "lr": 1e-4, "epochs": 10, "batch_size": 0, "momentum": 0.0, "dtype": "float32",
              "eps_warmup": 0.0, "eps_ramp": 0.0, "eps_schedule": "ramp", "t_nat": 0.0, "t_adv": 0.0,
              "beta_start": 1.0, "beta_end": 0.0, "lam0": 0.0, "regularize": False, "tau": 0.5,
              "flow": False, "t1": 1.0, "solver": "rk4", "dt": 0.0,
              "certify": False, "select": "final_train_loss", "stop": {}},
    "attack": {"steps": 10, "step_size": 0.0, "restarts": 1, "alpha": 1.25, "eval_steps": 20, "eval_restarts": 1},
    "advibp": {"c_max": 1e-4, "decay": 1.0, "beta1": 0.9, "beta2": 0.99, "kappa_adv": 1.0, "kappa_ibp": 1.0},
    "track": {"every": 1, "gram": False, "saves": 41, "lambda_0": False, "lambda_0_samples": 20_000, "tie": "wrong",
              "attack_every": 0},
    "model": {"net": "two_layer", "init": ""},
    "run": {"batch_models": True, "dask_resources": {}},
}
#: The paper's two methods: in a grid of only these, standard cells have ε = 0 (Figure 1).
PAPER_PAIR = {"standard", "ibp"}
#: ``grid.method`` values are the registered training methods (``ntkflow.objectives.names()``).
#: ``standard`` trains at ε = 0; its cells have ε = 0 (Figure 1) unless ``grid.standard_at_eps``
#: (then one per ε: the same training, its robust errors at each radius). Unset, it is true
#: exactly when the grid has a method beyond the paper's pair (``PAPER_PAIR``). ``[objective.NAME]`` tables set a method's own
#: options (the keywords of its builder); absent from the resolved config when empty.
EPS_SCHEDULES = ("ramp", "fan_warmup")
#: Grid axes over the data (``grid.n_train``, ``grid.d``: lists), for the sources whose n and d
#: are free (``SYNTHETIC_SOURCES``). Absent from a resolved grid unless set, so a config without
#: them resolves, and keys its cells, exactly as before they existed.
DATA_AXES = ("n_train", "d")
SYNTHETIC_SOURCES = ("synthetic", "parallel")


def _type_name(v) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}[type(v)]


def _check_value(path: str, default, value):
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, list):
        if not isinstance(value, list):
            value = [value]
        ok = len(value) > 0
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise NtkflowError(f"config: {path} must be {_type_name(default)}, got {value!r}")
    return value


def _check_grid(i: str, g: dict) -> dict:
    out = {}
    for k, v in g.items():
        if k in DATA_AXES:
            out[k] = _check_value(f"grid{i}.{k}", [], v)
            continue
        if k not in DEFAULTS["grid"]:
            raise NtkflowError(f"config: unknown key grid{i}.{k} (known: {', '.join((*DEFAULTS['grid'], *DATA_AXES))})")
        out[k] = _check_value(f"grid{i}.{k}", DEFAULTS["grid"][k], v)
    full = {**DEFAULTS["grid"], **out}
    if "standard_at_eps" not in g:  # unset: the paper's pair keeps Figure 1's ε = 0; a comparison
        # with any other method judges standard training at the grid's radii, like the others
        full["standard_at_eps"] = bool(set(full["method"]) - PAPER_PAIR)
    from ..objectives import names

    for mth in full["method"]:
        if mth not in names():
            raise NtkflowError(f"config: grid{i}.method has {mth!r}; choose from {', '.join(names())}")
    for w in full["width"]:
        if not isinstance(w, int) or isinstance(w, bool) or w < 0:
            raise NtkflowError(f"config: grid{i}.width entries must be positive integers, got {w!r}")
    for e in full["eps"]:
        if not isinstance(e, (int, float)) or isinstance(e, bool) or not 0 <= e <= 1:
            raise NtkflowError(f"config: grid{i}.eps entries must be numbers in [0, 1], got {e!r}")
    for s in full["seed"]:
        if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s <= V.SEED_MAX:
            raise NtkflowError(f"config: grid{i}.seed entries must be integers in [0, {V.SEED_MAX}] (a JAX seed), "
                             f"got {s!r}")
    for k, low in zip(DATA_AXES, (2, 1)):
        for v in full.get(k, ()):
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise NtkflowError(f"config: grid{i}.{k} entries must be integers >= {low}, got {v!r}")
        if len(set(full.get(k, ()))) != len(full.get(k, ())):
            raise NtkflowError(f"config: grid{i}.{k} entries must be distinct, got {full[k]}")
    full["eps"] = [float(e) for e in full["eps"]]
    return full


def _check_data_axes(d: dict, grids: list) -> None:
    """``grid.n_train`` / ``grid.d`` only for a synthetic source, and not beside the same
    ``[data]`` key (which of the two would a cell get?)."""
    for i, g in enumerate(grids):
        label = "" if len(grids) == 1 else f"[{i}]"
        for k in DATA_AXES:
            if k not in g:
                continue
            if d["source"] not in SYNTHETIC_SOURCES:
                raise NtkflowError(f"config: grid{label}.{k} is an axis of the synthetic sources only "
                                   f"({', '.join(SYNTHETIC_SOURCES)}); data.source is {d['source']!r}")
            if d[k] != DEFAULTS["data"][k]:
                raise NtkflowError(f"config: data.{k} and grid{label}.{k} are both set; keep one")


def _check_objective_tables(val) -> dict:
    """``[objective.NAME]``: each NAME a registered method, each key one of its builder's options."""
    from ..objectives import spec

    if not isinstance(val, dict) or not all(isinstance(t, dict) for t in val.values()):
        raise NtkflowError("config: [objective] must hold one table per method ([objective.NAME])")
    out = {}
    for name, table in sorted(val.items()):
        try:
            options = spec(name).options
        except ValueError:
            raise NtkflowError(f"config: [objective.{name}] names no registered method") from None
        for k, v in table.items():
            if k not in options:
                raise NtkflowError(f"config: unknown key objective.{name}.{k} (its options: {', '.join(options) or 'none'})")
            if not isinstance(v, (bool, int, float, str, list)):
                raise NtkflowError(f"config: objective.{name}.{k} must be a number, string, boolean or list")
        if table:
            out[name] = dict(sorted(table.items()))
    return out


def resolve(raw: dict) -> dict:
    """Fill defaults and validate; the result is JSON-ready and canonical."""
    if not isinstance(raw, dict):
        raise NtkflowError("config: must be a TOML table")
    out = {}
    for sec, spec in DEFAULTS.items():
        val = raw.get(sec, {})
        if sec == "grid":
            grids = val if isinstance(val, list) else [val]
            if not all(isinstance(g, dict) for g in grids):
                raise NtkflowError("config: [grid] must be a table or an array of tables")
            out["grid"] = [_check_grid("" if len(grids) == 1 else f"[{i}]", g) for i, g in enumerate(grids)]
            continue
        if not isinstance(val, dict):
            raise NtkflowError(f"config: [{sec}] must be a table")
        sec_out = copy.deepcopy(spec)
        for k, v in val.items():
            if k not in spec:
                raise NtkflowError(f"config: unknown key {sec}.{k} (known: {', '.join(spec)})")
            if (sec, k) == ("train", "lr") and isinstance(v, list):  # a learning-rate grid
                sec_out[k] = [_check_value(f"train.lr[{i}]", 0.0, e) for i, e in enumerate(v)] or \
                    _check_value("train.lr", [], v)
                continue
            sec_out[k] = _check_value(f"{sec}.{k}", spec[k], v)
        out[sec] = sec_out
    objective_tables = _check_objective_tables(raw.get("objective", {}))
    if objective_tables:
        out["objective"] = objective_tables
    for sec in raw:
        if sec not in DEFAULTS and sec != "objective":
            raise NtkflowError(f"config: unknown section [{sec}] (known: {', '.join(DEFAULTS)})")
    _fixed_width(out, raw)
    _check_model(out["model"], out["grid"])
    _check_run(out["run"])
    _check_train(out["train"])
    _check_attack(out["attack"], out["advibp"], out["track"])
    _check_data(out["data"])
    _check_data_axes(out["data"], out["grid"])
    from ..paper.tracker import TIE_RULES

    if out["track"]["tie"] not in TIE_RULES:
        raise NtkflowError(f"config: track.tie is {out['track']['tie']!r}; choose one of {', '.join(TIE_RULES)}")
    if out["track"]["every"] < 1 or out["track"]["saves"] < 2 or out["track"]["lambda_0_samples"] < 1:
        raise NtkflowError("config: track.every must be >= 1, track.saves >= 2 and track.lambda_0_samples >= 1")
    return out


def _check_train(t: dict) -> None:
    """Every train value a cell will use, checked before any directory is written."""
    from ..paper.flow import SOLVERS
    from ..training.settings import OPTIMIZERS

    from ..training.settings import StopRule
    from .protocol import SELECT_RULES

    lrs = t["lr"] if isinstance(t["lr"], list) else [t["lr"]]
    if len(set(lrs)) != len(lrs) or not all(math.isfinite(v) and v > 0 for v in lrs):
        raise NtkflowError(f"config: train.lr must be > 0 and finite (a number or a list of distinct numbers), "
                         f"got {t['lr']}")
    for k in ("t1", "dt", "momentum", "eps_warmup", "eps_ramp"):
        if not math.isfinite(t[k]):
            raise NtkflowError(f"config: train.{k} must be finite, got {t[k]}")
    if t["select"] not in SELECT_RULES:
        raise NtkflowError(f"config: train.select is {t['select']!r}; choose one of {', '.join(SELECT_RULES)}")
    try:
        StopRule(**t["stop"])
    except TypeError:
        raise NtkflowError(f"config: train.stop has unknown keys {sorted(t['stop'])}; use patience, rel_tol, "
                         "abs_tol, kappa") from None
    except ValueError as e:
        raise NtkflowError(f"config: train.{e}") from None
    if min(lrs) <= 0 or t["epochs"] < 1 or t["t1"] < 0 or t["batch_size"] < 0 or t["dt"] < 0:
        raise NtkflowError("config: train.lr must be > 0, train.epochs >= 1, train.t1 >= 0, train.batch_size >= 0, "
                         "train.dt >= 0 (0: the solver's default)")
    if not 0 <= t["momentum"] < 1 or t["eps_warmup"] < 0 or t["eps_ramp"] < 0:
        raise NtkflowError("config: train.momentum must be in [0, 1), train.eps_warmup and train.eps_ramp >= 0")
    choices = (("optimizer", OPTIMIZERS), ("solver", SOLVERS), ("dtype", ("float32", "float64")))
    for k, allowed in choices:
        if t[k] not in allowed:
            raise NtkflowError(f"config: train.{k} is {t[k]!r}; choose one of {', '.join(allowed)}")
    if t["eps_schedule"] not in EPS_SCHEDULES:
        raise NtkflowError(f"config: train.eps_schedule is {t['eps_schedule']!r}; choose one of "
                         f"{', '.join(EPS_SCHEDULES)}")
    for k in ("t_nat", "t_adv", "lam0"):
        if not (math.isfinite(t[k]) and t[k] >= 0):
            raise NtkflowError(f"config: train.{k} must be a finite number >= 0, got {t[k]}")
    for k in ("beta_start", "beta_end"):
        if not 0 <= t[k] <= 1:
            raise NtkflowError(f"config: train.{k} must be in [0, 1], got {t[k]}")
    if not 0 < t["tau"] <= 1:
        raise NtkflowError(f"config: train.tau must be in (0, 1], got {t['tau']}")
    if t["dtype"] == "float32" and max(lrs) > 3.4028234e38:  # float32 max
        raise NtkflowError(f"config: train.lr = {max(lrs)} overflows float32 (train.dtype)")


def _check_model(mdl: dict, grids: list) -> None:
    """[model]: the net spec, its init scheme, and widths that fit it (0 for a fixed net)."""
    from ..nets import INITS
    from ..nets.spec import check_spec, uses_width

    try:
        check_spec(mdl["net"])
    except ValueError as e:
        raise NtkflowError(f"config: {e}") from None
    if mdl["init"] and (mdl["net"] == "two_layer" or mdl["init"] not in INITS):
        raise NtkflowError(f"config: model.init is {mdl['init']!r}; choose one of {', '.join(INITS)} for a deep net "
                         "('' : the default — the paper's N(0, I) for two_layer, 'torch' otherwise)")
    widths = {w for g in grids for w in g["width"]}
    if uses_width(mdl["net"]) and 0 in widths:
        raise NtkflowError(f"config: grid.width entries must be positive integers for model.net = {mdl['net']!r}")
    if not uses_width(mdl["net"]) and widths != {0}:
        raise NtkflowError(f"config: grid.width must be [0] for model.net = {mdl['net']!r} (a fixed architecture; "
                         "use 'mlp:W,W' for a width family)")


def _fixed_width(out: dict, raw: dict) -> None:
    """A fixed architecture (``dm_small``, ``cnn7``, ...) has no width: a grid that does not set
    ``width`` gets [0] instead of the two-layer default."""
    from ..nets.spec import uses_width

    if isinstance(out["model"]["net"], str) and _spec_ok(out["model"]["net"]) and not uses_width(out["model"]["net"]):
        raw_grids = raw.get("grid", {})
        raw_grids = raw_grids if isinstance(raw_grids, list) else [raw_grids]
        for g, rg in zip(out["grid"], raw_grids):
            if "width" not in rg:
                g["width"] = [0]


def _spec_ok(net: str) -> bool:
    from ..nets.spec import check_spec

    try:
        check_spec(net)
    except ValueError:
        return False  # _check_model names the error
    return True


def _check_run(r: dict) -> None:
    for k, v in r["dask_resources"].items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise NtkflowError(f"config: run.dask_resources.{k} must be a positive number, got {v!r}")


def _check_attack(a: dict, adv: dict, track: dict) -> None:
    """[attack] (training attacks and the evaluation PGD), [advibp], track.attack_every."""
    for k in ("steps", "restarts", "eval_restarts"):
        if a[k] < 1:
            raise NtkflowError(f"config: attack.{k} must be >= 1, got {a[k]}")
    if a["eval_steps"] < 0:
        raise NtkflowError(f"config: attack.eval_steps must be >= 0 (0: no evaluation attack, final_pgd_error "
                         f"empty), got {a['eval_steps']}")
    for k in ("step_size", "alpha"):
        if not (math.isfinite(a[k]) and a[k] >= 0):
            raise NtkflowError(f"config: attack.{k} must be a finite number >= 0 (step_size 0: 2.5/steps), got {a[k]}")
    if not (math.isfinite(adv["c_max"]) and adv["c_max"] >= 0 and math.isfinite(adv["decay"]) and adv["decay"] > 0):
        raise NtkflowError("config: advibp.c_max must be >= 0 and advibp.decay > 0")
    for k in ("beta1", "beta2"):
        if not 0 <= adv[k] < 1:
            raise NtkflowError(f"config: advibp.{k} must be in [0, 1), got {adv[k]}")
    if track["attack_every"] < 0:
        raise NtkflowError(f"config: track.attack_every must be >= 0 (0: at the start and the end), "
                         f"got {track['attack_every']}")


def _check_data(d: dict) -> None:
    from ..data import MNIST_CLASSES, SOURCES

    if d["source"] not in SOURCES:
        raise NtkflowError(f"config: data.source is {d['source']!r}; choose one of {', '.join(SOURCES)}")
    if d["n_train"] < 0 or d["n_test"] < 0 or d["d"] < 1 or d["seed"] < 0:
        raise NtkflowError("config: data.n_train and data.n_test must be >= 0 (0: the default), data.d >= 1, "
                         "data.seed >= 0")
    if d["source"] == "mnist" and not Path(d["mnist_dir"]).is_dir():
        raise NtkflowError(f"config: data.mnist_dir {d['mnist_dir']!r} is not a directory (source 'mnist' needs "
                         "the MNIST IDX files)")
    if d["source"] == "cifar10" and not Path(d["cifar_dir"]).is_dir():
        raise NtkflowError(f"config: data.cifar_dir {d['cifar_dir']!r} is not a directory (source 'cifar10' needs "
                         "the CIFAR-10 binary version's data_batch_*.bin files)")
    _check_transform(d)
    if d["classes"] and (d["source"] != "mnist" or d["classes"] not in MNIST_CLASSES):
        raise NtkflowError(f"config: data.classes is {d['classes']!r}; for source 'mnist' choose one of "
                         f"{', '.join(MNIST_CLASSES)} ('' means 25); other sources take no data.classes")


def _check_transform(d: dict) -> None:
    """data.pool (k×k average pooling of an image source; k divides its side) and data.scale
    (a factor on every input, > 0; 1 with data.normalize, whose box fixes the scale)."""
    from ..data import IMAGE_SHAPES

    if not (math.isfinite(d["scale"]) and d["scale"] > 0):
        raise NtkflowError(f"config: data.scale must be a finite number > 0, got {d['scale']}")
    if d["scale"] != 1.0 and d["normalize"]:
        raise NtkflowError(f"config: data.scale = {d['scale']:g} needs data.normalize = false (the box [ε, 1]^d "
                           "fixes the scale)")
    if d["pool"] < 1:
        raise NtkflowError(f"config: data.pool must be an integer >= 1 (1: no pooling), got {d['pool']}")
    if d["pool"] > 1:
        if d["source"] not in IMAGE_SHAPES:
            raise NtkflowError(f"config: data.pool = {d['pool']} needs an image source ({', '.join(IMAGE_SHAPES)}); "
                               f"{d['source']!r} has no images")
        side = IMAGE_SHAPES[d["source"]][1]
        if side % d["pool"]:
            raise NtkflowError(f"config: data.pool = {d['pool']} must divide the image side {side} of "
                               f"{d['source']!r}")


def apply_override(raw: dict, spec: str) -> dict:
    """Apply ``section.key=VALUE`` (VALUE in TOML syntax; a bare word is a string)."""
    if "=" not in spec or "." not in spec.split("=", 1)[0]:
        raise NtkflowError(f"--set: expected section.key=VALUE, got {spec!r}")
    path, text = spec.split("=", 1)
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    *secs, key = path.strip().split(".")
    node = raw
    for s in secs:
        node = node.setdefault(s, {})
        if isinstance(node, list):  # [[grid]]: an override applies to every grid table
            for g in node:
                g[key] = value
            return raw
        if not isinstance(node, dict):
            raise NtkflowError(f"--set: {path} does not name a key in a table")
    node[key] = value
    return raw


def load_config(path, overrides=()) -> dict:
    """Read, override and resolve a sweep config."""
    path = Path(path)
    if path.is_dir():
        raise NtkflowError(f"config: {path} is a directory, not a TOML file")
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise NtkflowError(f"config: {path} does not exist") from None
    except UnicodeDecodeError:
        raise NtkflowError(f"config: {path} is not a text (UTF-8) file") from None
    except OSError as e:
        raise NtkflowError(f"config: cannot read {path} ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise NtkflowError(f"config: {path} is not valid TOML ({e})") from None
    for o in overrides:
        raw = apply_override(raw, o)
    return resolve(raw)


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))
