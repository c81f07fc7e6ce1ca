"""Backward intermediate bounds for a batch (bounds/sparse.py): only IBP-unstable neurons, chunked.

Equal (float64) to the per-sample dense definition ``preactivation_bounds(..., "backward")``
for every chunk size and with the first-layer matrix gathered or not; sound at random points
and corners; never looser than IBP; its gradient equal to the dense path's.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkflow.bounds as B
import ntkflow.nets as N
from ntkflow.nets import inputs as NI
from ntkflow._core.errors import NtkflowError
from ntkflow.bounds.engine import _over_samples
from ntkflow.bounds.ibp import ibp_intervals
from ntkflow.bounds.sparse import backward_intervals

pytestmark = pytest.mark.usefixtures("x64")

NET = N.conv_net([(3, 3, 1, 0), (4, 2, 2, 1)], [6], 3, (1, 6, 6))
SHAPE = (1, 6, 6)


def _problem(seed, n=3, eps=0.2):
    rng = np.random.default_rng(seed)
    params = NET.init(seed, SHAPE)
    X = rng.uniform(0, 1, (n, *SHAPE))
    lo, hi = jnp.asarray(np.maximum(X - eps, 0)), jnp.asarray(np.minimum(X + eps, 1))
    return params, X, rng.integers(0, 3, n), lo, hi


@jax.jit
def _dense(params, lo, hi):
    return jax.vmap(lambda a, b: B.preactivation_bounds(NET, params, a, b, "backward", "adaptive"))(lo, hi)


@pytest.mark.parametrize("chunk, budget", [(None, 1 << 25), (1, 1 << 25), (7, 1 << 25), (10_000, 1 << 25),
                                           (5, 50)])  # budget 50: no gathered first-layer matrix
def test_chunked_bounds_equal_the_dense_per_sample_definition(chunk, budget):
    params, X, y, lo, hi = _problem(0)
    got = jax.jit(lambda p, a, b: backward_intervals(NET, p, a, b, "adaptive", budget, chunk))(params, lo, hi)
    want = _dense(params, lo, hi)
    assert sorted(got) == sorted(want) and len(got) == 3
    for i in want:
        for g, w in zip(got[i], want[i]):
            np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12)


def test_bounds_are_sound_and_never_looser_than_ibp():
    params, X, y, lo, hi = _problem(1, n=2, eps=0.3)
    got = jax.jit(lambda p, a, b: backward_intervals(NET, p, a, b, "adaptive", 1 << 25, 4))(params, lo, hi)
    rng = np.random.default_rng(1)
    tighter = 0
    for s in range(2):
        ivals = jax.jit(lambda p, a, b: ibp_intervals(NET, p, a, b))(params, lo[s], hi[s])
        d = lo[s].size
        pts = np.concatenate([rng.uniform(size=(300, d)), rng.integers(0, 2, (64, d))])
        P = np.asarray(lo[s]).reshape(1, -1) + pts * np.asarray(hi[s] - lo[s]).reshape(1, -1)
        nodes = jax.jit(jax.vmap(lambda x: _nodes(params, x.reshape(SHAPE))))(jnp.asarray(P))
        for i, (l, u) in got.items():
            assert np.all(np.asarray(l[s]) <= np.asarray(nodes[i]).min(axis=0) + 1e-10)
            assert np.all(np.asarray(u[s]) >= np.asarray(nodes[i]).max(axis=0) - 1e-10)
            li, ui = ivals[i]
            assert np.all(l[s] >= li - 1e-12) and np.all(u[s] <= ui + 1e-12)
            tighter += int(np.sum(np.asarray(u[s] - l[s]) < np.asarray(ui - li) - 1e-9))
    assert tighter > 0  # the backward pass does tighten some neurons here


def _nodes(params, x):
    out = [x]
    for layer, p in zip(NET.layers, params):
        if layer.kind == "affine":
            x = layer.linear(layer.weight(p), x) + layer.bias_full(p, None)
        elif layer.kind == "relu":
            x = jax.nn.relu(x)
        else:
            x = x.reshape(-1)
        out.append(x)
    return out


@pytest.mark.parametrize("method", ["crown", "cap", "crown_zero"])
def test_margins_equal_the_per_sample_path_are_sound_and_differentiable(method):
    params, X, y, lo, hi = _problem(2)
    pb = NI.problem(NET, params, X, y, 0.2, (0.0, 1.0))
    # value and gradient in one jitted call per path: op-by-op dispatch of the dense CROWN
    # pass (and a second trace for its gradient) was most of this test's time.
    sparse = jax.jit(_value_and_grad(lambda p: B.margin_bounds(
        NET, p, X, y, 0.2, method, clip=(0.0, 1.0), memory_budget=3000)))
    dense = jax.jit(_value_and_grad(lambda p: _over_samples(NET, p, pb.C, pb.lo, pb.hi, method, None, 3)))
    (got, g), (want, gw) = sparse(params), dense(params)  # dense: per sample, the definition
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-11)
    rng = np.random.default_rng(2)
    for s in range(3):
        lo_s, hi_s = np.asarray(pb.lo[s]).reshape(1, -1), np.asarray(pb.hi[s]).reshape(1, -1)
        P = lo_s + rng.uniform(size=(300, 36)) * (hi_s - lo_s)
        f = np.asarray(NET.apply(params, P.reshape(-1, *SHAPE)))
        assert np.all(np.asarray(got[s]) <= (f[:, [y[s]]] - np.delete(f, y[s], axis=1)).min(axis=0) + 1e-10)
    for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(gw)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


def _value_and_grad(margins):
    """``params -> (margins, d sum(margins) / d params)``."""
    def f(p):
        m, vjp = jax.vjp(margins, p)
        return m, vjp(jnp.ones_like(m))[0]
    return f


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "1e6"])
def test_memory_budget_must_be_a_positive_integer(bad):
    params, X, y, lo, hi = _problem(0, n=1)
    with pytest.raises(NtkflowError, match="memory_budget"):
        B.margin_bounds(NET, params, X, y, 0.1, "crown", memory_budget=bad)
