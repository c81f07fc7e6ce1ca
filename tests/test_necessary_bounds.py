"""The lower bounds of ``theory.necessary`` against independent computations: autodiff-free
closed forms, exact scalar flows, explicit paths and Monte Carlo over initializations."""

import math

import numpy as np
import pytest
import scipy.optimize

import ntkflow as nf
from ntkflow.paper import init_params, robust_loss, robust_loss_grad
from ntkflow.theory import formulas as F
from ntkflow.theory import necessary as N


def _problem(seed, n=6, d=5, m=40, eps=0.05):
    rng = np.random.default_rng(seed)
    X = rng.uniform(eps, 1.0, size=(n, d))
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    W, a = init_params(seed, m, d)
    return W, a, X, y, eps


@pytest.mark.parametrize("seed", range(5))
def test_per_neuron_gradient_is_below_nX_over_sqrt_m(seed):
    """Fact (G): ‖∂L̄/∂w_r‖ ≤ nX/√m for every neuron, at random weights far from init too."""
    W, a, X, y, eps = _problem(seed)
    W = W * (1 + 3 * seed)
    g = robust_loss_grad(W, a, X, y, eps)
    bound = X.shape[0] * F.input_scale(X, eps) / math.sqrt(W.shape[0])
    assert np.max(np.linalg.norm(g, axis=1)) <= bound * (1 + 1e-12)


def test_loss_derivative_is_below_the_loss():
    """Fact (L): |l′(u)| ≤ l(u) on a wide grid (the envelope's only inequality on l)."""
    u = np.linspace(-50, 50, 20001)
    assert np.all(1 / (1 + np.exp(u)) <= np.logaddexp(0, -u) * (1 + 1e-12))


@pytest.mark.parametrize("seed", range(3))
def test_any_path_to_kappa_is_at_least_the_path_length_bound(seed):
    """Gradient descent to L̄ < κ: its polyline's mean path length is ≥ the bound, and the
    bound is not vacuous (> 0, within a factor 200 of the measured length)."""
    W, a, X, y, eps = _problem(seed, eps=0.02)
    n, m = X.shape[0], W.shape[0]
    lr, length = 0.5, np.zeros(m)
    loss0 = loss = robust_loss(W, a, X, y, eps)
    for _ in range(20000):
        if loss < F.KAPPA:
            break
        step = lr * robust_loss_grad(W, a, X, y, eps)
        W, length = W - step, length + np.linalg.norm(step, axis=1)
        loss = robust_loss(W, a, X, y, eps)
    assert loss < F.KAPPA, "GD did not reach κ: the test problem is too hard"
    bound = N.path_length_lower_bound(loss0, F.KAPPA, n, F.input_scale(X, eps), m)
    assert 0 < bound <= length.mean()
    assert length.mean() < 200 * bound


def test_path_length_bound_formula_and_zero_floor():
    assert N.path_length_lower_bound(10.0, 1.0, 3, 2.0, 4) == pytest.approx(9 / (3 * 2 * 2))
    assert N.path_length_lower_bound(0.5, 1.0, 3, 2.0, 4) == 0.0


def _scalar_flow_loss(u0, h, t):
    """Exact: u̇ = h/(1 + eᵘ) (L̄ = l(u), H = h) has u + eᵘ = u0 + e^{u0} + h t."""
    target = u0 + math.exp(u0) + h * t
    u = scipy.optimize.brentq(lambda v: v + math.exp(v) - target, u0 - 1, max(target, 1.0), xtol=1e-14)
    return math.log1p(math.exp(-u))


@pytest.mark.parametrize("u0", [-30.0, -5.0, -0.5, 2.0])
def test_loss_lower_envelope_below_an_exact_scalar_flow(u0):
    h = 0.7
    ts = np.linspace(0, 200, 81)
    exact = np.array([_scalar_flow_loss(u0, h, t) for t in ts])
    env = N.loss_lower_envelope(exact[0], h, ts)
    assert env[0] == pytest.approx(exact[0])
    assert np.all(env <= exact * (1 + 1e-10))


def test_loss_lower_envelope_rules_out_exponential_decay_from_large_loss():
    """From L̄(0) = 30 (u0 = −30) the exact flow decays linearly at rate h, not exponentially;
    an exponential envelope L̄(0)e^{−ht/2} drops below the exact loss, ours never does."""
    h, u0 = 0.7, -30.0
    t = 20.0
    exact = _scalar_flow_loss(u0, h, t)
    assert 30 * math.exp(-h * t / 2) < exact
    assert N.loss_lower_envelope(30.0, h, t) <= exact


def test_loss_lower_envelope_along_the_certified_flow():
    """Along the paper's gradient flow with Λ = 1.05·max λmax(H) over 41 saved times."""
    W, a, X, y, eps = _problem(3, n=5, d=4, m=60, eps=0.03)
    ts = np.linspace(0, 20, 41)
    traj = nf.paper.gradient_flow(W, a, X, y, eps, 20.0, save_at=ts, keep_W=True)
    lam = max(np.linalg.eigvalsh(nf.paper.gram_matrix(Wt, a, X, y, eps))[-1] for Wt in traj.W_saved)
    loss = np.array([robust_loss(Wt, a, X, y, eps) for Wt in traj.W_saved])
    env = N.loss_lower_envelope(loss[0], 1.05 * lam, ts)
    assert np.all(env <= loss * (1 + 1e-9))


def test_initial_loss_lower_bound_against_monte_carlo():
    """E L̄(0) ≥ the bound, and E u̲_i(0) ≤ −√m c ε d (the step the bound rests on), over 400 inits:
    both checked against the one-sided 99.9% end of the Monte Carlo mean (z = 3.1)."""
    rng = np.random.default_rng(0)
    n, d, m, eps = 4, 8, 50, 0.05
    X = rng.uniform(eps, 1.0, size=(n, d))
    y = np.array([1.0, -1.0, 1.0, -1.0])
    losses, us = [], []
    for s in range(400):
        W, a = init_params(1000 + s, m, d)
        losses.append(robust_loss(W, a, X, y, eps))
        us.append(nf.paper.ibp_lower_margin(W, a, X, y, eps))
    losses, us = np.array(losses), np.array(us)
    se = losses.std(ddof=1) / math.sqrt(losses.size)
    assert losses.mean() + 3.1 * se >= N.initial_loss_lower_bound(n, m, d, eps)
    u_se = us.std(axis=0, ddof=1) / math.sqrt(us.shape[0])
    assert np.all(us.mean(axis=0) - 3.1 * u_se <= -math.sqrt(m) * N.IBP_GAP_CONSTANT * eps * d)
    assert N.initial_loss_lower_bound(n, m, d, 0.0) == pytest.approx(n * math.log(2))


def test_route_threshold_solves_its_equation_and_tends_to_the_width_free_limit():
    R, X, n, d = 0.1, 2.0, 10, 20
    limit = N.route_eps_threshold(R, X, n, d)
    assert limit == pytest.approx(R * X / (N.IBP_GAP_CONSTANT * d))
    gaps = []
    for m in [1e2, 1e4, 1e6, 1e10]:
        e = N.route_eps_threshold(R, X, n, d, m)
        lhs = N.initial_loss_lower_bound(n, m, d, e)
        assert lhs == pytest.approx(R * n * X * math.sqrt(m) + F.KAPPA, rel=1e-9)
        gaps.append(abs(e - limit))
    assert all(b < a for a, b in zip(gaps, gaps[1:])) and gaps[-1] < 1e-5 * limit


@pytest.mark.parametrize("call,name", [
    (lambda: N.path_length_lower_bound(1.0, 0.5, 0, 1.0, 10), "n"),
    (lambda: N.path_length_lower_bound(float("nan"), 0.5, 2, 1.0, 10), "loss0"),
    (lambda: N.loss_lower_envelope(1.0, 1.0, -1.0), "t"),
    (lambda: N.loss_lower_envelope(1.0, -1.0, 1.0), "lambda_max"),
    (lambda: N.initial_loss_lower_bound(3, 10, 2, -0.1), "eps"),
    (lambda: N.route_eps_threshold(1e-3, 0.0, 3, 2), "x_scale"),
])
def test_bad_input_is_one_line_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        call()


def test_route_threshold_is_zero_where_even_eps_zero_breaks_the_route():
    """n log 2 − κ > R·nX√m: the mean path at ε = 0 already exceeds R (and 0 is returned)."""
    assert N.route_eps_threshold(1e-3, 2.0, 10, 20, 100) == 0.0
