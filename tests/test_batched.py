"""Grouped training (ntkflow.batched.fit_group) against solo ntkflow.fit: each model of a group
equals the same model trained alone — bit for bit under "loop", within 1e-9 relative under
"vmap" (batched products may sum in another order) — with different ε, lr and seed in one
group; a diverging model leaves the others untouched; the sharded model axis gives the
unsharded result; bad input is a one-line ValueError naming the argument."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkflow.batched import choose_grouping, fit_group
from ntkflow.fit import fit
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


@pytest.mark.parametrize("kind, objective", [("mlp", "ibp"), ("mlp", "pgd"), ("conv", "ibp"), ("conv", "pgd")])
def test_each_model_of_a_group_equals_its_solo_fit(kind, objective):
    net, params, X, y = _problem(kind, 2)
    eps, lrs, seeds = [0.1, 0.03], [0.02, 0.005], [3, 4]
    options = {"steps": 3} if objective == "pgd" else None
    kw = dict(KW, objective=objective, options=options)
    solo = [fit(net, p, X, y, e, lr=lr, seed=s, **kw) for p, e, lr, s in zip(params, eps, lrs, seeds)]
    assert not np.allclose(_leaves(solo[0])[0], _leaves(solo[1])[0])  # the models differ
    for grouping, rtol in (("loop", 0.0), ("vmap", VMAP_RTOL)):
        group = fit_group(net, params, X, y, eps, lrs=lrs, seeds=seeds, grouping=grouping, **kw)
        assert len(group) == 2
        for a, b in zip(solo, group):
            assert b.meta["grouping"] == grouping and b.meta["group_size"] == 2
            assert_same_run(a, b, rtol)


@pytest.mark.parametrize("grouping", ["loop", "vmap"])
def test_a_diverging_model_leaves_the_others_unchanged(grouping):
    """Model 1 with a huge lr goes non-finite in epoch 1: its trajectory ends there
    (diverged), the others run all epochs and equal their solo runs (vmap on a conv net:
    a grouped convolution must not leak NaN across models)."""
    net, params, X, y = _problem("conv" if grouping == "vmap" else "mlp", 3, seed=1)
    eps, lrs, seeds = [0.05, 0.05, 0.05], [0.01, 1e300, 0.02], [0, 1, 2]
    kw = dict(KW, epochs=3, objective="ibp")
    group = fit_group(net, params, X, y, eps, lrs=lrs, seeds=seeds, grouping=grouping, **kw)
    bad = group[1]
    assert bad.meta["diverged"] and bad.meta["epochs_run"] == 1 and list(bad.ts) == [0.0, 1.0]
    for k in (0, 2):
        assert not group[k].meta["diverged"] and list(group[k].ts) == [0.0, 1.0, 2.0, 3.0]
        solo = fit(net, params[k], X, y, eps[k], lr=lrs[k], seed=seeds[k], **kw)
        assert_same_run(solo, group[k], 0.0 if grouping == "loop" else VMAP_RTOL)


_SHARDED = """
import json, sys
import jax, jax.numpy as jnp, numpy as np
sys.path.insert(0, {tests!r})
from test_batched import _problem, _leaves
from ntkflow.batched import fit_group
assert jax.device_count() == 2, jax.devices()
net, params, X, y = _problem("mlp", 3)
kw = dict(lrs=[0.02, 0.01, 0.005], seeds=[0, 1, 2], grouping="vmap", objective="ibp", epochs=2, batch_size=4,
          metrics=("train_error", "certified_error"))
sharded = fit_group(net, params, X, y, [0.1, 0.05, 0.02], **kw)
single = fit_group(net, params, X, y, [0.1, 0.05, 0.02], devices=jax.devices()[:1], **kw)
diff = max(float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))
           for s, u in zip(sharded, single) for a, b in zip(_leaves(s), _leaves(u)))
series = max(float(np.nanmax(np.abs(s.series[k] - u.series[k]))) for s, u in zip(sharded, single) for k in u.series)
print(json.dumps({{"params_rel": diff, "series": series, "ts": [list(s.ts) for s in sharded]}}))
"""


def test_sharded_model_axis_equals_the_unsharded_run():
    """Two host devices, K = 3 models (padded to 4): the sharded group equals the one-device group."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", _SHARDED.format(tests=str(root / "tests"))], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["params_rel"] <= VMAP_RTOL and res["series"] <= VMAP_RTOL
    assert res["ts"] == [[0.0, 1.0, 2.0]] * 3


def test_auto_grouping_follows_the_measured_costs():
    assert choose_grouping(dm_small(), "cpu") == "loop"
    assert choose_grouping(mlp((8, 3), input_shape=(4,)), "cpu") == "vmap"
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
