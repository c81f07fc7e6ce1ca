"""ntkflow.analysis.landscape: fan2021's sandwich, lee2021's smoothness measures and relaxed gradient."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkflow.bounds as B
import ntkflow.analysis.landscape as L
import ntkflow.nets as N
from conftest import make_problem
from ntkflow.bounds.linear import backward, preactivation_bounds, relu_relaxation

pytestmark = pytest.mark.usefixtures("x64")


def two_layer_problem(seed, n=5, m=8, d=4):
    W, a, X, y = make_problem(seed, n=n, m=m, d=d, lo=0.0, hi=1.0)
    return (*N.two_layer(W, a), X, y)


def mlp3_problem(seed, n=5):
    net = N.mlp((8, 3))
    rng = np.random.default_rng(seed)
    return net, net.init(seed, (4,)), rng.uniform(0, 1, (n, 4)), rng.integers(0, 3, n)


# ----------------------------------------------------------------------------- fan2021 Eq. 4
@pytest.mark.parametrize("make, bound", [(two_layer_problem, "ibp"), (two_layer_problem, "crown"),
                                         (mlp3_problem, "ibp"), (mlp3_problem, "crown_ibp")])
def test_sandwich_holds_on_tiny_nets(make, bound):
    for seed, eps in ((0, 0.05), (1, 0.2)):
        net, params, X, y = make(seed)
        s = L.sandwich(net, params, X, y, eps, steps=20, clip=(0.0, 1.0), bound=bound)
        assert s.violations == 0
        # The inequalities themselves, at a tolerance 100× tighter than the default.
        assert np.all(s.loss_adv <= s.loss_max + 1e-8) and np.all(s.loss_max <= s.loss_bound + 1e-8)
        np.testing.assert_allclose(s.loss_max_dual, s.loss_max, atol=1e-7)
        # One margin: loss_max is the exact worst-case loss; three classes: only an upper bound.
        assert np.all(s.exact) == (net.num_outputs == 1) and np.all(s.exact) == np.any(s.exact)


def test_single_output_loss_max_is_the_loss_of_the_exact_margin():
    net, params, X, y = two_layer_problem(2)
    s = L.sandwich(net, params, X, y, 0.1, steps=20)
    ex = B.exact_margin(net, params, X, y, 0.1)
    np.testing.assert_allclose(s.loss_max, np.log1p(np.exp(-ex.margin)), rtol=1e-12)


def test_a_wrong_bound_is_caught():
    """Clean margins + 1 exceed the exact margins (clean ≥ exact), so L(bound) < L(m*) on every sample."""
    for make in (two_layer_problem, mlp3_problem):
        net, params, X, y = make(3)
        wrong = lambda net, p, X, y, eps, clip: B.clean_margins(net, p, X, y) + 1.0  # noqa: E731
        s = L.sandwich(net, params, X, y, 0.1, steps=20, bound=wrong)
        assert s.violations == len(X)


def test_violation_rule_on_both_sides():
    ok = L.sandwich_violations([1.0], [2.0], [2.0], [3.0])
    adv_above = L.sandwich_violations([2.1], [2.0], [2.0], [3.0])
    max_above = L.sandwich_violations([1.0], [3.1], [3.1], [3.0])
    within_tol = L.sandwich_violations([2.0 + 1e-7], [2.0], [2.0], [3.0], tol=1e-6)
    assert not ok[0] and adv_above[0] and max_above[0] and not within_tol[0]


def test_class_margins_match_a_grid_search_and_exact_margin():
    """Each per-class exact margin m*_j ≤ min of m_j over a grid of the ball ≤ m*_j + Lip·h/2, and
    min_j m*_j is ``exact_margin``'s margin (which catches a wrong column order too)."""
    net = N.mlp((6, 3))
    params = net.init(7, (2,))
    X, y, eps, k = np.array([[0.4, 0.6], [0.3, 0.2]]), np.array([1, 2]), 0.2, 121
    cm = L.exact_class_margins(net, params, X, y, eps)
    assert cm.optimal.all()
    np.testing.assert_allclose(cm.margin.min(axis=1), B.exact_margin(net, params, X, y, eps).margin, atol=1e-9)
    g = np.linspace(-eps, eps, k)
    W1, W2 = (np.asarray(p["weight"]) for p in params if p)
    for i in range(len(X)):
        pts = X[i] + np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
        grid = np.asarray(B.clean_margins(net, params, pts, np.full(len(pts), y[i]))).min(axis=0)
        others = [j for j in range(3) if j != y[i]]
        lip = np.abs(W2[y[i]] - W2[others]) @ np.abs(W1)  # ℓ∞-Lipschitz constants of each margin
        assert np.all(cm.margin[i] <= grid + 1e-9)
        assert np.all(grid - cm.margin[i] <= lip.sum(axis=1) * (g[1] - g[0]) / 2 + 1e-9)


def test_sandwich_refuses_bad_input():
    net, params, X, y = two_layer_problem(0)
    with pytest.raises(ValueError, match="method"):
        L.sandwich(net, params, X, y, 0.1, bound="nope")
    with pytest.raises(ValueError, match="bound"):
        L.sandwich(net, params, X, y, 0.1, bound=3)
    with pytest.raises(ValueError, match="bound"):
        L.sandwich(net, params, X, y, 0.1, steps=20, bound=lambda *args: jnp.zeros((len(X), 2)))
    with pytest.raises(ValueError, match="tol"):
        L.sandwich(net, params, X, y, 0.1, tol=-1.0)
    with pytest.raises(ValueError, match="eps"):
        L.sandwich(net, params, X, y, 2.0)


# ----------------------------------------------------------------------------- lee2021 Sec. 4.1
def test_gradient_change_by_hand():
    g = {"w": jnp.array([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.array([4.0])}
    same = L.gradient_change(g, g)
    assert float(same.l2) == 0.0 and abs(float(same.cosine_distance)) < 1e-15
    opp = L.gradient_change(g, jax.tree_util.tree_map(lambda v: -v, g))
    norm = np.sqrt(1 + 4 + 0.25 + 9 + 16)
    assert np.isclose(float(opp.l2), 2 * norm, rtol=1e-14) and np.isclose(float(opp.cosine_distance), 2.0, rtol=1e-14)
    h = {"w": jnp.array([[0.0, 1.0], [2.0, 0.0]]), "b": jnp.array([-1.0])}
    ch = L.gradient_change(g, h)
    a, b = np.array([4.0, 1, -2, 0.5, 3]), np.array([-1.0, 0, 1, 2, 0])  # leaves in pytree order (b, w)
    assert np.isclose(float(ch.l2), np.linalg.norm(a - b), rtol=1e-14)
    assert np.isclose(float(ch.cosine_distance), 1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b), rtol=1e-14)
    ortho = L.gradient_change((jnp.array([1.0, 0.0]),), (jnp.array([0.0, 3.0]),))
    assert np.isclose(float(ortho.cosine_distance), 1.0) and np.isclose(float(ortho.l2), np.sqrt(10.0))


def test_gradient_change_undefined_angle_and_bad_trees():
    assert np.isnan(float(L.gradient_change([jnp.zeros(3)], [jnp.ones(3)]).cosine_distance))
    with pytest.raises(ValueError, match="g:"):
        L.gradient_change({"w": jnp.ones(2)}, {"v": jnp.ones(2)})
    with pytest.raises(ValueError, match="g:"):
        L.gradient_change([jnp.ones(2)], [jnp.ones(3)])


def test_loss_variation_constant_and_quadratic():
    params = {"a": jnp.array([1.0, -2.0]), "b": jnp.array([[0.5]])}
    steps = np.array([0.0, 0.25, 0.5, 1.5, 3.0])
    const = L.loss_variation(lambda p: 7.0 + 0 * p["a"].sum(), params, params, steps)
    assert float(const.variation) == 0.0 and float(const.low) == 7.0
    quad = lambda p: 0.5 * (jnp.sum(p["a"] ** 2) + jnp.sum(p["b"] ** 2))  # noqa: E731
    grad = jax.grad(quad)(params)  # = params: L(θ − ηθ) = ½(1 − η)²‖θ‖²
    v = L.loss_variation(quad, params, grad, steps)
    sq = 1 + 4 + 0.25
    np.testing.assert_allclose(v.values, 0.5 * (1 - steps) ** 2 * sq, rtol=1e-14)
    # min at η ∈ {0.5, 1.5}: ½·¼·‖θ‖²; max at η = 3: ½·4·‖θ‖².
    assert np.isclose(float(v.low), sq / 8, rtol=1e-14) and np.isclose(float(v.high), 2 * sq, rtol=1e-14)
    assert np.isclose(float(v.variation), 15 * sq / 8, rtol=1e-14)


def test_loss_variation_diverged_and_bad_input():
    params = [jnp.array([1.0])]
    v = L.loss_variation(lambda p: jnp.log(1 - p[0][0]), params, params, [0.0, 1.0])  # log 0 = −inf
    assert np.isnan(float(v.variation))
    with pytest.raises(ValueError, match="direction"):
        L.loss_variation(lambda p: p[0][0], params, [jnp.ones(2)], [0.0])
    with pytest.raises(ValueError, match="steps"):
        L.loss_variation(lambda p: p[0][0], params, params, [])


# ----------------------------------------------------------------------------- lee2021 Def. 1, Sec. 5
SLOPE_METHODS = ["ibp", "crown_ibp", "cap", "crown_ibp_zero"]


@pytest.mark.parametrize("method", SLOPE_METHODS)
def test_relaxed_linear_is_the_engines_bound(method):
    """max over the ball of gᵀx' + b = gᵀx + ε‖g‖₁ + b (Eq. 2) is minus the engine's lower margin."""
    W, a, X, y = make_problem(4, n=6, m=12, d=3)
    eps = 0.15
    g, b = L.relaxed_linear(W, a, X, y, eps, method)
    net, params = N.two_layer(W, a)
    upper = np.einsum("nd,nd->n", g, X) + eps * np.abs(g).sum(axis=1) + b
    np.testing.assert_allclose(-upper, B.margin_bounds(net, params, X, y, eps, method), rtol=1e-12, atol=1e-12)
    if method == "ibp":
        assert np.all(g == 0)


@partial(jax.jit, static_argnames=("slope",))
def engine_g(W, x, eps, w, slope):
    """The input coefficients of the engine's backward pass for s = wᵀ relu(Wx) (an upper line)."""
    m, d = W.shape
    net = N.Net((N.Dense(m, d, bias=False), N.ReLU(), N.Dense(1, m, bias=False, fixed=w[None, :])), input_shape=(d,))
    params = ({"weight": W}, {}, {})
    bounds = preactivation_bounds(net, params, x - eps, x + eps, "ibp", None)
    relax = {i: relu_relaxation(*lu, slope) for i, lu in bounds.items()}
    A, _ = backward(net, params, -jnp.ones((1, 1)), 3, relax, net.shapes((d,)))  # −s ≥ A·x' + c
    return -A[0]


@pytest.mark.parametrize("method, slope", [("crown_ibp", "adaptive"), ("cap", "cap"), ("crown_ibp_zero", "zero")])
def test_relaxed_gradient_norm_against_autodiff_through_the_engine(method, slope):
    W, a, X, y = make_problem(5, n=4, m=10, d=3)
    eps = 0.2
    r = L.relaxed_gradient_norm(W, a, X, y, eps, method)
    g, _ = L.relaxed_linear(W, a, X, y, eps, method)
    Wj = jnp.asarray(W)
    for i in range(len(X)):
        w = jnp.asarray(-y[i] * a / np.sqrt(len(a)))
        np.testing.assert_allclose(engine_g(Wj, jnp.asarray(X[i]), eps, w, slope), g[i], rtol=1e-12, atol=1e-14)
        J = np.asarray(jax.jacobian(lambda v: engine_g(Wj, jnp.asarray(X[i]), eps, v, slope))(w))  # (d, m)
        assert np.isclose(r.jac_spectral[i], np.linalg.norm(J, 2), rtol=1e-10)
        assert np.isclose(r.jac_frobenius[i], np.linalg.norm(J), rtol=1e-10)
        # Sec. 5's bound, and the tighter one the slopes in [0, 1] give.
        assert r.jac_spectral[i] <= r.jac_frobenius[i] <= r.jac_bound[i] * (1 + 1e-12)
        assert r.jac_spectral[i] <= np.linalg.norm(W, 2) * (1 + 1e-12)
    np.testing.assert_allclose(r.g_dual, np.abs(g).sum(axis=1), rtol=1e-14)


def test_relaxed_gradient_of_ibp_is_zero_and_bad_method_refused():
    W, a, X, y = make_problem(6, n=3, m=6, d=2)
    r = L.relaxed_gradient_norm(W, a, X, y, 0.1, "ibp")
    assert np.all(r.jac_spectral == 0) and np.all(r.jac_bound == 0) and np.all(r.g_dual == 0)
    with pytest.raises(ValueError, match="method"):
        L.relaxed_gradient_norm(W, a, X, y, 0.1, "nope")
    with pytest.raises(ValueError, match="eps"):
        L.relaxed_linear(W, a, X, y, -0.1)
