"""ntkflow.bounds: soundness of every method, exact forms on the two-layer net, references."""

import itertools

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy.optimize import linprog

import ntkflow as nf
import ntkflow.bounds as B
import ntkflow.nets as N
from conftest import make_problem
from net_reference import ibp_margin, spec_rows, write_torch_npz
from ntkflow.nets import inputs as NI
from ntkflow.bounds.engine import bounds_batched

METHODS = list(B.METHODS)
NETS = {
    "mlp": (N.mlp((6, 5, 3)), (3,)),
    "cnn": (N.conv_net([(2, 2, 1, 0)], [4], 3, (1, 4, 4)), (1, 4, 4)),
}


pytestmark = pytest.mark.usefixtures("x64")


def box_points(lo, hi, rng, k=200):
    """k uniform points and up to 64 corners of the box [lo, hi] (all corners when there are fewer)."""
    d = lo.size
    bits = (np.array(list(itertools.product([0, 1], repeat=d))) if d <= 6 else rng.integers(0, 2, (64, d)))
    pts = np.concatenate([rng.uniform(size=(k, d)), bits])
    return lo.reshape(1, -1) + pts * (hi - lo).reshape(1, -1)


# ----------------------------------------------------------------------------- soundness
def all_bounds(net, clip):
    """Every method (and a β mix) in one compiled call: one compile instead of eight."""
    def f(params, X, y, eps):
        out = {m: B.margin_bounds(net, params, X, y, eps, m, clip=clip) for m in METHODS}
        out["beta"] = B.margin_bounds(net, params, X, y, eps, "crown_ibp", clip=clip, beta=0.4)
        return out
    return jax.jit(f)


SOUNDNESS = {"mlp": all_bounds(NETS["mlp"][0], None), "cnn": all_bounds(NETS["cnn"][0], (0.0, 1.0))}


@pytest.mark.parametrize("name", NETS)
@given(seed=st.integers(0, 10_000), eps=st.floats(0.01, 0.4))
def test_every_method_is_below_the_margin_at_points_and_corners(name, seed, eps):
    """The MLP on the plain ball, the CNN on the ball ∩ [0, 1]."""
    net, shape = NETS[name]
    box = (0.0, 1.0) if name == "cnn" else None
    rng = np.random.default_rng(seed)
    params = net.init(seed, shape)
    X, y = rng.uniform(0, 1, (2, *shape)), rng.integers(0, 3, 2)
    bounds = {m: np.asarray(b) for m, b in SOUNDNESS[name](params, X, y, eps).items()}
    for i in range(2):
        lo, hi = np.asarray(NI.input_box(X[i], eps, box))
        pts = box_points(lo, hi, rng).reshape(-1, *shape)
        worst = np.asarray(B.clean_margins(net, params, pts, np.full(len(pts), y[i]))).min(axis=0)
        for m, b in bounds.items():
            assert np.all(b[i] <= worst + 1e-9), (m, b[i], worst)


# ----------------------------------------------------------------------------- two-layer net
def test_generic_ibp_walk_equals_ibp_lower_margin_and_dispatch():
    W, a, X, y = make_problem(n=9, m=50, d=7)
    net, params = N.two_layer(W, a)
    for eps in (0.0, 0.03, 0.3):
        want = nf.ibp_lower_margin(W, a, X, y, eps)
        pb = NI.problem(net, params, X, y, eps)
        generic = bounds_batched(net, params, pb.C, pb.lo, pb.hi, "ibp", None, len(X))[:, 0]
        np.testing.assert_allclose(generic, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(B.margin_bounds(net, params, X, y, eps), want)


def closed_form(W, a, x, yi, eps, rule):
    """Hand-derived linear-relaxation bound for f = m^-1/2 Σ a_r relu(w_rᵀx), one sample.

    With c_r = y a_r/√m and z_r ∈ [l_r, u_r] = w_rᵀx ∓ ε‖w_r‖₁ (exact), each c_r relu(z_r) is
    bounded below by the lower line (c_r > 0) or the upper line (c_r < 0); the sum is
    gᵀx' + const with g = Σ coef_r w_r, whose minimum over the ball is gᵀx − ε‖g‖₁ + const.
    """
    m = len(a)
    g, const = np.zeros(W.shape[1]), 0.0
    for r in range(m):
        z, rad = W[r] @ x, eps * np.abs(W[r]).sum()
        l, u = z - rad, z + rad
        up, lm = max(u, 0.0), min(l, 0.0)
        su = up / (up - lm) if up - lm > 0 else 0.0
        lower = {"adaptive": float(up + lm > 0), "cap": su, "zero": float(l >= 0)}[rule]
        c = yi * a[r] / np.sqrt(m)
        if c > 0:
            g += c * lower * W[r]
        else:
            g += c * su * W[r]
            const += c * su * (-lm)
    return g @ x - eps * np.abs(g).sum() + const


@pytest.mark.parametrize("method, rule", [("crown", "adaptive"), ("crown_ibp", "adaptive"), ("cap", "cap"),
                                          ("cap_ibp", "cap"), ("crown_zero", "zero"), ("crown_ibp_zero", "zero")])
def test_linear_relaxations_on_the_two_layer_net_match_closed_forms(method, rule):
    W, a, X, y = make_problem(n=6, m=30, d=5)
    net, params = N.two_layer(W, a)
    eps = 0.08  # leaves a mix of stable and unstable neurons
    got = np.asarray(B.margin_bounds(net, params, X, y, eps, method))
    want = [closed_form(W, a, X[i], y[i], eps, rule) for i in range(len(y))]
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12)


# ----------------------------------------------------------------------------- deep references
DEEP = [("0", "Conv2d", dict(in_channels=1, out_channels=3, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1),
                             dilation=(1, 1), groups=1, padding_mode="zeros", bias=True)),
        ("1", "ReLU", {}),
        ("2", "Conv2d", dict(in_channels=3, out_channels=4, kernel_size=(2, 2), stride=(1, 1), padding=(0, 0),
                             dilation=(1, 1), groups=1, padding_mode="zeros", bias=True)),
        ("3", "ReLU", {}), ("4", "Flatten", dict(start_dim=1, end_dim=-1)),
        ("5", "Linear", dict(in_features=16, out_features=6, bias=True)), ("6", "ReLU", {}),
        ("7", "Linear", dict(in_features=6, out_features=4, bias=True))]
DEEP_SHAPES = {"0.weight": (3, 1, 3, 3), "0.bias": (3,), "2.weight": (4, 3, 2, 2), "2.bias": (4,),
               "5.weight": (6, 16), "5.bias": (6,), "7.weight": (4, 6), "7.bias": (4,)}


def test_deep_ibp_matches_numpy_interval_arithmetic(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {k: rng.standard_normal(s) for k, s in DEEP_SHAPES.items()}
    arch = write_torch_npz(tmp_path / "d.npz", DEEP, arrays, (1, 6, 6))
    arrays = {k: np.asarray(v, np.float32).astype(np.float64) for k, v in arrays.items()}  # as stored
    net, params = N.load_torch(tmp_path / "d.npz")
    X, y = rng.uniform(0, 1, (3, 1, 6, 6)), np.array([0, 3, 1])
    for eps, clip in ((0.05, None), (0.2, (0.0, 1.0))):
        got = np.asarray(B.margin_bounds(net, params, X, y, eps, "ibp", clip=clip))
        for i in range(3):
            lo, hi = X[i] - eps, X[i] + eps
            if clip:
                lo, hi = np.maximum(lo, 0), np.minimum(hi, 1)
            np.testing.assert_allclose(got[i], ibp_margin(arch, arrays, lo, hi, spec_rows(y[i], 4)), rtol=1e-5)


def np_relax(l, u, rule):
    """The ReLU lines of lee2021 Sec. 3 in numpy: lower slope, upper slope, upper intercept."""
    up, lm = np.maximum(u, 0), np.minimum(l, 0)
    den = up - lm
    su = np.divide(up, den, out=np.zeros_like(up), where=den > 0)
    lower = {"adaptive": (up + lm > 0) * 1.0, "cap": su, "zero": (l >= 0) * 1.0}[rule]
    return lower, su, -su * lm


def lp_bound(layers, lo, hi, relax, c, zbounds=None):
    """min cᵀ(logits) over the relaxed polytope of an MLP: x ∈ [lo, hi], z_k = W_k h + b_k,
    a̲ z ≤ h ≤ ā z + b̄ for every hidden layer (and l ≤ z ≤ u when ``zbounds`` is given)."""
    sizes = [len(lo)] + [W.shape[0] for W, _ in layers]
    idx, at = [], 0
    for k, s in enumerate(sizes):  # variable blocks: x, then (z, h) per hidden layer, then logits
        idx.append(np.arange(at, at + s)), idx.append(np.arange(at + s, at + 2 * s)) if 0 < k < len(sizes) - 1 else None
        at += 2 * s if 0 < k < len(sizes) - 1 else s
    blocks = [idx[0]] + [idx[j] for j in range(1, len(idx))]
    nv = at
    A_eq, b_eq, A_ub, b_ub = [], [], [], []
    bounds = [(None, None)] * nv
    for v, (a_, b_) in zip(blocks[0], zip(lo, hi)):
        bounds[v] = (a_, b_)
    h = blocks[0]
    for k, (W, b) in enumerate(layers):
        z = blocks[1 + 2 * k]
        for r in range(W.shape[0]):  # z_r − W_r h = b_r
            row = np.zeros(nv)
            row[z[r]], row[h] = 1.0, -W[r]
            A_eq.append(row), b_eq.append(b[r])
        if k == len(layers) - 1:
            break
        hn = blocks[2 + 2 * k]
        al, su, bu = relax[k]
        for r in range(W.shape[0]):
            row = np.zeros(nv)
            row[z[r]], row[hn[r]] = al[r], -1.0  # a̲ z − h ≤ 0
            A_ub.append(row), b_ub.append(0.0)
            row = np.zeros(nv)
            row[hn[r]], row[z[r]] = 1.0, -su[r]  # h − ā z ≤ b̄
            A_ub.append(row), b_ub.append(bu[r])
            if zbounds is not None:
                bounds[z[r]] = (zbounds[k][0][r], zbounds[k][1][r])
        h = hn
    obj = np.zeros(nv)
    obj[blocks[-1]] = c
    res = linprog(obj, A_ub=np.array(A_ub), b_ub=b_ub, A_eq=np.array(A_eq), b_eq=b_eq, bounds=bounds,
                  method="highs")
    assert res.status == 0
    return res.fun


def mlp_layers(params):
    return [(np.asarray(p["weight"]), np.asarray(p["bias"])) for p in params if p]


@pytest.mark.parametrize("method, rule", [("crown", "adaptive"), ("cap", "cap"), ("crown_zero", "zero")])
def test_crown_equals_the_lp_over_its_relaxation_with_one_hidden_layer(method, rule):
    net = N.mlp((6, 3))
    params = net.init(1, (3,))
    layers = mlp_layers(params)
    rng = np.random.default_rng(1)
    X, y = rng.uniform(0, 1, (3, 3)), np.array([0, 2, 1])
    got = np.asarray(B.margin_bounds(net, params, X, y, 0.3, method, clip=(0, 1)))
    for i in range(3):
        lo, hi = np.maximum(X[i] - 0.3, 0), np.minimum(X[i] + 0.3, 1)
        W, b = layers[0]
        mid, rad = W @ ((lo + hi) / 2) + b, np.abs(W) @ ((hi - lo) / 2)  # exact interval of z
        relax = np_relax(mid - rad, mid + rad, rule)
        want = [lp_bound(layers, lo, hi, [relax], c) for c in spec_rows(y[i], 3)]
        np.testing.assert_allclose(got[i], want, rtol=1e-7, atol=1e-8)


def test_deeper_crown_is_below_the_lp_with_the_same_relaxation():
    net = N.mlp((5, 4, 3))
    params = net.init(2, (3,))
    layers = mlp_layers(params)
    rng = np.random.default_rng(2)
    X, y = rng.uniform(0, 1, (3, 3)), np.array([1, 0, 2])
    got = np.asarray(B.margin_bounds(net, params, X, y, 0.3, "crown"))
    pre_fn = jax.jit(lambda lo, hi: B.preactivation_bounds(net, params, lo, hi, "backward", "adaptive"))
    for i in range(3):
        lo, hi = X[i] - 0.3, X[i] + 0.3
        pre = pre_fn(lo, hi)
        zb = [tuple(np.asarray(v) for v in pre[k]) for k in sorted(pre)]
        relax = [np_relax(l, u, "adaptive") for l, u in zb]
        lp = np.array([lp_bound(layers, lo, hi, relax, c, zbounds=zb) for c in spec_rows(y[i], 3)])
        assert np.all(got[i] <= lp + 1e-8)
        assert np.all(got[i] >= lp - 0.5 * np.abs(lp) - 1e-3)  # the same relaxation: close, not loose


# ----------------------------------------------------------------------------- mixing, gradients, precision
def test_beta_mixes_ibp_and_crown_ibp():
    net, shape = NETS["mlp"]
    X, y = np.random.default_rng(0).uniform(0, 1, (2, 3)), np.array([0, 2])
    b = SOUNDNESS["mlp"](net.init(0, shape), X, y, 0.1)
    np.testing.assert_allclose(b["beta"], 0.6 * b["ibp"] + 0.4 * b["crown_ibp"], rtol=1e-12, atol=1e-14)


def test_every_method_is_differentiable_in_params():
    """One method per code path: IBP; IBP intermediates + adaptive slope; backward + CAP; backward + zero."""
    net, shape = NETS["mlp"]
    rng = np.random.default_rng(5)
    flat, unravel = jax.flatten_util.ravel_pytree(net.init(5, shape))
    X, y = rng.uniform(0, 1, (3, 3)), np.array([0, 1, 2])
    fs = [lambda v, m=m: jnp.sum(B.margin_bounds(net, unravel(v), X, y, 0.1, m))
          for m in ("ibp", "crown_ibp", "cap", "crown_zero")]
    values = jax.jit(lambda v: jnp.stack([f(v) for f in fs]))
    grads = np.asarray(jax.jit(lambda v: jnp.stack([jax.grad(f)(v) for f in fs]))(flat))
    d, h = rng.standard_normal(flat.shape), 1e-6
    fd = (np.asarray(values(flat + h * d)) - np.asarray(values(flat - h * d))) / (2 * h)
    np.testing.assert_allclose(fd, grads @ d, rtol=1e-6, atol=1e-9)
    assert np.all(np.abs(grads).sum(axis=1) > 0)


def _precisions(jaxpr, found):
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("dot_general", "conv_general_dilated"):
            found.append(eqn.params["precision"])
        for sub in jax.core.jaxprs_in_params(eqn.params):
            _precisions(sub, found)
    return found


@pytest.mark.parametrize("method", METHODS)
def test_every_product_in_a_bound_and_its_gradient_runs_at_highest_precision(method):
    net, shape = NETS["cnn"]
    params = net.init(0, shape)
    X, y = np.random.default_rng(0).uniform(0, 1, (2, *shape)), np.array([0, 2])
    f = lambda p: jnp.sum(B.margin_bounds(net, p, X, y, 0.1, method, clip=(0, 1)))  # noqa: E731
    for fn in (f, jax.grad(f)):
        found = _precisions(jax.make_jaxpr(fn)(params).jaxpr, [])
        assert found and all(p in ((jax.lax.Precision.HIGHEST,) * 2, jax.lax.Precision.HIGHEST) for p in found), found


def test_dtypes_follow_the_inputs():
    net, shape = NETS["mlp"]
    X, y = np.random.default_rng(0).uniform(0, 1, (2, 3)), np.array([0, 1])
    params = net.init(0, shape)
    assert params[1]["weight"].dtype == jnp.float64
    assert all(b.dtype == jnp.float64 for b in SOUNDNESS["mlp"](params, X, y, 0.1).values())
    assert B.clean_margins(net, params, X, y).dtype == jnp.float64
    with jax.enable_x64(False):
        p32 = net.init(0, shape)
        assert B.margin_bounds(net, p32, X, y, 0.1, "crown_ibp").dtype == jnp.float32


# ----------------------------------------------------------------------------- shapes and errors
def test_single_output_nets_give_one_column_and_multi_class_k_minus_one():
    W, a, X, y = make_problem(n=5, m=8, d=4)
    net, params = N.two_layer(W, a)
    assert B.margin_bounds(net, params, X, y, 0.1, "crown").shape == (5,)
    net, shape = NETS["mlp"]
    assert B.margin_bounds(net, net.init(0, shape), X[:, :3], np.array([0, 1, 2, 0, 1]), 0.1).shape == (5, 2)


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="deepz"), "method"), (dict(y=np.array([0, 3])), "y: class labels"),
    (dict(y=np.array([0.5, 1])), "y: class labels"), (dict(eps=-0.1), "eps"), (dict(beta=1.5), "beta"),
    (dict(X=np.ones((2, 4))), "params: layer|X"), (dict(X=np.array([[0.5, np.nan, 0.1]] * 2)), "X: contains"),
    (dict(clip=(0.0, 0.5)), "X: has points outside"), (dict(clip=(1.0, 0.0)), "clip"),
    (dict(net="mlp"), "net:"),
])
def test_bad_inputs_are_one_line_value_errors(kwargs, match):
    net, shape = NETS["mlp"]
    args = dict(net=net, params=net.init(0, shape), X=np.full((2, 3), 0.7), y=np.array([0, 1]), eps=0.1)
    args.update({k: v for k, v in kwargs.items() if k in args})
    extra = {k: v for k, v in kwargs.items() if k not in args}
    with pytest.raises(ValueError, match=match) as e:
        B.margin_bounds(args["net"], args["params"], args["X"], args["y"], args["eps"], **extra)
    assert "\n" not in str(e.value)
