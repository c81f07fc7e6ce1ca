"""A bound method is one ``register`` (plus its slope rule): the registered method runs through
``margin_bounds``, is sound, and becomes a training method with one ``objectives.register``."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkflow.bounds as B
import ntkflow.nets as N
import ntkflow.objectives as O
from ntkflow.nets import inputs as NI
from ntkflow.bounds import engine, linear
from ntkflow.training.fit import fit

pytestmark = pytest.mark.usefixtures("x64")


def _half(l, u, su):
    """Lower slope 1/2 on unstable neurons, exact on stable ones (sound: relu(z) ≥ a·z for every
    z when a ∈ [0, 1])."""
    return jnp.where(l >= 0, 1.0, jnp.where(u <= 0, 0.0, 0.5)).astype(su.dtype)


def _adaptive_copy(l, u, su):
    return (jax.nn.relu(u) + jnp.minimum(l, 0) > 0).astype(su.dtype)


@pytest.fixture
def registered():
    B.register_slope("toy_half", _half)
    B.register_slope("toy_adaptive", _adaptive_copy)
    B.register("toy_crown_half", B.Method("toy_half", "backward"))
    B.register("toy_crown_copy", B.Method("toy_adaptive", "backward"))
    yield
    for k in ("toy_crown_half", "toy_crown_copy"):
        engine.METHODS.pop(k)
    for k in ("toy_half", "toy_adaptive"):
        linear.SLOPES.pop(k)


def _problem(seed=0):
    net = N.mlp((5, 6, 3))
    rng = np.random.default_rng(seed)
    return net, net.init(seed, (5,)), rng.uniform(0, 1, (4, 5)), rng.integers(0, 3, 4)


def test_registered_copy_of_crown_equals_crown(registered):
    net, params, X, y = _problem()
    a = B.margin_bounds(net, params, X, y, 0.1, "crown")
    b = B.margin_bounds(net, params, X, y, 0.1, "toy_crown_copy")
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_registered_method_is_sound_and_uses_its_rule(registered):
    net, params, X, y = _problem(1)
    eps = 0.3
    half = np.asarray(B.margin_bounds(net, params, X, y, eps, "toy_crown_half"))
    assert not np.allclose(half, np.asarray(B.margin_bounds(net, params, X, y, eps, "crown")))
    rng = np.random.default_rng(2)
    for i in range(len(y)):
        lo, hi = (np.asarray(v) for v in NI.input_box(X[i], eps, None))
        corners = np.array(list(itertools.product([0, 1], repeat=5)))
        pts = lo + np.concatenate([rng.uniform(size=(300, 5)), corners]) * (hi - lo)
        worst = np.asarray(B.clean_margins(net, params, pts, np.full(len(pts), y[i]))).min(axis=0)
        assert np.all(half[i] <= worst + 1e-9)


def test_registered_bound_becomes_a_training_method(registered):
    O.register("toy_crown_half", O.certified("toy_crown_half"))
    try:
        net, params, X, y = _problem(3)
        tr = fit(net, params, X, y, 0.05, objective="toy_crown_half", lr=0.05, epochs=2, dtype="float64")
        assert O.own_bound(O.objective("toy_crown_half")) == "toy_crown_half"
        want = B.margin_bounds(net, params, jnp.asarray(X), jnp.asarray(y), 0.05, "toy_crown_half")
        assert tr.series["certified_error"][0] == pytest.approx(float(np.mean(np.min(np.asarray(want), 1) <= 0)))
    finally:
        O.unregister("toy_crown_half")


def test_register_refuses_bad_methods():
    with pytest.raises(ValueError, match="new identifier"):
        B.register("crown", B.Method("adaptive", "backward"))
    with pytest.raises(ValueError, match="slope of"):
        B.register("toy_bad", B.Method("nope", "backward"))
    with pytest.raises(ValueError, match="intermediate"):
        B.register("toy_bad", B.Method("adaptive", "forward"))
    assert "toy_bad" not in B.METHODS
