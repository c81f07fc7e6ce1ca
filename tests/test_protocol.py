"""The Figure 1 protocol — lr grid and selection rule, stopping rule, tie rule,
dead-net statistics, both metrics in tables and figures, the findings page."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

import ntkflow as nf
from ntkflow.cli import main
from ntkflow.sweep import load_config, read_table, run_sweep
from ntkflow.sweep import cells as C
from ntkflow.sweep.protocol import select_run
from ntkflow.paper.tracker import error_rate, tracker
from ntkflow.training.settings import StopRule, Plateau


# ----------------------------------------------------------------------------- selection rule
def _s(lr, loss, err=0.1, diverged=False):
    return {"lr": lr, "diverged": diverged, "final_loss": loss, "final_objective_error": err}


def test_select_prefers_lowest_training_loss_skips_diverged_and_breaks_ties_to_smaller_lr():
    runs = [_s(1e-3, 5.0), _s(1e-2, 2.0), _s(1e-1, np.nan, diverged=True)]
    assert select_run(runs, "final_train_loss") == 1
    assert select_run([_s(1e-2, 2.0), _s(1e-3, 2.0)], "final_train_loss") == 1  # tie → smaller lr
    assert select_run([_s(1e-1, np.nan, diverged=True), _s(1e-3, np.nan, diverged=True)], "final_train_loss") == 1
    assert select_run([_s(1e-3, 5.0, 0.0), _s(1e-2, 2.0, 0.3)], "final_train_error") == 0
    with pytest.raises(ValueError, match="select: unknown rule"):
        select_run(runs, "final_test_error")


def test_the_choice_never_reads_test_data(config, monkeypatch):
    cfg = load_config(config, ["train.lr=[0.001, 0.01, 0.1]", "grid.width=[20]"])
    cell = next(c for c in C.cells_of(cfg) if c.method == "ibp")
    rec = C.run_cell(cfg, cell)
    real = C.dataset_for

    def flipped(cfg, eps):  # same training data, test labels flipped
        ds = real(cfg, eps)
        return nf.data.Dataset(X=ds.X, y=ds.y, name=ds.name, X_test=ds.X_test, y_test=-ds.y_test)

    monkeypatch.setattr(C, "dataset_for", flipped)
    rec2 = C.run_cell(cfg, cell)
    assert rec2["final"]["lr"] == rec["final"]["lr"] and rec2["lr_grid"] == rec["lr_grid"]
    assert str(rec2["series"]) == str(rec["series"])  # str: NaN series compare equal
    assert rec2["final"]["final_test_error"] != rec["final"]["final_test_error"]
    # the kept run is the one with the lowest final training loss of the grid
    ok = [g for g in rec["lr_grid"] if not g["diverged"]]
    assert rec["final"]["lr"] == min(ok, key=lambda g: g["final_loss"])["lr"]
    assert rec["final"]["final_loss"] == min(g["final_loss"] for g in ok)


# ----------------------------------------------------------------------------- stopping rule
def test_plateau_rule_counts_patience_and_stops_below_abs_tol():
    p = Plateau(StopRule(patience=3, rel_tol=0.1, abs_tol=0.0), n=10)
    assert [p(v) for v in (100.0, 95.0, 95.0, 89.0, 89.0, 89.0, 89.0)] == [False, False, False, False, False, False,
                                                                             True]
    assert Plateau(StopRule(patience=5, abs_tol=1e-3), n=100)(0.05) is True  # mean loss 5e-4 < 1e-3
    with pytest.raises(ValueError, match="stop.patience"):
        StopRule(patience=0)


W, A, X, Y = (np.asarray(v) for v in (nf.init_params(1, 30, 5) + (np.random.default_rng(1).uniform(0.1, 1, (8, 5)),
                                                                   np.array([1.0, -1] * 4))))


def test_training_stops_on_a_plateau_and_says_converged():
    tr = nf.train(W, A, X, Y, 0.02, lr=1e-14, epochs=50, batch_size=4, stop={"patience": 4})
    assert tr.meta["converged"] is True and tr.meta["epochs_run"] == 5 and tr.ts[-1] == 5
    full = nf.train(W, A, X, Y, 0.02, lr=1e-14, epochs=7, batch_size=4)
    assert full.meta["converged"] is False and full.meta["epochs_run"] == 7
    # armed only once ε reached its target: warm-up 3 + ramp 2 epochs, then 1 + patience
    tr = nf.train(W, A, X, Y, 0.02, lr=1e-14, epochs=50, batch_size=4, stop={"patience": 2},
                  eps_schedule={"warmup": 3, "ramp": 2})
    assert tr.meta["epochs_run"] == 5 + 1 + 2


# ----------------------------------------------------------------------------- ties and dead nets
def test_error_rate_tie_rules():
    u = np.array([1.0, -2.0, 0.0, 0.0, 0.0])
    y = np.array([1.0, 1.0, 1.0, -1.0, -1.0])
    assert error_rate(u, y, "wrong") == pytest.approx(4 / 5)
    assert error_rate(u, y, "positive") == pytest.approx(3 / 5)  # f = 0 predicts +1: the y = +1 tie is right
    assert error_rate(u, y, "half") == pytest.approx(2.5 / 5)
    assert np.isnan(error_rate(np.array([np.nan, 1.0]), y[:2]))


def test_dead_net_statistics_against_brute_force():
    rng = np.random.default_rng(0)
    X = rng.uniform(0.1, 1, (9, 4))
    y = np.where(np.arange(9) % 2 == 0, 1.0, -1.0)
    W = rng.standard_normal((12, 4))
    W[:5] = -np.abs(W[:5])  # five neurons inactive on every (positive) input
    a = rng.choice([-1.0, 1.0], 12)
    with jax.enable_x64(True):
        rec = tracker(*(jax.numpy.asarray(v) for v in (W, a, X, y)), 0.0, gram=False)(jax.numpy.asarray(W))
    pre = X @ W.T
    assert rec["dead_fraction"] == pytest.approx(np.mean(np.all(pre <= 0, axis=0)))
    assert rec["dead_fraction"] >= 5 / 12
    assert rec["zero_output_fraction"] == pytest.approx(np.mean(np.all(pre <= 0, axis=1)))
    # a fully dead net: f ≡ 0, so the tie rule alone decides its error
    Wd = -np.abs(W)
    for tie, expect in (("wrong", 1.0), ("half", 0.5), ("positive", np.mean(y < 0))):
        with jax.enable_x64(True):
            r = tracker(*(jax.numpy.asarray(v) for v in (Wd, a, X, y)), 0.0, gram=False, tie=tie)(
                jax.numpy.asarray(Wd))
        assert r["zero_output_fraction"] == 1.0 and r["dead_fraction"] == 1.0
        assert r["train_error"] == pytest.approx(expect)


# ----------------------------------------------------------------------------- sweep, figures, findings
def test_lr_grid_sweep_table_figures_and_findings(config, tmp_path, monkeypatch):
    out = tmp_path / "grid"
    cfg = load_config(config, ["train.lr=[0.003, 0.03]", "train.epochs=6", "train.stop={patience=2}",
                               "grid.seed=[0, 1]"])
    run_sweep(cfg, out, quiet=True)
    rows = read_table(out / "results.csv")
    assert len(rows) == len(C.cells_of(cfg))  # one row per cell, not per lr
    assert {r["lr"] for r in rows} <= {0.003, 0.03}
    for col in ("converged", "epochs_run", "diverged", "dead_fraction_final", "final_train_error_tie_half"):
        assert col in rows[0]
    rec = json.loads(next((out / "cells").glob("ibp-m40-eps0.05-s1-*.json")).read_text())
    assert [g["lr"] for g in rec["lr_grid"]] == [0.003, 0.03]
    import ntkflow.reporting.plots as P

    captured = {}
    real_save = P.save
    monkeypatch.setattr(P, "save", lambda fig, path: captured.setdefault(Path(path).name, fig) and real_save(fig, path))
    names = {p.name for p in P.figures(out)}
    assert {"fig1a.png", "fig_lr_grid.png"} <= names
    # the test panel's points are the table's means of the test errors
    lines = {c.get_label(): c.lines[0] for c in captured["fig1a"].axes[1].containers}
    for w, v in zip(*lines["IBP, ε = 0.05 (clean)"].get_data()):
        vals = [r["final_test_error"] for r in rows if r["method"] == "ibp" and r["width"] == w and r["eps"] == 0.05]
        assert v == pytest.approx(np.mean(vals))
    # findings: the claim-2-style numbers are the table's
    from ntkflow.reporting.findings import Protocol, findings

    p = Protocol("tiny", out)
    iv = p.stat("final_certified_error", "ibp", 40, 0.05)
    vals = [r["final_certified_error"] for r in rows if r["method"] == "ibp" and r["width"] == 40 and r["eps"] == 0.05]
    n = rows[0]["n_train"]
    assert iv.n == 2 * n and iv.k == round(sum(vals) * n) and iv.value == pytest.approx(np.mean(vals))
    page = findings({"tiny": out})
    from ntkflow._core.stats import Interval

    assert "Claim 1" in page and Interval.fmt(iv, 3, percent=True) in page  # the table's pooled count
    target = tmp_path / "F.md"
    assert main(["findings", f"tiny={out}", "--out", str(target)]) == 0
    assert target.read_text().startswith("# Findings")
    assert main(["findings", str(out)]) == 2  # not LABEL=DIR


@pytest.mark.parametrize("override,match", [
    ("train.lr=[0.1, 0.1]", "distinct"),
    ("train.lr=[0.1, -1.0]", "train.lr must be > 0"),
    ("train.select='final_test_error'", "train.select is 'final_test_error'"),
    ("train.stop={patience=0}", "stop.patience"),
    ("train.stop={wait=3}", "train.stop has unknown keys"),
    ("track.tie='coin'", "track.tie is 'coin'"),
])
def test_protocol_config_errors(config, override, match):
    with pytest.raises(ValueError, match=match):
        load_config(config, [override])


def test_methods_verdicts_are_read_from_the_interval_of_the_difference():
    from ntkflow._core.stats import Interval, rate
    from ntkflow.reporting.findings import _verdict

    a, b = rate(10, 300), rate(60, 300)
    assert _verdict(a, b, "lower").startswith("supported (lower")
    assert _verdict(b, a, "lower").startswith("contradicted")
    assert _verdict(rate(55, 300), b, "lower").startswith("not distinguishable")
    one = Interval(0.1, float("nan"), float("nan"), 1)
    assert _verdict(one, Interval(0.2, 0.1, 0.3, 3), "lower").startswith("one seed, no interval")
    assert _verdict(Interval(float("nan"), 0, 0, 0), b, "lower") == "not measured"
