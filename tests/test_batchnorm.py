"""BatchNorm: the layer-kind dispatch (an unknown kind raises NotImplementedError naming the rule and
the file to extend); the float64 BN reference itself; eval- and train-mode BN in the forward pass, the
interval and backward rules, the bounds (sound at random points and corners), gradients through the
batch statistics, PyTorch's running-statistics update, CNN7 with BN, and the npz interchange."""

import json
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkflow as nf
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


# ---------------------------------------------------------------- the engine's BatchNorm against the reference
import itertools  # noqa: E402

from hypothesis import given, strategies as st  # noqa: E402

from net_reference import conv2d, spec_rows, torch_forward, write_torch_npz  # noqa: E402
from ntkflow.bounds import margin_bounds  # noqa: E402
from ntkflow.bounds.ops import batchnorm_back  # noqa: E402


def _bn_params(rng, C, affine=True, tracked=3.0, zero=True):
    """Random BN params with γ of both signs (and γ_0 = 0 if ``zero``) and running statistics away from 0 / 1."""
    p = {"running_mean": rng.normal(size=C), "running_var": rng.uniform(0.2, 3.0, C),
         "num_batches_tracked": np.float64(tracked)}
    if affine:
        g = rng.normal(size=C) * 1.5
        g[0] = 0.0 if zero else g[0]
        p.update(weight=g, bias=rng.normal(size=C))
    return {k: jnp.asarray(v, jnp.float64) for k, v in p.items()}


@pytest.mark.parametrize("layer, shape", [(N.BatchNorm2d(3, eps=1e-3), (3, 4, 2)), (N.BatchNorm1d(5), (5,)),
                                          (N.BatchNorm1d(2, affine=False), (2, 3))])
def test_eval_mode_forward_and_interval_equal_the_float64_reference(x64, layer, shape):
    rng = np.random.default_rng(2)
    p = _bn_params(rng, shape[0], layer.affine)
    g, b = (np.asarray(p["weight"]), np.asarray(p["bias"])) if layer.affine else (None, None)
    rm, rv = np.asarray(p["running_mean"]), np.asarray(p["running_var"])
    X = rng.normal(size=(4, *shape))
    want = batchnorm_forward(X, g, b, rm, rv, layer.eps, training=False)
    got = np.stack([np.asarray(N.base.apply_layer(layer, p, jnp.asarray(x))) for x in X])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    lo = rng.normal(size=shape)
    hi = lo + rng.uniform(0, 2, shape)
    s, t = batchnorm_scale_shift(rm, rv, g, b, layer.eps)
    L, U = batchnorm_interval(lo[None], hi[None], s, t)
    l2, u2 = interval_step(layer, p, jnp.asarray(lo), jnp.asarray(hi))
    np.testing.assert_allclose(np.asarray(l2), L[0], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(np.asarray(u2), U[0], rtol=1e-13, atol=1e-13)


@given(st.integers(0, 2**31 - 1))
def test_interval_and_backward_rules_are_sound_and_exact(seed):
    """BN is a per-coordinate affine map: its interval is attained at the box's ends, and the
    backward rule rewrites A·y as A·diag(s)·x + A·t exactly."""
    rng = np.random.default_rng(seed)
    layer = N.BatchNorm2d(2, eps=rng.uniform(1e-6, 1e-1))
    with jax.enable_x64(True):
        p = _bn_params(rng, 2)
        lo = rng.normal(size=(2, 2, 2))
        hi = lo + rng.uniform(0, 1, lo.shape) * rng.integers(0, 2, lo.shape)  # some zero widths
        l, u = (np.asarray(v) for v in interval_step(layer, p, jnp.asarray(lo), jnp.asarray(hi)))
        pts = lo + rng.uniform(0, 1, (50, *lo.shape)) * (hi - lo)
        Y = np.stack([np.asarray(layer.apply(p, jnp.asarray(x))) for x in np.concatenate([pts, [lo, hi]])])
        assert np.all(Y >= l - 1e-12) and np.all(Y <= u + 1e-12)
        np.testing.assert_allclose(np.minimum(Y[-1], Y[-2]), l, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.maximum(Y[-1], Y[-2]), u, rtol=1e-12, atol=1e-12)
        A = rng.normal(size=(3, 2, 2, 2))
        A0, c = (np.asarray(v) for v in batchnorm_back(layer, p, jnp.asarray(A)))
        for x, y_ in zip(pts[:5], Y[:5]):
            np.testing.assert_allclose(A0.reshape(3, -1) @ x.reshape(-1) + c, A.reshape(3, -1) @ y_.reshape(-1),
                                       rtol=1e-11, atol=1e-11)


def _tiny_bn_net():
    """Conv → BN2d → ReLU → Flatten → Dense → BN1d → ReLU → Dense on (1, 3, 3) inputs (512 corners)."""
    return N.Net([N.Conv2d(2, 2, 1, 0), N.BatchNorm2d(2), N.ReLU(), N.Flatten(), N.Dense(4), N.BatchNorm1d(4),
                  N.ReLU(), N.Dense(3)], input_shape=(1, 3, 3))


def _random_bn(net, params, seed, zero=True):
    rng = np.random.default_rng(seed)
    return tuple(_bn_params(rng, layer.num_features, zero=zero) if layer.kind == "batchnorm" else p
                 for layer, p in zip(net.layers, params))


@pytest.mark.parametrize("method", ["ibp", "crown_ibp", "crown", "cap"])
def test_bounds_through_batchnorm_are_sound_at_random_points_and_corners(x64, method):
    net = _tiny_bn_net()
    params = _random_bn(net, net.init(1, dtype=jnp.float64), 5)
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 1, (3, 1, 3, 3))
    y = np.array([0, 1, 2])
    eps = 0.15
    # eval mode (the random running statistics) and train mode (the statistics of the clean batch X)
    for p in (params, N.with_batch_stats(net, params, X)):
        lb = np.asarray(margin_bounds(net, p, X, y, eps, method))
        for i in range(3):
            corners = np.array(list(itertools.product([-eps, eps], repeat=9))).reshape(-1, 1, 3, 3)
            pts = np.concatenate([X[i] + corners, X[i] + rng.uniform(-eps, eps, (200, 1, 3, 3))])
            f = np.asarray(net.apply(p, pts))
            margins = f @ spec_rows(y[i], 3).T
            assert np.all(margins.min(axis=0) >= lb[i] - 1e-10), (method, i)


def test_crown_through_a_linear_bn_net_is_the_exact_minimum(x64):
    """No ReLU: the backward pass (Dense, BN1d, Dense) is exact, so its bound is the minimum over the
    box's corners; IBP is looser or equal."""
    net = N.Net([N.Dense(4), N.BatchNorm1d(4), N.Dense(3)], input_shape=(5,))
    params = _random_bn(net, net.init(2, dtype=jnp.float64), 7)
    X = np.random.default_rng(4).uniform(0, 1, (2, 5))
    y = np.array([2, 0])
    corners = np.array(list(itertools.product([-0.2, 0.2], repeat=5)))
    crown = np.asarray(margin_bounds(net, params, X, y, 0.2, "crown"))
    ibp = np.asarray(margin_bounds(net, params, X, y, 0.2, "ibp"))
    for i in range(2):
        exact = (np.asarray(net.apply(params, X[i] + corners)) @ spec_rows(y[i], 3).T).min(axis=0)
        np.testing.assert_allclose(crown[i], exact, rtol=1e-11, atol=1e-11)
        assert np.all(ibp[i] <= exact + 1e-11)


def _numpy_train_forward(net, params, X, stop=None):
    """PyTorch's model.train() forward in numpy: the input of layer ``stop`` (default: the logits)
    and each BN's (mean, biased variance)."""
    P = [{k: np.asarray(v) for k, v in p.items()} for p in params]
    x = np.asarray(X, np.float64)
    stats = {}
    for i, layer in enumerate(net.layers[:stop]):
        if layer.kind == "affine" and isinstance(layer, N.Conv2d):
            x = np.stack([conv2d(v, P[i]["weight"], P[i]["bias"], layer.stride, layer.padding) for v in x])
        elif layer.kind == "affine":
            x = x @ P[i]["weight"].T + P[i]["bias"]
        elif layer.kind == "batchnorm":
            mean, var, _ = batchnorm_batch_stats(x)
            stats[i] = (mean, var)
            x = batchnorm_forward(x, P[i]["weight"], P[i]["bias"], None, None, layer.eps, training=True)
        elif layer.kind == "relu":
            x = np.maximum(x, 0)
        else:
            x = x.reshape(len(x), -1)
    return x, stats


def test_train_mode_statistics_are_the_batch_mean_and_biased_variance(x64):
    net = _tiny_bn_net()
    params = _random_bn(net, net.init(3, dtype=jnp.float64), 8)
    X = np.random.default_rng(5).uniform(0, 1, (6, 1, 3, 3))
    logits, stats = _numpy_train_forward(net, params, X)
    pt = N.with_batch_stats(net, params, X)
    for i, (mean, var) in stats.items():
        np.testing.assert_allclose(pt[i]["running_mean"], mean, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(pt[i]["running_var"], var, rtol=1e-12, atol=1e-14)
        for k in ("weight", "bias", "num_batches_tracked"):
            np.testing.assert_array_equal(pt[i][k], params[i][k])
    np.testing.assert_allclose(net.apply(pt, X), logits, rtol=1e-11, atol=1e-12)
    plain = N.mlp((3, 2), input_shape=(4,))
    p0 = plain.init(0)
    assert N.with_batch_stats(plain, p0, np.ones((2, 4))) is p0 and not N.has_batchnorm(plain)
    with pytest.raises(ValueError, match="more than one value per channel"):
        N.with_batch_stats(N.Net([N.Dense(3), N.BatchNorm1d(3), N.Dense(2)], input_shape=(4,)),
                           N.Net([N.Dense(3), N.BatchNorm1d(3), N.Dense(2)]).init(0, (4,)), np.ones((1, 4)))


def test_gradients_through_the_batch_statistics_equal_finite_differences(x64):
    net = _tiny_bn_net()
    params = _random_bn(net, net.init(4, dtype=jnp.float64), 9, zero=False)  # γ = 0 is a kink of the interval
    rng = np.random.default_rng(6)
    X = jnp.asarray(rng.uniform(0, 1, (5, 1, 3, 3)))
    R = jnp.asarray(rng.normal(size=(5, 3)))

    def loss(p):
        pt = N.with_batch_stats(net, p, X)
        return jnp.sum(net.apply(pt, X) * R) + jnp.sum(margin_bounds(net, pt, X, np.arange(5) % 3, 0.05, "ibp"))

    g = jax.grad(loss)(params)
    loss = jax.jit(loss)
    for i, k in [(0, "weight"), (0, "bias"), (1, "weight"), (4, "weight"), (5, "bias")]:
        flat = np.asarray(params[i][k]).reshape(-1)
        for j in rng.choice(flat.size, min(3, flat.size), replace=False):
            def at(h):
                v = flat.copy()
                v[j] += h
                return float(loss(tuple({**p, k: jnp.asarray(v.reshape(np.shape(p[k])))} if q == i else p
                                        for q, p in enumerate(params))))
            fd = (at(1e-6) - at(-1e-6)) / 2e-6
            np.testing.assert_allclose(np.asarray(g[i][k]).reshape(-1)[j], fd, rtol=1e-5, atol=1e-6)
    for i in (1, 5):  # the buffers are replaced by the batch's statistics: no gradient reaches them
        for k in ("running_mean", "running_var", "num_batches_tracked"):
            np.testing.assert_array_equal(g[i][k], 0)
    # the conv's bias shifts every value of a channel, which BN's batch mean removes: no gradient
    np.testing.assert_allclose(g[0]["bias"], 0, atol=1e-9)


@pytest.mark.parametrize("momentum", [0.1, 0.37, None])
def test_update_running_stats_is_pytorchs_update(x64, momentum):
    net = N.Net([N.Conv2d(2, 2, 1, 0), N.BatchNorm2d(2, momentum=momentum), N.ReLU(), N.Flatten(), N.Dense(3),
                 N.BatchNorm1d(3, momentum=momentum), N.ReLU(), N.Dense(2)], input_shape=(1, 3, 3))
    params = _random_bn(net, net.init(5, dtype=jnp.float64), 10)
    rng = np.random.default_rng(7)
    X1, X2 = rng.uniform(0, 1, (4, 1, 3, 3)), rng.uniform(0, 1, (6, 1, 3, 3))
    into = tuple({k: v + 1.0 for k, v in p.items()} for p in params)  # "after the optimizer step"
    p1 = N.update_running_stats(net, params, X1, into=into)
    p2 = N.update_running_stats(net, p1, X2)
    for i in (1, 5):
        # pre-BN activations of the batch under the forward's weights (the BN below in train mode)
        pre1 = _numpy_train_forward(net, params, X1, stop=i)[0]
        pre2 = _numpy_train_forward(net, p1, X2, stop=i)[0]
        rm, rv, n = batchnorm_running_update(pre1, params[i]["running_mean"], params[i]["running_var"],
                                             params[i]["num_batches_tracked"], momentum)
        np.testing.assert_allclose(p1[i]["running_mean"], rm, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(p1[i]["running_var"], rv, rtol=1e-12, atol=1e-14)
        assert float(p1[i]["num_batches_tracked"]) == n == 4
        for k in ("weight", "bias"):  # the rest is `into`'s
            np.testing.assert_array_equal(p1[i][k], into[i][k])
        rm, rv, n = batchnorm_running_update(pre2, rm, rv, n, momentum)
        np.testing.assert_allclose(p2[i]["running_mean"], rm, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(p2[i]["running_var"], rv, rtol=1e-12, atol=1e-14)
        assert float(p2[i]["num_batches_tracked"]) == n == 5
    np.testing.assert_array_equal(p1[0]["weight"], into[0]["weight"])



# ---------------------------------------------------------------- CNN7 with BN (Shi et al. 2021)
def test_cnn7_bn_is_shi_et_al_layout_and_ibp_init_draws_the_same_weights(x64):
    bn, plain = N.cnn7((3, 8, 8), classes=3, width=4, linear=8, bn=True), N.cnn7((3, 8, 8), classes=3, width=4,
                                                                                    linear=8)
    kinds = "".join({"affine": "A", "batchnorm": "B", "relu": "R", "reshape": "F"}[layer.kind] for layer in bn.layers)
    assert kinds == "ABR" * 5 + "FABRA" and not N.has_batchnorm(plain)
    assert [type(layer).__name__ for layer in bn.layers if layer.kind == "batchnorm"] == ["BatchNorm2d"] * 5 + [
        "BatchNorm1d"]
    assert [layer.num_features for layer in bn.layers if layer.kind == "batchnorm"] == [4, 4, 8, 8, 8, 8]
    assert bn.shapes((3, 8, 8))[-5] == (8 * 4 * 4,)  # the stride-2 conv halves 8×8: (in_dim/2)²·2w features
    pb, pp = bn.init(0, init="ibp"), plain.init(0, init="ibp")
    affine = [p for layer, p in zip(bn.layers, pb) if layer.kind == "affine"]
    for a, b in zip(affine, [p for layer, p in zip(plain.layers, pp) if layer.kind == "affine"]):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])  # BN is outside the draw: the IBP init is the no-BN net's
    for layer, p in zip(bn.layers, pb):
        if layer.kind == "batchnorm":
            np.testing.assert_array_equal(p["weight"], 1)
            np.testing.assert_array_equal(p["bias"], 0)
            np.testing.assert_array_equal(p["running_mean"], 0)
            np.testing.assert_array_equal(p["running_var"], 1)
    from ntkflow.analysis.gain import expected_difference_gain

    # at init BN (eval) multiplies each width by 1/√(1 + ε): one such factor per gain ratio
    np.testing.assert_allclose(expected_difference_gain(bn, (3, 8, 8), "ibp"),
                               expected_difference_gain(plain, (3, 8, 8), "ibp") / np.sqrt(1 + 1e-5), rtol=1e-12)
    with pytest.raises(ValueError, match="bn"):
        N.cnn7(bn="yes")


def test_cnn7_bn_applies_and_its_ibp_bounds_are_sound(x64):
    net = N.cnn7((3, 8, 8), classes=3, width=4, linear=8, bn=True)
    rng = np.random.default_rng(11)
    X = rng.uniform(0, 1, (3, 3, 8, 8))
    y = np.array([0, 1, 2])
    params = N.update_running_stats(net, net.init(1, init="ibp"), rng.uniform(0, 1, (8, 3, 8, 8)))
    eps = 0.002
    for p in (params, N.with_batch_stats(net, params, X)):  # eval mode, train mode
        ibp = np.asarray(margin_bounds(net, p, X, y, eps, "ibp"))
        assert np.all(np.isfinite(ibp))
        for i in range(3):
            signs = rng.choice([-eps, eps], (30, 3, 8, 8))  # random corners of the box and random interior points
            pts = np.concatenate([X[i] + signs, X[i] + rng.uniform(-eps, eps, (30, 3, 8, 8)), X[i:i + 1]])
            m = np.asarray(net.apply(p, pts)) @ spec_rows(y[i], 3).T
            assert np.all(m.min(axis=0) >= ibp[i] - 1e-10)


# ---------------------------------------------------------------- npz interchange
BN_MODULES = [
    ("0", "Conv2d", dict(in_channels=2, out_channels=3, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1),
                         dilation=(1, 1), groups=1, padding_mode="zeros", bias=True)),
    ("1", "BatchNorm2d", dict(num_features=3, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True)),
    ("2", "ReLU", dict(inplace=False)),
    ("3", "Flatten", dict(start_dim=1, end_dim=-1)),
    ("4", "Linear", dict(in_features=48, out_features=5, bias=True)),
    ("5", "BatchNorm1d", dict(num_features=5, eps=1e-3, momentum=None, affine=False, track_running_stats=True)),
    ("6", "ReLU", dict(inplace=False)),
    ("7", "Linear", dict(in_features=5, out_features=3, bias=True)),
]


def _bn_arrays(seed=0):
    rng = np.random.default_rng(seed)
    shapes = {"0.weight": (3, 2, 3, 3), "0.bias": (3,), "1.weight": (3,), "1.bias": (3,), "1.running_mean": (3,),
              "1.running_var": (3,), "4.weight": (5, 48), "4.bias": (5,), "5.running_mean": (5,),
              "5.running_var": (5,), "7.weight": (3, 5), "7.bias": (3,)}
    out = {k: rng.normal(size=s) for k, s in shapes.items()}
    for k in ("1.running_var", "5.running_var"):
        out[k] = rng.uniform(0.3, 2.0, shapes[k])
    out.update({"1.num_batches_tracked": 7, "5.num_batches_tracked": 7})
    return out


def test_npz_with_batchnorm_gives_pytorch_eval_logits_and_round_trips(tmp_path):
    arrays = _bn_arrays()
    arch = write_torch_npz(tmp_path / "bn.npz", BN_MODULES, arrays, (2, 4, 4))
    with jax.enable_x64(True):
        net, params = N.load_torch(tmp_path / "bn.npz")
        assert [type(layer).__name__ for layer in net.layers if layer.kind == "batchnorm"] == ["BatchNorm2d",
                                                                                                "BatchNorm1d"]
        bn1 = net.layers[5]
        assert (bn1.eps, bn1.momentum, bn1.affine) == (1e-3, None, False) and "weight" not in params[5]
        assert float(params[1]["num_batches_tracked"]) == 7
        X = np.random.default_rng(1).uniform(0, 1, (3, 2, 4, 4))
        f32 = {k: np.asarray(v, np.float32) for k, v in arrays.items()}  # what the file holds (float32: 1e-5)
        np.testing.assert_allclose(net.apply(params, X), torch_forward(arch, f32, X), rtol=1e-5, atol=1e-5)
        N.save_torch(tmp_path / "again.npz", net, params)
        with np.load(tmp_path / "again.npz", allow_pickle=False) as z:
            assert z["1.num_batches_tracked"].dtype == np.int64 and int(z["1.num_batches_tracked"]) == 7
            again = json.loads(str(z["__arch__"]))
        assert again[1] == {"name": "1", "type": "BatchNorm2d", **BN_MODULES[1][2]}
        assert again[5] == {"name": "5", "type": "BatchNorm1d", **BN_MODULES[5][2]}
        net2, params2 = N.load_torch(tmp_path / "again.npz")
        assert net2.layers == net.layers
        for a, b in zip(params, params2):
            assert a.keys() == b.keys()
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("change, match", [
    (lambda a: a[1][2].__setitem__("track_running_stats", False), "track_running_stats"),
    (lambda a: a[1][2].__setitem__("num_features", 4), "4 channels|expected"),
    (lambda a: a[5][2].__setitem__("momentum", 2.0), "momentum"),
])
def test_unsupported_batchnorm_files_are_one_line_errors(tmp_path, change, match):
    arch = [(n, t, dict(f)) for n, t, f in BN_MODULES]
    change(arch)
    write_torch_npz(tmp_path / "m.npz", arch, _bn_arrays(), (2, 4, 4))
    with pytest.raises(ValueError, match=match) as e:
        N.load_torch(tmp_path / "m.npz")
    assert "\n" not in str(e.value)
    arrays = {k: v for k, v in _bn_arrays().items() if k != "1.running_var"}
    write_torch_npz(tmp_path / "r.npz", BN_MODULES, arrays, (2, 4, 4))
    with pytest.raises(ValueError, match="missing.*1.running_var"):
        N.load_torch(tmp_path / "r.npz")


def test_training_objectives_step_in_train_mode(x64):
    """The step's loss is the loss of the train-mode params (the clean batch's statistics), its
    gradient that loss's gradient through the statistics; the judged loss stays in eval mode."""
    from ntkflow.objectives import Context
    from ntkflow.objectives.methods import Certified, Standard, bound_loss, clean_loss, train_mode

    net = _tiny_bn_net()
    params = _random_bn(net, net.init(6, dtype=jnp.float64), 12, zero=False)
    rng = np.random.default_rng(13)
    X, y = jnp.asarray(rng.uniform(0, 1, (4, 1, 3, 3))), jnp.asarray([0, 1, 2, 0])
    ctx = Context(*(jnp.asarray(v, jnp.float64) for v in (0.05, 0.0, 0.0)), jax.random.PRNGKey(0),
                  jnp.asarray(0.0), jnp.asarray(0.0))
    for obj, plain in [(Certified("ibp"), lambda p: bound_loss(net, p, X, y, 0.05, "ibp"))]:
        step = obj.step(net, params, (), X, y, ctx)
        want, grads = jax.value_and_grad(lambda p: plain(N.with_batch_stats(net, p, X)))(params)
        np.testing.assert_allclose(step.loss, want, rtol=1e-12)
        for a, b in zip(jax.tree_util.tree_leaves(step.grads), jax.tree_util.tree_leaves(grads)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        assert abs(float(obj.judged_loss(net, params, X, y, ctx)) - float(plain(params))) < 1e-12
        assert abs(float(plain(params)) - float(want)) > 1e-6  # the two modes differ here
    plain_net = N.mlp((3, 2), input_shape=(4,))  # no BN: the step's params are the params
    p0 = plain_net.init(0)
    assert train_mode(plain_net, p0, jnp.ones((2, 4))) is p0
    assert float(Standard().step(net, params, (), X, y, ctx).loss) == pytest.approx(
        float(clean_loss(net, N.with_batch_stats(net, params, X), X, y)), rel=1e-12)


def test_margin_gram_of_a_bn_net_is_over_the_trainable_params_only(x64):
    """The running statistics are params but not trainable: the Gram is J Jᵀ over weights and biases
    (γ, β included), not over the buffers (whose Jacobian is not zero in eval mode)."""
    from ntkflow.kernels import margin_gram

    net = _tiny_bn_net()
    params = _random_bn(net, net.init(7, dtype=jnp.float64), 14, zero=False)
    X, y = np.random.default_rng(15).uniform(0, 1, (3, 1, 3, 3)), np.array([0, 1, 2])
    lo, hi = jnp.asarray(X - 0.05), jnp.asarray(X + 0.05)
    C = jnp.asarray(np.stack([spec_rows(k, 3) for k in y]))
    keys = [(i, k) for i, p in enumerate(params) for k in sorted(p) if k not in N.layers.BUFFERS]

    def bounds(vals):
        p = tuple({**q, **{k: v for (j, k), v in zip(keys, vals) if j == i}} for i, q in enumerate(params))
        return jax.vmap(lambda c, l, h: nf.bounds.engine.sample_bounds(net, p, c, l, h, "ibp"))(C, lo, hi)

    Js = jax.jit(jax.jacrev(bounds))(tuple(params[i][k] for i, k in keys))
    J = jnp.concatenate([j.reshape(6, -1) for j in Js], axis=1)
    np.testing.assert_allclose(margin_gram(net, params, X, y, 0.05, "ibp"), J @ J.T, rtol=1e-10, atol=1e-12)
    def by_mean(rm):
        p = tuple({**q, "running_mean": rm} if i == 1 else q for i, q in enumerate(params))
        return jax.vmap(lambda c, l, h: nf.bounds.engine.sample_bounds(net, p, c, l, h, "ibp"))(C, lo, hi)

    assert np.abs(np.asarray(jax.jit(jax.jacrev(by_mean))(params[1]["running_mean"]))).max() > 1e-3  # what is left out


def test_fit_updates_the_running_statistics_like_pytorch_after_each_step(x64):
    """One full-batch SGD step through ``training.fit``: the running statistics are PyTorch's update
    from the pre-step weights' forward of the batch (``update_running_stats``, itself checked against
    PyTorch's formula above), the weights the optimizer's; a net without BN is unchanged by the rule."""
    from ntkflow.training.fit import fit

    net = _tiny_bn_net()
    params = _random_bn(net, net.init(6, dtype=jnp.float64), 12, zero=False)
    rng = np.random.default_rng(14)
    X, y = jnp.asarray(rng.uniform(0, 1, (4, 1, 3, 3))), jnp.asarray([0, 1, 2, 0])
    tr = fit(net, params, X, y, 0.05, objective="ibp", optimizer="gd", lr=0.1, epochs=1, metrics=())
    want = N.update_running_stats(net, params, X)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        got = [np.asarray(p[name]) for p in tr.params if isinstance(p, dict) and name in p]
        ref = [np.asarray(p[name]) for p in want if isinstance(p, dict) and name in p]
        assert got and len(got) == len(ref)
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g, r, rtol=1e-12)
    before = [np.asarray(p["running_mean"]) for p in params if isinstance(p, dict) and "running_mean" in p]
    assert any(np.abs(g - b).max() > 1e-6 for g, b in zip(
        [np.asarray(p["running_mean"]) for p in tr.params if isinstance(p, dict) and "running_mean" in p], before))
