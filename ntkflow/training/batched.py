"""Many models of one net trained as a group: ``fit_group``.

K models that share a net (its layers and frozen weights), the data (X, y), the objective
and the run settings of ``training.fit``, and differ in their initial params, seed, target
ε and learning rate, train together. Each model is exactly a ``fit`` run: its own
permutation rng and step keys (from its seed, as ``fit`` draws them), its own schedule rows
(from its ε), its own records after each epoch, its own divergence check and stop rule. A
model that diverges (or whose stop rule fires) ends its trajectory there, with
``meta["diverged"]`` (``meta["converged"]``); the others go on.

Groupings (``grouping=``):

- ``"vmap"``: one jitted epoch over a leading model axis — ``jax.vmap`` of the epoch
  ``training.fastpath`` picks (the closed form on the paper's net where it applies, else
  ``steps.epoch``) over (params, optimizer state, objective state, last gradient,
  permutation, schedule rows, step keys, lr). With several devices (``jax.device_count() > 1``) the model axis
  is sharded across them (a 1-D mesh; K padded to a multiple of the device count with
  copies of model 0, whose results are dropped). A finished model keeps stepping inside
  the group (its record is frozen).
- ``"loop"``: each epoch, the models' epochs in turn, each the very compiled epoch
  a solo ``fit`` runs; a finished model is skipped.
- ``"auto"``: ``choose_grouping``: loop on CPU, vmap on an accelerator. On CPU, vmap of
  K = 8 DM-small models ran 3.8× slower per model than one model (XLA turns the batched
  convolution into a grouped one), and benchmarks/bench_deep.py measured vmap at
  2.46× (DM-small) and 1.14× (3×1024 MLP) per model against loop's 1.06× and 0.95×: on CPU
  the loop is never worse, and it is bit-identical to solo runs.

Equality with ``fit`` run alone with the same arguments: ``"loop"`` is bit-identical by
construction (the same executable on the same inputs; tests/test_batched.py asserts
tolerance 0). ``"vmap"`` equals it within float rounding only: XLA may sum the batched
products and convolutions of a vmapped step in another order, and a rounding difference
can grow along training. The tests assert 1e-9 relative (float64, two epochs, every
param and every recorded series) for vmap and for the sharded run against the one-device
run; on CPU with jax 0.10.2 the test problems in fact came out bit-identical.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate as V
from .._core.errors import NtkflowError
from .._jax import x64
from .._progress import progress as progress_bar
from ..metrics import AttackSettings
from ..objectives import method_name, objective as make_objective
from ..paper.tracker import Trajectory
from .fit import FitRun
from .settings import OptimSettings, RecordSettings, ScheduleSettings, fit_settings

__all__ = ["fit_group", "choose_grouping", "group_epoch", "GROUPINGS"]

GROUPINGS = ("auto", "vmap", "loop")


def choose_grouping(net, backend: str | None = None) -> str:
    """"loop" on CPU, "vmap" on an accelerator (see the module docstring); ``backend``
    defaults to ``jax.default_backend()``. ``net`` is kept for rules by layer type."""
    backend = backend or jax.default_backend()
    return "loop" if backend == "cpu" else "vmap"


@partial(jax.jit, static_argnames=("objective", "opt", "path"))
def group_epoch(net, carry, X, y, idx, sched, keys, scale, lr, budget, objective, opt, path):
    """``path.epoch`` (``training.fastpath``) of K models at once: ``carry`` (state,
    opt_state, obj_state, g_prev) with a leading model axis, idx (K, steps, B), sched (K, steps, 4),
    keys (K, steps, 2) or None, lr (K,); net, X, y, scale and budget shared. Returns the
    epoch's outputs, each with a leading model axis."""

    def one(carry, idx, sched, keys, lr):
        return path.epoch(net, carry, X, y, idx, sched, keys, scale, lr, budget, objective, opt)

    return jax.vmap(one)(carry, idx, sched, keys, lr)


@x64  # X, y become jax arrays inside x64: float64 data stays float64
def fit_group(net, params0_list, X, y, eps_list, *, lrs, seeds, objective="ibp", options: dict | None = None,
              grouping: str = "auto", devices=None, optim: OptimSettings | None = None,
              schedule: ScheduleSettings | None = None, record: RecordSettings | None = None, stop=None,
              attack: AttackSettings | None = None, fast_path: bool = True, **keywords) -> list[Trajectory]:
    """Train K models of ``net`` together; model k is ``fit(net, params0_list[k], X, y,
    eps_list[k], **settings.for_run(lrs[k], seeds[k]).parts())`` with ``settings`` the rest.

    Args:
      net: an ``ntkflow.nets.Net`` shared by every model (frozen weights included).
      params0_list: K initial params of ``net``, all of one structure and shapes.
      X, y: (n, *input_shape), (n,): the shared training set.
      eps_list, lrs, seeds: K target radii, learning rates and seeds (permutations, step
        keys and evaluation keys, exactly as ``fit`` uses its seed).
      grouping: "auto" | "vmap" | "loop" (module docstring).
      devices: devices to shard the model axis over under "vmap" (default ``jax.devices()``;
        one device: no sharding).
      objective, options, optim, schedule, record, stop, attack, fast_path, **keywords: as
        ``training.fit.fit``, the same for every model (an ε schedule is taken relative to
        each model's target ε); ``optim`` leaves ``lr`` and ``seed`` unset (they are ``lrs``
        and ``seeds``).

    Returns:
      K ``Trajectory`` objects, in the order of ``params0_list``; ``meta`` adds
      ``grouping`` (the one used) and ``group_size`` (K).
    """
    K = _group_size(params0_list)
    eps_list = _per_model("eps_list", eps_list, K, V.eps_value)
    lrs = _per_model("lrs", lrs, K, lambda v: V.positive_float("lr", v))
    seeds = _per_model("seeds", seeds, K, V.seed)
    if grouping not in GROUPINGS:
        raise NtkflowError(f"grouping: unknown {grouping!r}; choose one of {', '.join(GROUPINGS)}")
    obj = make_objective(objective, **(options or {}))
    X, y = jnp.asarray(X), jnp.asarray(y)
    run = fit_settings(optim=optim, schedule=schedule, record=record, stop=stop, attack=attack, fast_path=fast_path,
                       **keywords)
    if run.optim.lr is not None or run.optim.seed != 0:
        name = "lr" if run.optim.lr is not None else "seed"
        raise NtkflowError(f"optim.{name}: fit_group takes them per model ({name}s=); leave it unset")
    settings = [run.for_run(lr, seed) for lr, seed in zip(lrs, seeds)]
    grouping = choose_grouping(net) if grouping == "auto" else grouping
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise NtkflowError("devices: empty; pass None (every device) or a list of jax devices")
    trajectories = _fit_group(net, params0_list, X, y, eps_list, obj, settings, grouping, devices)
    for t in trajectories:
        t.meta.update(grouping=grouping, group_size=K)
    return trajectories


def _group_size(params0_list) -> int:
    """K, after checking that the params are a non-empty list of one structure and shapes."""
    if not isinstance(params0_list, (list, tuple)) or not params0_list:
        raise NtkflowError("params0_list: expected a non-empty list of initial params (one per model), got "
                         f"{type(params0_list).__name__} of length {len(params0_list) if hasattr(params0_list, '__len__') else '?'}")

    def signature(p):
        leaves, tree = jax.tree_util.tree_flatten(p)
        return tree, [np.shape(v) for v in leaves]

    first = signature(params0_list[0])
    for k, p in enumerate(params0_list[1:], 1):
        if signature(p) != first:
            raise NtkflowError(f"params0_list: model {k}'s params differ in structure or shapes from model 0's "
                             "(a group shares one net)")
    return len(params0_list)


def _per_model(name: str, values, K: int, check) -> list:
    """``check`` applied to each of K values; one-line errors name ``name[k]``."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise NtkflowError(f"{name}: expected a list of {K} values (one per model), got {values!r}")
    if len(values) != K:
        raise NtkflowError(f"{name}: expected {K} entries (one per model of params0_list), got {len(values)}")
    out = []
    for k, v in enumerate(values):
        try:
            out.append(check(v))
        except ValueError as e:
            raise NtkflowError(f"{name}[{k}]: {str(e).split(': ', 1)[-1]}") from None
    return out


@x64
def _fit_group(net, params0_list, X, y, eps_list, obj, settings, grouping, devices) -> list[Trajectory]:
    runs = [FitRun(net, p0, X, y, e, obj, s) for p0, e, s in zip(params0_list, eps_list, settings)]
    first = settings[0]
    label = f"fit_group ({method_name(obj)}, K={len(runs)}, {grouping})"
    step = _loop_epochs(net, runs, obj) if grouping == "loop" else _vmap_epochs(net, runs, obj, devices)
    for ep in progress_bar(range(first.optim.epochs), first.record.progress, label):
        step(ep)
        if all(r.done for r in runs):
            break
    return [r.trajectory() for r in runs]


def _loop_epochs(net, runs, obj):
    """epoch(ep): each unfinished model's own epoch in turn (``FitRun.step``: bit-identical to ``fit``)."""

    def step(ep):
        for r in runs:
            if not r.done:
                r.step(ep)

    return step


def _vmap_epochs(net, runs, obj, devices):
    """epoch(ep): one ``group_epoch`` over every model (finished ones keep stepping,
    unrecorded), the model axis sharded over ``devices``."""
    if len({r.path for r in runs}) > 1:
        raise NtkflowError("eps_list: standard training at ε = 0 (closed-form epoch) and at ε > 0 cannot share a "
                           "vmapped group; use grouping='loop'")
    K, D = len(runs), len(devices)
    pad = -K % D if D > 1 else 0
    put = _placement(devices, K + pad)

    def stack(items):
        items = list(items) + [items[0]] * pad
        return put(jax.tree_util.tree_map(lambda *v: jnp.stack(v), *items))

    r0 = runs[0]
    carry = stack([r.carry for r in runs])
    lr = stack([r.lr for r in runs])
    shared = put((net, r0.Xc, r0.yc, r0.scale), replicate=True)

    def step(ep):
        nonlocal carry
        idx, keys, srows = (stack(v) for v in zip(*[r.epoch_inputs(ep) for r in runs]))
        net_, Xc, yc, scale = shared
        *carry, total, aux = group_epoch(net_, tuple(carry), Xc, yc, idx, srows, keys, scale, lr, r0.budget, obj,
                                         r0.opt, r0.path)
        carry = tuple(carry)
        for k, r in enumerate(runs):
            if not r.done:
                r.end_epoch(ep, jax.tree_util.tree_map(lambda v: v[k], carry[0]), total[k],
                            {name: v[k] for name, v in aux.items()})

    return step


def _placement(devices, K: int):
    """put(tree, replicate=False): the tree on ``devices[0]`` if it is the only one; on
    several, placed with its leading (model) axis sharded over a 1-D mesh of ``devices``
    (or replicated)."""
    if len(devices) == 1:
        return lambda tree, replicate=False: jax.device_put(tree, devices[0])
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    mesh = Mesh(np.array(devices), ("model",))
    split, same = NamedSharding(mesh, P("model")), NamedSharding(mesh, P())
    return lambda tree, replicate=False: jax.device_put(tree, same if replicate else split)
