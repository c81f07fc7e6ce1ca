"""The host-loop epoch of conv nets on the CPU equals the one-scan epoch it replaces."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import ntkflow.nets as N
from ntkflow.objectives import objective
from ntkflow.training.settings import optimizer
from ntkflow.training.steps import epoch, loop_epoch, prefers_host_loop


def test_loop_epoch_equals_the_scan_epoch_on_a_conv_net(x64):
    # two conv layers (stride 1 and 2) and a dense one: what the host loop changes is the loop, not
    # the layers; CNN7's seven layers only lengthened the compile of the CROWN-IBP step.
    net = N.conv_net([(2, 3, 1, 1), (3, 3, 2, 1)], [4], 3, (1, 6, 6))
    params = net.init(0, (1, 6, 6), dtype=jnp.float64)
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.uniform(0, 1, (6, 1, 6, 6)))
    y = jnp.asarray(rng.integers(0, 3, 6))
    idx = jnp.asarray(rng.permutation(6).reshape(3, 2))
    # β = 0.5, 0, 0.5: CROWN-IBP's host loop compiles a β > 0 and a β = 0 step, the scan one cond
    sched = jnp.asarray([[0.01, 0.5, 0.0, 0.0], [0.02, 0.0, 0.0, 0.3], [0.03, 0.5, 0.0, 0.6]])
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    opt = optimizer("momentum", 0.9)
    for name in ("fgsm", "crown_ibp"):  # fgsm: the per-step keys reach the step in the same order
        obj = objective(name)
        g0 = jax.tree_util.tree_map(jnp.zeros_like, params)
        args = (net, params, opt.init(params), obj.init(params), g0, X, y, idx, sched, keys, 3.0, 0.1, 10.0, obj, opt)
        a, b = epoch(*args), loop_epoch(*args)
        la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
        assert len(la) == len(lb)
        for u, v in zip(la, lb):
            np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-10, atol=1e-12)
        assert float(a[4]) > 0  # a real loss was summed


def test_only_conv_nets_on_the_cpu_take_the_host_loop():
    assert prefers_host_loop(N.dm_small((1, 28, 28), 10)) == (jax.default_backend() == "cpu")
    assert not prefers_host_loop(N.mlp((4, 3, 2), input_shape=(4,)))


def test_a_traced_schedule_keeps_the_cond(x64):
    """Under tracing (a vmapped group of conv models) β is not known on the host: the loop
    unrolls with the ``lax.cond`` instead of failing to read the schedule."""
    net = N.conv_net([(2, 3, 2, 1)], [3], 3, (1, 4, 4))
    params = net.init(0, (1, 4, 4), dtype=jnp.float64)
    rng = np.random.default_rng(1)
    X, y = jnp.asarray(rng.uniform(0, 1, (2, 1, 4, 4))), jnp.asarray(rng.integers(0, 3, 2))
    obj, opt = objective("crown_ibp"), optimizer("sgd", None)
    g0 = jax.tree_util.tree_map(jnp.zeros_like, params)
    keys = jax.random.split(jax.random.PRNGKey(0), 1)
    jaxpr = jax.make_jaxpr(lambda sched: loop_epoch(net, params, opt.init(params), obj.init(params), g0, X, y,
                                                    jnp.asarray([[0, 1]]), sched, keys, 1.0, 0.1, 1.0, obj, opt))(
        jnp.asarray([[0.1, 0.5, 0.0, 0.0]]))
    assert "cond" in str(jaxpr)
