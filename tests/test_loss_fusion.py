"""CROWN-IBP's β = 0 skip and loss fusion: soundness, and equality where the math is exact."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkflow.bounds as B
import ntkflow.nets as N
from ntkflow.bounds.engine import bounds_batched
from ntkflow.nets import inputs as NI

pytestmark = pytest.mark.usefixtures("x64")
NET = N.mlp((6, 5, 3))


def fused_loss(net, p, X, y, eps, beta=None):
    M, s = B.exp_sum_upper(net, p, X, y, eps, "crown_ibp", beta=beta)
    return np.log1p(np.exp(M) * s)


def test_fused_bound_is_above_the_loss_at_points_and_corners():
    rng = np.random.default_rng(0)
    p = NET.init(1, (3,))
    X, y = rng.uniform(0, 1, (3, 3)), rng.integers(0, 3, 3)
    for beta in (None, 0.5):
        bound = fused_loss(NET, p, X, y, 0.2, beta)
        for i in range(3):
            pts = np.concatenate([X[i] + rng.uniform(-0.2, 0.2, (200, 3)),
                                  X[i] + 0.2 * np.array(list(itertools.product([-1, 1], repeat=3)))])
            f = np.asarray(NET.apply(p, pts))
            true = np.log(np.sum(np.exp(f - f[:, [y[i]]]), axis=1))
            assert np.all(true <= bound[i] + 1e-12)


def test_fused_at_eps_zero_is_the_clean_cross_entropy_and_at_beta_zero_ibps():
    rng = np.random.default_rng(2)
    p = NET.init(3, (3,))
    X, y = rng.uniform(0, 1, (4, 3)), rng.integers(0, 3, 4)
    f = np.asarray(NET.apply(p, X))
    clean = np.log(np.sum(np.exp(f - f[np.arange(4), y][:, None]), axis=1))
    np.testing.assert_allclose(fused_loss(NET, p, X, y, 0.0), clean, rtol=1e-12)
    ibp = B.margin_bounds(NET, p, X, y, 0.1, "ibp")
    np.testing.assert_allclose(fused_loss(NET, p, X, y, 0.1, 0.0), np.log1p(np.exp(-ibp).sum(1)), rtol=1e-12)


def test_beta_zero_skip_equals_ibp_and_beta_positive_equals_the_mix():
    rng = np.random.default_rng(4)
    p = NET.init(5, (3,))
    X, y = rng.uniform(0, 1, (4, 3)), rng.integers(0, 3, 4)
    pb = NI.problem(NET, p, X, y, 0.1)
    loss = lambda p, b: jnp.sum(bounds_batched(NET, p, pb.C, pb.lo, pb.hi, "crown_ibp", b, 4))  # noqa: E731
    g0 = jax.jit(jax.value_and_grad(loss))(p, 0.0)
    gi = jax.value_and_grad(lambda p: jnp.sum(B.margin_bounds(NET, p, X, y, 0.1, "ibp")))(p)
    for a, b in zip(jax.tree_util.tree_leaves(g0), jax.tree_util.tree_leaves(gi)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    ibp, lin = (B.margin_bounds(NET, p, X, y, 0.1, m) for m in ("ibp", "crown_ibp"))
    for beta in (0.3, 1.0):
        np.testing.assert_allclose(bounds_batched(NET, p, pb.C, pb.lo, pb.hi, "crown_ibp", beta, 4),
                                   (1 - beta) * ibp + beta * lin, rtol=1e-12, atol=1e-14)


def test_two_classes_fused_is_exps_chord_at_the_unfused_upper_bound():
    """K = 2: one row, so fused = log(1 + chord_[l,u](Ū)), Ū = −(CROWN-IBP margin), [l, u] IBP's z range."""
    net = N.mlp((6, 5, 2))
    rng = np.random.default_rng(6)
    p = net.init(7, (3,))
    X, y = rng.uniform(0, 1, (4, 3)), rng.integers(0, 2, 4)
    lo = np.asarray(B.margin_bounds(net, p, X, 1 - y, 0.15, "ibp"))[:, 0]
    up = -np.asarray(B.margin_bounds(net, p, X, y, 0.15, "ibp"))[:, 0]
    ub = -np.asarray(B.margin_bounds(net, p, X, y, 0.15, "crown_ibp"))[:, 0]
    chord = np.exp(lo) + (np.exp(up) - np.exp(lo)) / (up - lo) * (ub - lo)
    np.testing.assert_allclose(fused_loss(net, p, X, y, 0.15), np.log1p(chord), rtol=1e-10)


def test_a_branch_known_on_the_host_equals_the_traced_cond_value_and_gradient():
    """``beta_branch`` "zero" (β = 0) and "mix" (β > 0) compile without the ``lax.cond``; their
    margins (with gradients) and fused sums are the cond's (bit for bit at β = 0)."""
    rng = np.random.default_rng(8)
    p = NET.init(9, (3,))
    X, y = rng.uniform(0, 1, (4, 3)), rng.integers(0, 3, 4)
    grad = {br: jax.jit(jax.value_and_grad(lambda q, b, br=br: jnp.sum(
        B.margin_bounds(NET, q, X, y, 0.1, "crown_ibp", beta=b, beta_branch=br)))) for br in B.BETA_BRANCHES}
    for beta, branch, rtol in ((0.0, "zero", 0.0), (0.4, "mix", 1e-13)):
        for a, b in zip(jax.tree_util.tree_leaves(grad[branch](p, beta)), jax.tree_util.tree_leaves(grad["cond"](p, beta))):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=0)
        fused = [B.exp_sum_upper(NET, p, X, y, 0.1, "crown_ibp", beta=jnp.asarray(beta), beta_branch=br)
                 for br in (branch, "cond")]
        np.testing.assert_allclose(fused[0], fused[1], rtol=rtol, atol=0)
    with pytest.raises(ValueError, match="^beta_branch: unknown 'skip'"):
        B.margin_bounds(NET, p, X, y, 0.1, "crown_ibp", beta=0.5, beta_branch="skip")
    with pytest.raises(ValueError, match="^beta_branch: unknown"):
        B.exp_sum_upper(NET, p, X, y, 0.1, "crown_ibp", beta=0.5, beta_branch=None)
