"""Layer-kind dispatch: an unknown kind raises NotImplementedError naming the rule and the file to extend."""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkflow.nets as N
from ntkflow.bounds.linear import backward
from ntkflow.bounds.ops import interval_step
from ntkflow.nets.gain import expected_difference_gain


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
    with pytest.raises(NotImplementedError, match=r"gain.*'mystery'.*ntkflow/nets/gain.py"):
        expected_difference_gain(net, (2,), "torch")
