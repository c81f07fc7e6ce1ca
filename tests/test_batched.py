"""Grouped training (training.batched.fit_group) against solo training.fit: each model of a group
equals the same model trained alone — bit for bit under "loop", within 1e-9 relative under
"vmap" (batched products may sum in another order) — with different ε, lr and seed in one
group; a diverging model leaves the others untouched; the sharded model axis gives the
unsharded result; bad input is a one-line ValueError naming the argument."""

import functools
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkflow.training.batched import choose_grouping, fit_group
from ntkflow.training.fit import fit
from ntkflow.nets import conv_net, dm_small, mlp

#: cheap metrics only: the test is about training, and every record is eager work
METRICS = ("train_error", "certified_error")
KW = dict(epochs=2, batch_size=4, metrics=METRICS)
VMAP_RTOL = 1e-9


def _problem(kind: str, K: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    if kind == "mlp":
        net, shape = mlp((6, 6, 3), input_shape=(4,)), (4,)
    else:
        net, shape = conv_net([(3, 3, 2, 1)], [6], 3, (1, 5, 5)), (1, 5, 5)
    X = rng.uniform(0, 1, (8, *shape))
    y = rng.integers(0, 3, 8)
    with jax.enable_x64(True):
        params = [net.init(10 + k, shape, dtype=jnp.float64) for k in range(K)]
    return net, params, X, y


def _leaves(t):
    return [np.asarray(v) for v in jax.tree_util.tree_leaves(t.params)]


def assert_same_run(solo, grouped, rtol: float):
    """Same final params, same records (every series), same end state."""
    for a, b in zip(_leaves(solo), _leaves(grouped)):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=0)
    np.testing.assert_array_equal(grouped.ts, solo.ts)
    assert set(grouped.series) == set(solo.series)
    for k in solo.series:
        np.testing.assert_allclose(grouped.series[k], solo.series[k], rtol=rtol, atol=0, err_msg=k)
    for k in ("diverged", "converged", "epochs_run", "lr", "eps", "seed"):
        assert grouped.meta[k] == solo.meta[k], k


#: three models with their own ε, lr and seed; model 2's lr is huge (it diverges in epoch 1)
GROUP = dict(eps=[0.1, 0.03, 0.05], lrs=[0.02, 0.005, 1e300], seeds=[3, 4, 5])


@functools.lru_cache(maxsize=None)
def _runs(kind: str, objective: str):
    """Solo fits and the loop / vmap groups of ``GROUP`` (computed once per module)."""
    net, params, X, y = _problem(kind, 3)
    kw = dict(KW, objective=objective, options={"steps": 3} if objective == "pgd" else None)
    eps, lrs, seeds = GROUP["eps"], GROUP["lrs"], GROUP["seeds"]
    solo = [fit(net, p, X, y, e, lr=lr, seed=s, **kw) for p, e, lr, s in zip(params, eps, lrs, seeds)]
    groups = {g: fit_group(net, params, X, y, eps, lrs=lrs, seeds=seeds, grouping=g, **kw) for g in ("loop", "vmap")}
    return solo, groups


@pytest.mark.parametrize("kind, objective", [("mlp", "pgd"), ("conv", "ibp")])
def test_each_model_of_a_group_equals_its_solo_fit_and_a_diverging_one_stops_alone(kind, objective):
    """Model 2 goes non-finite in epoch 1: its trajectory ends there (diverged), the others
    run every epoch, and each of the three equals its solo ``fit`` (under vmap on the conv
    net this also says a grouped convolution leaks no NaN across models)."""
    solo, groups = _runs(kind, objective)
    assert not np.allclose(_leaves(solo[0])[0], _leaves(solo[1])[0])  # the models differ
    for grouping, rtol in (("loop", 0.0), ("vmap", VMAP_RTOL)):
        group = groups[grouping]
        assert len(group) == 3
        assert group[2].meta["diverged"] and list(group[2].ts) == [0.0, 1.0]
        for k, (a, b) in enumerate(zip(solo, group)):
            assert b.meta["grouping"] == grouping and b.meta["group_size"] == 3
            if k < 2:
                assert not b.meta["diverged"] and list(b.ts) == [0.0, 1.0, 2.0]
            assert_same_run(a, b, rtol)


_SHARDED = """
import sys
import jax, numpy as np
sys.path.insert(0, {tests!r})
from test_batched import GROUP, KW, _problem
from ntkflow.training.batched import fit_group
assert jax.device_count() == 2, jax.devices()
net, params, X, y = _problem("conv", 3)
group = fit_group(net, params, X, y, GROUP["eps"], lrs=GROUP["lrs"], seeds=GROUP["seeds"], grouping="vmap",
                  objective="ibp", **KW)
out = {{f"p{{k}}_{{i}}": np.asarray(v) for k, t in enumerate(group) for i, v in enumerate(jax.tree_util.tree_leaves(t.params))}}
out.update({{f"s{{k}}_{{name}}": v for k, t in enumerate(group) for name, v in t.series.items()}})
np.savez({path!r}, **out)
"""


def test_sharded_model_axis_equals_the_unsharded_run(tmp_path):
    """Two host devices, K = 3 conv nets (padded to 4), one diverging: the sharded group
    equals the one-device group, model by model."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    path = tmp_path / "sharded.npz"
    code = _SHARDED.format(tests=str(root / "tests"), path=str(path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    _, groups = _runs("conv", "ibp")
    with np.load(path, allow_pickle=False) as sharded:
        for k, t in enumerate(groups["vmap"]):
            for i, v in enumerate(_leaves(t)):
                np.testing.assert_allclose(sharded[f"p{k}_{i}"], v, rtol=VMAP_RTOL, atol=0)
            for name, v in t.series.items():
                np.testing.assert_allclose(sharded[f"s{k}_{name}"], v, rtol=VMAP_RTOL, atol=0, err_msg=name)


def test_auto_grouping_follows_the_measured_costs():
    assert choose_grouping(dm_small(), "cpu") == "loop"
    assert choose_grouping(mlp((8, 3), input_shape=(4,)), "cpu") == "loop"  # measured: loop 0.95×, vmap 1.14×
    assert choose_grouping(mlp((8, 3), input_shape=(4,)), "gpu") == "vmap"
    assert choose_grouping(dm_small(), "gpu") == "vmap"


@pytest.mark.parametrize("change, message", [
    (dict(params0_list=[]), "^params0_list: expected a non-empty list"),
    (dict(eps_list=[0.1]), r"^eps_list: expected 2 entries"),
    (dict(lrs=[0.1, 0.1, 0.1]), r"^lrs: expected 2 entries"),
    (dict(seeds=[0]), r"^seeds: expected 2 entries"),
    (dict(seeds=0), r"^seeds: expected a list of 2"),
    (dict(lrs=[0.1, -1.0]), r"^lrs\[1\]: "),
    (dict(eps_list=[0.1, 2.0]), r"^eps_list\[1\]: "),
    (dict(grouping="pmap"), "^grouping: unknown 'pmap'; choose one of auto, vmap, loop"),
    (dict(devices=[]), "^devices: empty"),
])
def test_bad_input_is_one_line_naming_the_argument(change, message):
    net, params, X, y = _problem("mlp", 2)
    args = dict(params0_list=params, eps_list=[0.1, 0.1], lrs=[0.1, 0.1], seeds=[0, 1], grouping="vmap")
    args.update(change)
    with pytest.raises(ValueError, match=message) as err:
        fit_group(net, args.pop("params0_list"), X, y, args.pop("eps_list"), epochs=1, **args)
    assert "\n" not in str(err.value)


def test_params_of_another_shape_are_refused():
    net, params, X, y = _problem("mlp", 2)
    other = mlp((7, 6, 3), input_shape=(4,)).init(0, (4,))
    with pytest.raises(ValueError, match="^params0_list: model 1's params differ"):
        fit_group(net, [params[0], other], X, y, [0.1, 0.1], lrs=[0.1, 0.1], seeds=[0, 1], epochs=1)


def test_group_takes_the_settings_objects_whole():
    """``fit_group`` with ``OptimSettings``/``RecordSettings`` objects is the group its flat keywords
    give (bit for bit under "loop"); the objects leave lr and seed to ``lrs``/``seeds``."""
    from ntkflow import NtkflowError
    from ntkflow.training.settings import OptimSettings, RecordSettings

    net, params, X, y = _problem("mlp", 2)
    args = (net, params, X, y, [0.1, 0.05])
    per = dict(lrs=[0.02, 0.01], seeds=[3, 4], grouping="loop")
    flat = fit_group(*args, **per, **KW)
    objs = fit_group(*args, **per, optim=OptimSettings(epochs=2, batch_size=4), record=RecordSettings(metrics=METRICS))
    for a, b in zip(flat, objs):
        assert_same_run(a, b, rtol=0)
    with pytest.raises(NtkflowError, match=r"^optim.lr: fit_group takes them per model \(lrs=\)"):
        fit_group(*args, **per, optim=OptimSettings(lr=0.1, epochs=1))
