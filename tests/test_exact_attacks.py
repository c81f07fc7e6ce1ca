"""ntkflow.bounds.exact_margin (MILP) and ntkflow.attacks: the chain bound ≤ exact ≤ PGD ≤ clean."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkflow as nf
import ntkflow.attacks as A
import ntkflow.bounds as B
import ntkflow.nets as N
from conftest import make_problem

TINY = {
    "mlp": (N.mlp((8, 8, 3)), (4,)),
    "cnn": (N.conv_net([(2, 3, 2, 0)], [6], 3, (1, 6, 6)), (1, 6, 6)),
}


pytestmark = pytest.mark.usefixtures("x64")


def three_bounds(net):
    return jax.jit(lambda p, X, y, e: jnp.stack(
        [jnp.min(B.margin_bounds(net, p, X, y, e, m, clip=(0.0, 1.0)), axis=1) for m in ("ibp", "crown_ibp", "crown")]))


@pytest.mark.parametrize("name", TINY)
def test_bounds_below_exact_below_pgd_below_clean(name):
    net, shape = TINY[name]
    params = net.init(3, shape)
    rng = np.random.default_rng(3)
    X, y = rng.uniform(0, 1, (4, *shape)), rng.integers(0, 3, 4)
    bounds = three_bounds(net)
    for eps in (0.05, 0.2):
        ex = B.exact_margin(net, params, X, y, eps, clip=(0, 1))
        assert np.all(ex.status == "optimal") and np.all(ex.lower <= ex.margin)
        pgd = np.asarray(A.pgd_margin(net, params, X, y, eps, steps=30, restarts=2, clip=(0, 1)))
        clean = np.asarray(B.clean_margins(net, params, X, y)).min(axis=1)
        assert np.all(np.asarray(bounds(params, X, y, eps)) <= ex.lower + 1e-7)
        assert np.all(ex.margin <= pgd + 1e-7) and np.all(pgd <= clean + 1e-12)


def test_milp_matches_a_grid_search_on_a_two_dimensional_input():
    """exact ≤ min over a grid (grid points are feasible) ≤ exact + L·h/2, with L an ℓ∞-Lipschitz
    constant of every margin (products of |W|) and h the grid spacing."""
    net = N.mlp((6, 5, 3))
    params = net.init(7, (2,))
    x, y, eps, k = np.array([[0.4, 0.6]]), np.array([1]), 0.2, 301
    ex = B.exact_margin(net, params, x, y, eps)
    g = np.linspace(-eps, eps, k)
    pts = x + np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    grid_min = np.asarray(B.clean_margins(net, params, pts, np.full(len(pts), 1))).min()
    Ws = [np.abs(np.asarray(p["weight"])) for p in params if p]
    C = np.abs(np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]]))  # |e_y − e_j| for y = 1
    L = np.max((C @ Ws[2] @ Ws[1] @ Ws[0]).sum(axis=1))
    assert ex.margin[0] <= grid_min + 1e-9
    assert grid_min - ex.margin[0] <= L * (g[1] - g[0]) / 2 + 1e-9


def test_two_layer_exact_margin_is_between_ibp_and_the_clean_margin():
    W, a, X, y = make_problem(n=4, m=6, d=3)
    net, params = N.two_layer(W, a)
    ex = B.exact_margin(net, params, X, y, 0.1)
    assert ex.margin.shape == (4,)
    assert np.all(nf.ibp_lower_margin(W, a, X, y, 0.1) <= ex.lower + 1e-9)
    assert np.all(ex.margin <= nf.margin(W, a, X, y) + 1e-9)


def test_time_limit_gives_a_status_and_a_valid_bracket():
    net = N.mlp((48, 48, 3))
    params = net.init(0, (10,))
    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 1, (1, 10)), np.array([0])
    ex = B.exact_margin(net, params, X, y, 0.5, time_limit=0.02)
    assert ex.status[0] == "time_limit"
    pgd = np.asarray(A.pgd_margin(net, params, X, y, 0.5))
    assert ex.lower[0] <= ex.margin[0] and ex.lower[0] <= pgd[0] + 1e-9
    with pytest.raises(ValueError, match="max_neurons"):
        B.exact_margin(net, params, X, y, 0.1, max_neurons=50)


def test_pgd_points_are_feasible_and_their_margins_are_reported():
    net, shape = TINY["cnn"]
    params = net.init(1, shape)
    rng = np.random.default_rng(1)
    X, y = rng.uniform(0, 1, (3, *shape)), np.array([0, 1, 2])
    Xa, m = (np.asarray(v) for v in A.pgd(net, params, X, y, 0.1, steps=10, restarts=2, seed=4, clip=(0, 1)))
    assert np.all(np.abs(Xa - X) <= 0.1 + 1e-12) and Xa.min() >= 0 and Xa.max() <= 1
    np.testing.assert_allclose(m, np.asarray(B.clean_margins(net, params, Xa, y)).min(axis=1), rtol=1e-12)
    again = np.asarray(A.pgd_margin(net, params, X, y, 0.1, steps=10, restarts=2, seed=4, clip=(0, 1)))
    np.testing.assert_array_equal(again, m)


def test_fgsm_is_one_signed_step_from_its_start():
    net, shape = TINY["mlp"]
    params = net.init(2, shape)
    rng = np.random.default_rng(2)
    X, y, eps = rng.uniform(0.2, 0.8, (3, 4)), np.array([2, 0, 1]), 0.1
    # from x itself: x − 1.25ε·sign(∇ min_j margin_j), clipped to the ball
    grad = jax.vmap(jax.grad(lambda x, yi: jnp.min(
        jnp.where(jnp.arange(3) == yi, jnp.inf, net.apply_one(params, x)[yi] - net.apply_one(params, x)))))(X, y)
    want = np.clip(X - 1.25 * eps * np.sign(np.asarray(grad)), X - eps, X + eps)
    np.testing.assert_allclose(A.fgsm(net, params, X, y, eps, random_start=False), want, rtol=1e-12)
    a, b, c = (np.asarray(A.fgsm(net, params, X, y, eps, seed=s)) for s in (5, 5, 6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and np.all(np.abs(a - X) <= eps + 1e-12)


@pytest.mark.parametrize("kwargs, match", [(dict(steps=0), "steps"), (dict(restarts=-1), "restarts"),
                                           (dict(seed=-2), "seed"), (dict(step_size=-0.1), "step_size")])
def test_attack_arguments_are_validated(kwargs, match):
    net, shape = TINY["mlp"]
    with pytest.raises(ValueError, match=match):
        A.pgd_margin(net, net.init(0, shape), np.full((1, 4), 0.5), np.array([0]), 0.1, **kwargs)
