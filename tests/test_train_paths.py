"""The one host loop: ``training.fit`` on the paper's net takes the closed-form Sec. 3.4 epoch
exactly where ``fastpath.closed_form`` says, equals the generic engine step it replaces, and
records every registered metric on both paths."""

import jax
import numpy as np
import pytest

import ntkflow as nf
from conftest import make_problem
from ntkflow.metrics import METRICS
from ntkflow.nets import mlp, two_layer
from ntkflow.objectives import objective
from ntkflow.training.fastpath import closed_form
from ntkflow.training.fit import fit

W, A, X, Y = make_problem(seed=4, n=8, m=16, d=3, lo=0.1)


@pytest.mark.parametrize("name, options, eps, net, closed", [
    ("ibp", {}, 0.05, "two_layer", True),
    ("ibp", {}, 0.0, "two_layer", True),
    ("standard", {}, 0.0, "two_layer", True),
    ("standard", {}, 0.05, "two_layer", False),  # clean loss at ε > 0: its judged radius is not the record's
    ("ibp", {"regularize": True}, 0.05, "two_layer", False),
    ("ibp", {"clip": (0.0, 1.0)}, 0.05, "two_layer", False),
    ("crown_ibp", {}, 0.05, "two_layer", False),
    ("pgd", {}, 0.05, "two_layer", False),
    ("ibp", {}, 0.05, "mlp", False),
])
def test_the_closed_form_is_taken_exactly_for_plain_ibp_and_clean_training_of_the_paper_net(name, options, eps,
                                                                                            net, closed):
    n = two_layer(W, A)[0] if net == "two_layer" else mlp((4, 1), input_shape=(3,))
    assert closed_form(n, objective(name, **options), eps) is closed


@pytest.fixture(scope="module")
def ibp_runs():
    """nf.train (fast path) and fit with the fast path switched off, costly metrics every 2nd record."""
    kw = dict(lr=0.05, epochs=4, batch_size=4, seed=3, eps_schedule={"warmup": 1, "ramp": 1})
    fast = nf.train(W, A, X, Y, 0.05, **kw, fit_options={"attack_every": 2})
    with jax.enable_x64(True):  # W and a stay float64
        net, p0 = two_layer(W, A)
    gen = fit(net, p0, X, Y, 0.05, objective="ibp", attack_every=2, fast_path=False, **kw)
    return fast, gen


def test_ibp_on_the_paper_net_records_every_metric_and_loss_variation_equals_the_generic_path(ibp_runs):
    fast, gen = ibp_runs
    assert fast.meta["fast_path"] and not gen.meta["fast_path"]
    every = {m.name for m in METRICS.values() if "opt_in" not in m.needs}
    assert every <= set(fast.series) and every <= set(gen.series)
    full = [0, 2, 4]  # t = 0, every 2nd record, the last
    lv = fast.series["loss_variation"]
    assert np.all(np.isfinite(lv[full])) and np.all(lv[full] > 0)
    assert np.all(np.isnan(np.delete(lv, full)))
    np.testing.assert_allclose(lv, gen.series["loss_variation"], rtol=1e-9, atol=1e-12)
    for k in ("pgd_error", "certified_error_crown", "certified_error_ibp", "relaxed_jacobian"):
        np.testing.assert_allclose(fast.series[k], gen.series[k], rtol=1e-9, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(fast.W, gen.W, rtol=0, atol=1e-12)


def test_the_paper_net_records_its_path_length_on_every_method(ibp_runs):
    """``mean_path_length`` is the trainer's, not the fast path's: a PGD run of the paper's net has it too."""
    fast, gen = ibp_runs
    np.testing.assert_allclose(fast.series["mean_path_length"], gen.series["mean_path_length"], rtol=1e-10)
    pgd = nf.train(W, A, X, Y, 0.05, lr=0.05, epochs=2, batch_size=4, objective="pgd", keep_W=True,
                   options={"steps": 3})
    assert not pgd.meta["fast_path"]
    steps = np.linalg.norm(np.diff(pgd.W_saved, axis=0), axis=2)
    np.testing.assert_allclose(pgd.series["mean_path_length"], np.concatenate([[0.0], np.cumsum(steps, 0).mean(1)]),
                               rtol=1e-10, atol=1e-15)


def test_keep_W_needs_the_paper_net():
    net = mlp((4, 1), input_shape=(3,))
    with pytest.raises(ValueError, match="keep_W"):
        fit(net, net.init(0, (3,)), X, Y, 0.05, lr=0.1, epochs=1, keep_W=True)


def _same_trajectory(a, b):
    """Bit-identical runs: times, every series, the final params and the run's meta."""
    np.testing.assert_array_equal(a.ts, b.ts)
    assert set(a.series) == set(b.series)
    for k in a.series:
        np.testing.assert_array_equal(a.series[k], b.series[k], err_msg=k)
    for u, v in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)):
        np.testing.assert_array_equal(u, v)
    assert a.meta == b.meta


def test_settings_objects_train_exactly_as_the_flat_keywords():
    """``fit`` with the settings objects passed whole is the run its flat keywords give, and a
    concern set both ways, or a bad field, is a one-line error naming the field."""
    from ntkflow import NtkflowError
    from ntkflow.objectives import BetaFromEps, Ramp
    from ntkflow.training.settings import (FitSettings, OptimSettings, RecordSettings, ScheduleSettings, StopRule,
                                           fit_settings)

    net = mlp((4, 1), input_shape=(3,))
    p0 = net.init(0, (3,))
    flat = dict(optimizer="momentum", lr=0.05, epochs=3, batch_size=4, momentum=0.5, seed=2,
                eps_schedule={"warmup": 1, "ramp": 1}, beta_schedule=BetaFromEps(1.0, 0.5), reg_weight=0.2,
                record_every=2, attack_every=1, metrics=("train_error", "certified_error"), tie="half")
    objects = dict(optim=OptimSettings(optimizer="momentum", lr=0.05, epochs=3, batch_size=4, momentum=0.5, seed=2),
                   schedule=ScheduleSettings(eps_schedule=Ramp(1, 1), beta_schedule=BetaFromEps(1.0, 0.5),
                                             reg_weight=0.2),
                   record=RecordSettings(record_every=2, attack_every=1, metrics=("train_error", "certified_error"),
                                         tie="half"))
    stop = StopRule(patience=1, rel_tol=0.5)
    assert fit_settings(**flat, stop=stop) == FitSettings(**objects, stop=stop)  # every field lands in its object
    common = dict(objective="crown_ibp", stop=stop)  # β enters the CROWN-IBP mix
    a = fit(net, p0, X, Y, 0.05, **common, **flat)
    b = fit(net, p0, X, Y, 0.05, **common, **objects)
    _same_trajectory(a, b)
    assert a.ts[-1] < 3 or a.ts.tolist() == [0, 2, 3]  # the records of record_every=2 (or the stop rule's end)
    # the paper's front door passes the same objects: its flat keywords equal fit on the objects
    with jax.enable_x64(True):
        net2, p2 = two_layer(W, A)  # float64 W, as nf.train builds it
    c = nf.train(W, A, X, Y, 0.05, lr=0.05, epochs=2, batch_size=4, seed=1, record_every=2)
    d = fit(net2, p2, X, Y, 0.05, optim=OptimSettings(lr=0.05, epochs=2, batch_size=4, seed=1),
            record=RecordSettings(record_every=2))
    np.testing.assert_array_equal(c.W, d.W)
    np.testing.assert_array_equal(c.loss, d.loss)

    def one_line(match, **kw):
        with pytest.raises(NtkflowError, match=match) as info:
            fit(net, p0, X, Y, 0.05, **kw)
        assert "\n" not in str(info.value)

    one_line("^lr: set both as a keyword and by optim=", optim=objects["optim"], lr=0.1)
    one_line("^tie: set both as a keyword and by record=", record=objects["record"], tie="wrong", lr=0.1, epochs=1)
    one_line("^lrr: unknown setting", lrr=0.1, epochs=1)
    one_line("^optim: expected a OptimSettings, got dict", optim={"lr": 0.1})
    one_line("^lr: required", epochs=1)
    one_line(r"^batch_size: must be in \[1, n=8\]", optim=OptimSettings(lr=0.1, epochs=1, batch_size=9))
    for make, field in ((lambda: OptimSettings(lr=-1.0, epochs=1), "lr"),
                        (lambda: OptimSettings(lr=0.1, epochs=0), "epochs"),
                        (lambda: OptimSettings(lr=0.1, epochs=1, momentum=1.0), "momentum"),
                        (lambda: OptimSettings(lr=0.1, epochs=1, dtype="float16"), "dtype"),
                        (lambda: ScheduleSettings(reg_weight=-1.0), "reg_weight"),
                        (lambda: ScheduleSettings(eps_schedule={"begin": 1}), "eps_schedule"),
                        (lambda: ScheduleSettings(beta_schedule=0.5), "beta_schedule"),
                        (lambda: RecordSettings(record_every=0), "record_every"),
                        (lambda: RecordSettings(tie="coin"), "tie"),
                        (lambda: RecordSettings(keep_W="yes"), "keep_W")):
        with pytest.raises(NtkflowError, match=f"^{field}: ") as info:
            make()
        assert "\n" not in str(info.value)
