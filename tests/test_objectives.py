"""Training methods as objectives: the generic trainer against the paper's closed-form loop,
each loss against an independent formula, the error ordering clean ≤ PGD ≤ certified, and
the methods doing what they are for (fixed seeds, stated margins)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ntkflow as nf
from ntkflow.data import mnist25
from ntkflow._jax import tree_distance
from ntkflow.training.fit import fit
from ntkflow.metrics import AttackSettings
from ntkflow.paper.model import init_params
from ntkflow.nets import mlp, two_layer
from ntkflow.objectives import (OBJECTIVES, BetaFromEps, Context, FanWarmup, Ramp, margin_loss, objective,
                                schedule)
from ntkflow.objectives.advibp import AdvIBP, AdvIBPState, fosc
from conftest import make_problem


def test_fast_path_equals_generic_trainer_on_the_two_layer_net(x64):
    """train(objective="ibp") (closed-form Sec. 3.4 gradient) = fit(two_layer, "ibp") (autodiff of
    the engine's bound), step for step: same permutations, same weights, same records."""
    W, A, X, Y = make_problem(seed=5, n=12, m=30, d=4, lo=0.1)
    kw = dict(lr=0.05, epochs=6, batch_size=4, seed=2, eps_schedule={"warmup": 1, "ramp": 2})
    fast = nf.train(W, A, X, Y, 0.05, **kw)
    net, p0 = two_layer(W, A)
    gen = fit(net, p0, X, Y, 0.05, objective="ibp", fast_path=False, **kw)
    assert fast.meta["fast_path"] and not gen.meta["fast_path"]
    np.testing.assert_allclose(gen.W, fast.W, rtol=0, atol=1e-12)
    for k in ("loss", "train_error", "certified_error", "flip_fraction", "max_weight_change", "eps"):
        np.testing.assert_allclose(gen.series[k], fast.series[k], rtol=1e-10, atol=1e-12, err_msg=k)
    via_train = nf.train(W, A, X, Y, 0.05, objective="crown_ibp", **kw)  # train() delegates other methods to fit
    np.testing.assert_allclose(via_train.W, fit(net, p0, X, Y, 0.05, objective="crown_ibp", **kw).W, atol=0)
    # standard at ε = 0 is the same loop with the clean loss
    std = fit(net, p0, X, Y, 0.0, objective="standard", lr=0.05, epochs=4, batch_size=4, seed=2, fast_path=False)
    np.testing.assert_allclose(std.W, nf.train(W, A, X, Y, 0.0, lr=0.05, epochs=4, batch_size=4, seed=2).W,
                               atol=1e-12)


def test_margin_loss_is_cross_entropy_and_logistic(x64):
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.standard_normal((9, 4)))
    y = jnp.asarray(rng.integers(0, 4, 9))
    net = mlp((4,))  # the margins of a 4-class logit vector: f_y − f_j
    margins = jnp.take_along_axis(logits, y[:, None], 1) - logits
    others = jnp.stack([jnp.delete(margins[i], y[i]) for i in range(9)])
    np.testing.assert_allclose(margin_loss(others), optax.softmax_cross_entropy_with_integer_labels(logits, y),
                               rtol=1e-12)
    u = jnp.linspace(-40, 40, 9)
    np.testing.assert_allclose(margin_loss(u), np.log1p(np.exp(-np.asarray(u))), rtol=1e-12)
    assert net.num_outputs == 4


def _ctx(eps, beta=0.0, key=0):
    return Context(jnp.asarray(eps), jnp.asarray(beta), jnp.asarray(0.0), jax.random.PRNGKey(key), jnp.asarray(0.0),
                   jnp.asarray(0.0))


def test_certified_loss_bounds_the_loss_at_points_in_the_ball(x64):
    """Σ l(m̲) ≥ Σ l(m(x')) for every x' in the ball: sampled points and the PGD point."""
    net = mlp((8, 8, 3), input_shape=(5,))
    params = net.init(1, dtype=jnp.float64)
    rng = np.random.default_rng(1)
    X = jnp.asarray(rng.uniform(0, 1, (6, 5)))
    y = jnp.asarray(rng.integers(0, 3, 6))
    eps = 0.1
    for name in ("ibp", "crown_ibp", "crown"):
        bound = float(objective(name).loss(net, params, X, y, _ctx(eps)))
        for k in range(5):
            Xp = X + jnp.asarray(rng.uniform(-eps, eps, X.shape))
            assert float(objective("standard").loss(net, params, Xp, y, _ctx(0.0))) <= bound + 1e-9
        adv = objective("pgd", steps=10)
        Xa = adv.points(net, params, X, y, _ctx(eps))
        assert np.all(np.abs(np.asarray(Xa - X)) <= eps + 1e-12)
        assert float(adv.loss_at(net, params, Xa, y)) <= bound + 1e-9


def test_crown_ibp_beta_mix_is_the_convex_combination(x64):
    net = mlp((6, 2), input_shape=(3,))
    params = net.init(0, dtype=jnp.float64)
    X = jnp.asarray(np.random.default_rng(2).uniform(0, 1, (5, 3)))
    y = jnp.asarray([0, 1, 1, 0, 1])
    c = objective("crown_ibp")
    lo = c.margins(net, params, X, y, _ctx(0.1, beta=0.0))
    hi = c.margins(net, params, X, y, _ctx(0.1, beta=1.0))
    mid = c.margins(net, params, X, y, _ctx(0.1, beta=0.3))
    np.testing.assert_allclose(mid, 0.7 * lo + 0.3 * hi, rtol=1e-12)
    np.testing.assert_allclose(lo, nf.bounds.margin_bounds(net, params, X, y, 0.1, "ibp"), rtol=1e-12)


def test_schedules():
    r = Ramp(warmup=2, ramp=4)
    assert [r(t, 0.4) for t in (0, 1.9, 2, 4, 6, 9)] == pytest.approx([0, 0, 0, 0.2, 0.4, 0.4])
    f = FanWarmup(t_nat=1, t_adv=2, ramp=2)
    assert [f(t, 0.3) for t in (0.5, 1, 2.9, 3, 4, 5, 8)] == pytest.approx([0, 0.3, 0.3, 0, 0.15, 0.3, 0.3])
    b = BetaFromEps()
    assert [b(e, 0.2) for e in (0, 0.1, 0.2)] == pytest.approx([1, 0.5, 0])
    assert schedule({"kind": "fan_warmup", "t_nat": 1}) == FanWarmup(t_nat=1)
    with pytest.raises(ValueError, match="schedule: unknown kind"):
        schedule({"kind": "cosine"})
    with pytest.raises(ValueError, match="schedule.ramp"):
        Ramp(ramp=-1)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="^objective: unknown 'sgd'"):
        objective("sgd")
    with pytest.raises(ValueError, match="attack.steps"):
        objective("pgd", steps=0)
    with pytest.raises(ValueError, match="advibp.beta1"):
        objective("advibp", beta1=1.0)
    W, A, X, Y = make_problem(n=4, m=6, d=3)
    with pytest.raises(ValueError, match="^objective: unknown"):
        nf.train(W, A, X, Y, 0.1, lr=0.1, epochs=1, objective="nope")
    assert {"standard", "ibp", "crown_ibp", "crown", "pgd", "fgsm", "advibp", "advibp_fixed"} <= set(OBJECTIVES)


def test_tree_distance_by_hand():
    g = ({"w": jnp.asarray([3.0, 4.0])},)
    l2, cos = tree_distance(g, g)
    assert float(l2) == 0 and float(cos) == pytest.approx(0)
    l2, cos = tree_distance(g, ({"w": jnp.asarray([-3.0, -4.0])},))
    assert float(l2) == pytest.approx(10) and float(cos) == pytest.approx(2)
    assert np.isnan(float(tree_distance(({"w": jnp.zeros(2)},), g)[1]))


# ------------------------------------------------------------------ AdvIBP
def _state(m1, m2, v1, v2, t):
    return AdvIBPState((jnp.asarray(m1),), (jnp.asarray(m2),), jnp.asarray(v1), jnp.asarray(v2), jnp.asarray(t))


def test_advibp_weights_follow_algorithm_1_by_hand(x64):
    adv = AdvIBP(beta1=0.5, beta2=0.5)
    # t = 1: bias correction divides by 1 − 0.5 = 0.5
    m1, m2, v1, v2 = np.array([1.0, 0.0]), np.array([1.0, 1.0]), 1.0, 2.0  # corrected: (2,0), (2,2), 2, 4
    ka, ki, kr, case = adv.weights(_state(m1 / 2, m2 / 2, v1 / 2, v2 / 2, 1), 0.0, 1.0)
    M1, M2, V1, V2 = m1, m2, v1, v2
    M1, M2, V1, V2 = np.array([2.0, 0]), np.array([2.0, 2.0]), 2.0, 4.0
    a = M1 / V1 + M2 / V2
    gamma = 0.5 * (M1 + M2) @ a / (a @ a)
    assert int(case) == 1
    assert (float(ka), float(ki), float(kr)) == pytest.approx((gamma / V1, gamma / V2, 0.0))
    # opposed moments: FOSC below c_t → adversarial prioritized, else IBP prioritized
    s = _state(np.array([1.0, 0]) / 2, np.array([-1.0, 0.5]) / 2, 0.5, 1.0, 1)  # corrected dot = 2·(−2)/... see below
    M1, M2, V1, V2 = np.array([1.0, 0]), np.array([-1.0, 0.5]), 1.0, 2.0
    dot = M1 @ M2
    ka, ki, kr, case = adv.weights(s, 0.1, 0.5)
    assert int(case) == 2 and (float(ka), float(ki), float(kr)) == pytest.approx((1.0, -dot / V2**2, 0.0))
    ka, ki, kr, case = adv.weights(s, 0.9, 0.5)
    assert int(case) == 3 and (float(ka), float(ki), float(kr)) == pytest.approx((-dot / V1**2, 1.0, 0.5))
    # no moments yet (t = 0): the fixed weights, not a division by zero
    ka, ki, kr, case = adv.weights(_state([0.0, 0.0], [0.0, 0.0], 0.0, 0.0, 0), 0.0, 1.0)
    assert int(case) == 0 and (float(ka), float(ki), float(kr)) == (1.0, 1.0, 0.0)


def test_fosc_against_brute_force_over_box_corners(x64):
    net = mlp((5, 1), input_shape=(3,))
    params = net.init(3, dtype=jnp.float64)
    rng = np.random.default_rng(4)
    X = jnp.asarray(rng.uniform(0.2, 0.8, (2, 3)))
    y = jnp.asarray([1.0, -1.0])
    lo, hi = X - 0.1, X + 0.1
    Xa = X + jnp.asarray(rng.uniform(-0.1, 0.1, X.shape))
    g = jax.grad(lambda x: jnp.sum(margin_loss(y * net.apply(params, x))))(Xa)
    corners = np.array(np.meshgrid(*[[0, 1]] * 3)).reshape(3, -1).T
    best = [max(float(((np.where(c, hi[i], lo[i]) - Xa[i]) * g[i]).sum()) for c in corners) for i in range(2)]
    assert float(fosc(net, params, Xa, y, lo, hi)) == pytest.approx(np.mean(best), rel=1e-10)
    assert float(fosc(net, params, Xa, y, lo, hi)) >= 0


def test_advibp_runs_its_phases_and_records_cases():
    W, A, X, Y = make_problem(seed=1, n=16, m=20, d=4, lo=0.1)
    net, p0 = two_layer(W, A)
    tr = fit(net, p0, X, Y, 0.05, objective="advibp", options=dict(t_nat=1, t_adv=1), lr=0.02, epochs=5,
             batch_size=4, metrics=("train_error", "certified_error"))
    s = tr.series
    assert s["case_warmup_nat"][1] == 1 and s["case_warmup_adv"][2] == 1
    assert s["case_init"][3] == 0.25  # the first joint step only: moments start at t = 1
    assert s["case_init"][4] == 0 and s["case_bisector"][3:].sum() + s["case_adv_priority"][3:].sum() \
        + s["case_ibp_priority"][3:].sum() == pytest.approx(2.75)  # 3 joint epochs, 4 steps each, less "init"
    assert np.all(np.abs(s["cos_adv_ibp"][3:]) <= 1 + 1e-12)
    fixed = fit(net, p0, X, Y, 0.05, objective="advibp_fixed", options=dict(t_nat=1, t_adv=1), lr=0.02, epochs=3,
                batch_size=4, metrics=("train_error",))
    assert fixed.series["case_fixed"][3] == 1 and fixed.meta["objective"] == "advibp_fixed"


# ------------------------------------------------------------------ methods do what they are for
@pytest.fixture(scope="module")
def trained():
    """Standard, IBP and PGD training of the paper's net on 2-vs-5 (n = 200, m = 300, ε = 0.003)."""
    ds = mnist25(200)
    W0, a = init_params(0, 300, ds.X.shape[1])
    net, p0 = two_layer(W0, a)
    out = {}
    for name in ("standard", "ibp", "pgd"):
        out[name] = fit(net, p0, ds.X, ds.y, 0.003, objective=name, lr=2e-3, epochs=10, batch_size=50,
                        record_every=5, options=dict(steps=5) if name == "pgd" else None, attack=AttackSettings(steps=20, restarts=1))
    return out


def test_error_ordering_clean_le_pgd_le_certified(trained):
    for name, tr in trained.items():
        s = tr.series
        full = np.isfinite(s["pgd_error"])
        assert full.sum() >= 2, name
        assert np.all(s["train_error"][full] <= s["pgd_error"][full]), name
        assert np.all(s["pgd_error"][full] <= s["certified_error_crown"][full]), name
        assert np.all(s["certified_error_crown"][full] <= s["certified_error_ibp"][full]), name


def test_pgd_training_beats_standard_under_pgd_and_ibp_under_ibp(trained):
    s = {k: v.series for k, v in trained.items()}
    # measured (seed 0): PGD error 0.075 (pgd) vs 0.13 (standard); IBP error 0.38 (ibp) vs 1.0
    assert s["pgd"]["pgd_error"][-1] <= s["standard"]["pgd_error"][-1] - 0.03
    assert s["ibp"]["certified_error_ibp"][-1] <= s["standard"]["certified_error_ibp"][-1] - 0.3


def test_fast_path_records_the_same_gradient_smoothness(x64):
    W, A, X, Y = make_problem(seed=6, n=10, m=20, d=3, lo=0.1)
    kw = dict(lr=0.05, epochs=3, batch_size=5, seed=1)
    fast = nf.train(W, A, X, Y, 0.02, **kw)
    net, p0 = two_layer(W, A)
    gen = fit(net, p0, X, Y, 0.02, objective="ibp", fast_path=False, **kw)
    for k in ("grad_l2_change", "grad_cos_distance"):
        assert np.isnan(fast.series[k][0])  # no step before t = 0
        np.testing.assert_allclose(fast.series[k][1:], gen.series[k][1:], rtol=1e-9, err_msg=k)
        assert np.all(np.isfinite(fast.series[k][1:]))


def test_float32_training_of_a_net_built_in_float64():
    """The paper's net built inside x64 carries a float64 a; a float32 run must still run in
    float32 (the frozen weights follow the params) and match float64 to float32 accuracy."""
    import jax

    W, A, X, Y = make_problem(seed=2, n=8, m=12, d=3, lo=0.1)
    with jax.enable_x64(True):
        net, p0 = two_layer(W, A)
    runs = {dt: fit(net, p0, X, Y, 0.05, objective="pgd", lr=0.02, epochs=2, batch_size=4, dtype=dt,
                    metrics=("train_error",)) for dt in ("float32", "float64")}
    np.testing.assert_allclose(runs["float32"].W, runs["float64"].W, rtol=1e-4, atol=1e-5)
