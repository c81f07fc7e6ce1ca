"""Layer-kind dispatch: an unknown kind raises NotImplementedError naming the rule and the file to extend."""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkflow.nets as N
from ntkflow.bounds.linear import backward
from ntkflow.bounds.ops import interval_step
from ntkflow.analysis.gain import expected_difference_gain


@dataclass(frozen=True)
class Mystery(N.layers.ReLU):
    """Shape-preserving, parameter-free, and of a kind no dispatcher knows."""

    kind = "mystery"


jax.tree_util.register_dataclass(Mystery, data_fields=[], meta_fields=[])


def _net():
    return N.Net([N.layers.Dense(3, 2), Mystery(), N.layers.Dense(2, 3)], input_shape=(2,))


def test_unknown_kind_raises_in_every_dispatcher():
    net = _net()
    params = ({"weight": jnp.ones((3, 2)), "bias": jnp.zeros(3)}, {}, {"weight": jnp.ones((2, 3)), "bias": jnp.zeros(2)})
    with pytest.raises(NotImplementedError, match=r"Net.apply_one.*'mystery'.*ntkflow/nets/base.py"):
        net.apply_one(params, jnp.ones(2))
    with pytest.raises(NotImplementedError, match=r"interval_step.*'mystery'.*ntkflow/bounds/ops.py"):
        interval_step(Mystery(), {}, jnp.zeros(3), jnp.ones(3))
    with pytest.raises(NotImplementedError, match=r"backward.*'mystery'.*ntkflow/bounds/linear.py"):
        backward(net, params, jnp.ones((1, 3)), 2, {}, net.shapes((2,)))
    with pytest.raises(NotImplementedError, match=r"gain.*'mystery'.*ntkflow/analysis/gain.py"):
        expected_difference_gain(net, (2,), "torch")
    from ntkflow.bounds.exact import _build

    mats = {0: (np.ones((3, 2)), np.zeros(3)), 2: (np.ones((2, 3)), np.zeros(2))}
    with pytest.raises(NotImplementedError, match=r"exact_margin.*'mystery'.*ntkflow/bounds/exact.py"):
        _build(net, mats, {}, np.zeros(2), np.ones(2))


# ---------------------------------------------------------------- the float64 BN reference itself
from net_reference import (batchnorm_batch_stats, batchnorm_forward, batchnorm_interval,  # noqa: E402
                           batchnorm_running_update, batchnorm_scale_shift)


def test_reference_train_mode_normalizes_and_update_matches_closed_form():
    rng = np.random.default_rng(0)
    X = rng.normal(2.0, 3.0, (5, 3, 2, 2))
    Y = batchnorm_forward(X, None, None, None, None, 0.0, training=True)
    # zero mean and unit biased variance per channel (ε = 0)
    np.testing.assert_allclose(Y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(Y.var(axis=(0, 2, 3)), 1, atol=1e-12)
    rm, rv, n = batchnorm_running_update(X, np.zeros(3), np.ones(3), 0, momentum=0.1)
    flat = X.transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(rm, 0.1 * flat.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(rv, 0.9 + 0.1 * flat.var(axis=1, ddof=1), rtol=1e-12)
    assert n == 1
    _, _, n2 = batchnorm_running_update(X, rm, rv, n, momentum=None)
    assert n2 == 2


def test_reference_interval_is_sound_and_tight_at_corners():
    rng = np.random.default_rng(1)
    lo = rng.normal(size=(1, 4))
    hi = lo + rng.uniform(0, 1, (1, 4))
    mean, var = rng.normal(size=4), rng.uniform(0.5, 2, 4)
    g, b = np.array([1.5, -0.7, 0.0, 2.0]), rng.normal(size=4)
    s, t = batchnorm_scale_shift(mean, var, g, b, 1e-5)
    L, U = batchnorm_interval(lo, hi, s, t)
    pts = lo + rng.uniform(0, 1, (200, 4)) * (hi - lo)
    Y = batchnorm_forward(pts, g, b, mean, var, 1e-5, training=False)
    assert np.all(Y >= L - 1e-12) and np.all(Y <= U + 1e-12)
    ends = np.concatenate([batchnorm_forward(c, g, b, mean, var, 1e-5, training=False) for c in (lo, hi)])
    np.testing.assert_allclose(L[0], ends.min(axis=0), rtol=1e-12)
    np.testing.assert_allclose(U[0], ends.max(axis=0), rtol=1e-12)
