"""A training method is one class plus one ``register``: a toy objective defined here runs
through ``fit`` and through ``ntkflow sweep`` with no other change; unknown options are errors."""

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import pytest

import ntkflow.objectives as O
from ntkflow.bounds import clean_margins
from ntkflow.cli import main
from ntkflow.training.fit import fit
from ntkflow.nets import two_layer
from ntkflow.objectives.methods import loss_step
from ntkflow.paper import init_params, margin
from ntkflow.sweep import read_table


@dataclass(frozen=True)
class Hinge:
    """Σ_i relu(margin − u_i) on the clean margins: a method the package does not know."""

    margin: float = 1.0
    aux_keys: tuple = ()

    def init(self, params):
        return ()

    def step(self, net, params, state, X, y, ctx):
        return loss_step(lambda p: jnp.sum(jnp.maximum(self.margin - clean_margins(net, p, X, y), 0.0)), params, state)


@pytest.fixture
def hinge():
    O.register("toy_hinge", lambda margin=1.0: Hinge(margin))
    yield
    O.unregister("toy_hinge")


def _problem(n=12, d=6, m=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 1.0, (n, d))
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    W, a = init_params(seed, m, d)
    return W, a, X, y


def test_registered_objective_trains_through_fit(hinge):
    W, a, X, y = _problem()
    net, p0 = two_layer(W, a)
    tr = fit(net, p0, X, y, 0.0, objective="toy_hinge", options={"margin": 2.0}, lr=0.05, epochs=4, dtype="float64")
    # the recorded loss is the toy's own loss (its step's loss on the whole set, the default judged loss)
    expected0 = np.sum(np.maximum(2.0 - margin(W, a, X, y), 0.0))
    assert tr.series["loss"][0] == pytest.approx(expected0, rel=1e-6)  # two_layer() stores float32 params
    assert tr.series["loss"][-1] < tr.series["loss"][0]
    assert "certified_error" in tr.series and "train_error" in tr.series  # every metric has a series


def test_unknown_option_is_a_one_line_error_not_dropped(hinge):
    with pytest.raises(ValueError, match=r"^objective: 'toy_hinge' has no option 'margn' \(its options: margin\)$"):
        O.objective("toy_hinge", margn=2.0)
    with pytest.raises(ValueError, match="'standard' has no option 'steps'"):
        O.objective("standard", steps=5)


def test_register_refuses_builders_that_would_drop_options():
    with pytest.raises(ValueError, match=r"\*\*kwargs"):
        O.register("toy_bad", lambda **kw: Hinge())
    with pytest.raises(ValueError, match="already registered"):
        O.register("ibp", lambda: Hinge())
    with pytest.raises(ValueError, match="needs a default"):
        O.register("toy_bad", lambda margin: Hinge(margin))
    assert "toy_bad" not in O.names()


_CONFIG = """
[data]
source = "synthetic"
n_train = 12
n_test = 6
d = 6
[grid]
method = ["toy_hinge", "ibp"]
width = [20]
eps = [0.01]
seed = [0]
[train]
lr = 0.01
epochs = 2
batch_size = 4
dtype = "float64"
{extra}
"""


def test_registered_objective_runs_through_the_sweep_with_its_own_options(hinge, tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(_CONFIG.format(extra="[objective.toy_hinge]\nmargin = 3.0\n"))
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "out")]) == 0
    rows = {r["method"]: r for r in read_table(tmp_path / "out" / "results.csv")}
    assert set(rows) == {"toy_hinge", "ibp"}
    assert np.isfinite(rows["toy_hinge"]["final_loss"])
    # its loss is the hinge at margin 3 (≥ 3 per sample less the margins): far above IBP's logistic loss
    assert rows["toy_hinge"]["final_loss"] > 12 * 2.0 > rows["ibp"]["final_loss"]


def test_sweep_refuses_unknown_method_options(hinge, tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(_CONFIG.format(extra="[objective.toy_hinge]\nmargn = 3.0\n"))
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "objective.toy_hinge.margn" in err
    cfg.write_text(_CONFIG.format(extra="[objective.nope]\nx = 1\n"))
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "out2")]) == 2
    assert "[objective.nope] names no registered method" in capsys.readouterr().err


# ---------------------------------------------------------------- a metric is one register
@pytest.fixture
def mean_margin_metric():
    from ntkflow import metrics as M

    M.register(M.Metric("toy_mean_margin", lambda p: float(np.mean(np.asarray(p.clean))), "mean clean margin",
                        final="final_toy_mean_margin"))
    yield
    M.unregister("toy_mean_margin")


def test_registered_metric_is_a_series_of_fit_on_the_paper_net(mean_margin_metric):
    W, a, X, y = _problem()
    net, p0 = two_layer(W, a)
    tr = fit(net, p0, X, y, 0.01, objective="ibp", lr=0.05, epochs=3, dtype="float64")
    assert tr.series["toy_mean_margin"][0] == pytest.approx(np.mean(margin(W, a, X, y)), rel=1e-6)
    assert len(tr.series["toy_mean_margin"]) == len(tr.series["loss"])


def test_registered_metric_is_a_results_column_of_a_sweep(mean_margin_metric, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(_CONFIG.format(extra="").replace('"toy_hinge", ', ""))
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "out")]) == 0
    (row,) = read_table(tmp_path / "out" / "results.csv")
    assert np.isfinite(row["final_toy_mean_margin"])


def test_sweep_checks_option_values_before_it_writes(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(_CONFIG.format(extra="[objective.advibp]\nbeta1 = 2.0\n").replace('"toy_hinge", ', '"advibp", '))
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "method 'advibp'" in err and "beta1" in err
    assert not (tmp_path / "out").exists()  # refused before the directory and its lock exist


@dataclass(frozen=True)
class Phased(Hinge):
    """The hinge, declaring that its phases switch by epoch (as fan2021's AdvIBP does)."""

    phases_by_epoch = True


def test_a_method_that_switches_phase_by_epoch_gets_the_warm_up_schedule_by_declaring_it():
    from ntkflow.sweep.build import eps_schedule
    from ntkflow.sweep.config import resolve

    O.register("toy_phased", lambda margin=1.0: Phased(margin))
    try:
        cfg = resolve({"grid": {"method": ["toy_phased", "ibp"]},
                       "train": {"t_nat": 2.0, "t_adv": 3.0, "eps_ramp": 4.0, "eps_warmup": 1.0}})
        assert eps_schedule(cfg, "toy_phased") == O.FanWarmup(2.0, 3.0, 4.0)
        assert eps_schedule(cfg, "ibp") == O.Ramp(1.0, 4.0)
        assert eps_schedule(cfg, "advibp") == O.FanWarmup(2.0, 3.0, 4.0)  # the built-in one declares it too
    finally:
        O.unregister("toy_phased")
