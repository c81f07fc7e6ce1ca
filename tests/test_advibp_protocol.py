"""The sweep gives AdvIBP fan2021's warm-up: the FGSM phase [t_nat, t_nat + t_adv) runs at the target ε."""

import numpy as np
import pytest

from ntkflow.sweep.build import eps_schedule
from ntkflow.sweep.config import DEFAULTS


def _cfg(**train):
    t = dict(DEFAULTS["train"])
    t.update(train)
    return {"train": t}


@pytest.mark.parametrize("method", ["advibp", "advibp_fixed"])
def test_fgsm_warmup_at_target_eps(method):
    # the methods.toml setting: a ramp schedule by default, eps_warmup shorter than t_nat + t_adv
    cfg = _cfg(t_nat=2.0, t_adv=2.0, eps_warmup=1.0, eps_ramp=4.0)
    sch = eps_schedule(cfg, method)
    target = 0.04
    assert sch(0.5, target) == 0.0 and sch(1.9, target) == 0.0  # clean warm-up
    for e in np.linspace(2.0, 3.99, 7):  # FGSM warm-up at ε_train (Alg. 2)
        assert sch(float(e), target) == pytest.approx(target)
    assert sch(4.0, target) == 0.0 and sch(6.0, target) == pytest.approx(target / 2)  # joint: ramp from 0
    assert sch(100.0, target) == pytest.approx(target)


def test_other_methods_keep_the_ramp():
    cfg = _cfg(t_nat=2.0, t_adv=2.0, eps_warmup=1.0, eps_ramp=4.0)
    sch = eps_schedule(cfg, "ibp")
    assert sch(0.5, 0.04) == 0.0 and sch(3.0, 0.04) == pytest.approx(0.02)


# ------------------------------------------------------------------ the stop rule under fan2021's warm-up
def test_stop_rule_armed_after_the_last_departure_from_the_target():
    from ntkflow.objectives import Constant, FanWarmup, Ramp
    from ntkflow.training.settings import armed_from

    from ntkflow.training.settings import schedule_fn

    def at(schedule, epochs):
        return armed_from(schedule_fn(schedule, 0.04), 0.04, epochs)

    # FanWarmup visits the target in [t_nat, t_nat + t_adv) and leaves it: armed after the ramp
    assert at(FanWarmup(2.0, 2.0, 8.0), 50) == 12
    assert at(Ramp(2.0, 8.0), 50) == 10
    assert at(Constant(), 50) == 0
    assert at(FanWarmup(2.0, 2.0, 80.0), 50) == 50  # the budget ends in the ramp: never armed


def test_fixed_baseline_is_not_stopped_during_the_fgsm_warmup(x64):
    """A stop rule that fires at its first armed epoch (abs_tol huge) ends the run right after
    the ramp, not in the FGSM warm-up (which runs at the target ε)."""
    from conftest import make_problem
    from ntkflow.training.fit import fit
    from ntkflow.nets import two_layer
    from ntkflow.objectives import FanWarmup

    W, A, X, Y = make_problem(seed=1, n=16, m=20, d=4, lo=0.1)
    net, p0 = two_layer(W, A)
    tr = fit(net, p0, X, Y, 0.05, objective="advibp_fixed", options=dict(t_nat=1, t_adv=2, ramp=3), lr=0.02,
             epochs=20, batch_size=4, eps_schedule=FanWarmup(1.0, 2.0, 3.0),
             stop=dict(patience=1, rel_tol=0.0, abs_tol=1e9), metrics=("train_error", "certified_error"))
    assert tr.meta["converged"] and tr.meta["epochs_run"] == 1 + 2 + 3 + 1


# ------------------------------------------------------------------ the loss the stop rule watches
def test_advibp_step_loss_is_the_unweighted_joint_loss(x64):
    """AdvIBP's step loss is L_adv + L̄_IBP whatever κ its moments give (here the bisector
    weights κ = γ/v ≠ 1), so the stop rule reads the same quantity as the baseline's."""
    import jax
    import jax.numpy as jnp

    from conftest import make_problem
    from ntkflow.nets import two_layer
    from ntkflow.objectives import Context
    from ntkflow.objectives.advibp import AdvIBP, AdvIBPState
    from ntkflow.objectives.methods import attack_points, bound_loss, clean_loss

    W, A, X, Y = make_problem(seed=2, n=8, m=10, d=4, lo=0.1)
    net, p0 = two_layer(W, A)
    X, Y = jnp.asarray(X), jnp.asarray(Y)
    ctx = Context(jnp.asarray(0.05), jnp.asarray(1.0), jnp.asarray(0.0), jax.random.PRNGKey(3), jnp.asarray(5.0),
                  jnp.asarray(0.5))
    m = jax.tree_util.tree_map(lambda v: 0.3 * jnp.ones_like(v), p0)
    state = AdvIBPState(m, m, jnp.asarray(7.0), jnp.asarray(0.2), jnp.asarray(3))  # κ far from 1
    step = AdvIBP(t_nat=1.0, t_adv=1.0).step(net, p0, state, X, Y, ctx)
    assert int(step.aux["case"]) == 1 and abs(float(step.aux["kappa_adv"]) - 1) > 0.1
    X_adv = attack_points(net, p0, X, Y, ctx.eps, ctx.key, attack="fgsm", steps=1, step_size=None, restarts=1,
                          alpha=1.25, clip=None)
    want = clean_loss(net, p0, X_adv, Y) + bound_loss(net, p0, X, Y, ctx.eps, "ibp", clip=None)
    assert float(step.loss) == pytest.approx(float(want), rel=1e-10)
