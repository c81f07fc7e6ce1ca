"""The findings page: intervals from counts, verdicts from intervals, and the readings of the
papers it prints (synthetic sweep directories in tmp_path, and the stored sweeps in findings/)."""

import copy
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from ntkflow._core.stats import clopper_pearson, rate
from ntkflow.reporting.findings import (Protocol, _dead, _trend, _verdict, budget_bound, chance_error, claim3_readings,
                              drift_rate, findings, initialization_section, methods_section)
from ntkflow._core.stats import chance_interval

ROOT = Path(__file__).resolve().parents[1]
STORED = ROOT / "findings"
BASE = json.loads((STORED / "warmup" / "config.json").read_text())

COLUMNS = ("method", "width", "eps", "seed", "final_train_error", "final_certified_error", "final_loss",
           "final_test_error", "final_test_certified_error", "diverged", "lr", "converged", "epochs_run",
           "dead_fraction_final", "zero_output_fraction_final", "final_train_error_tie_positive",
           "final_certified_error_tie_positive", "final_train_error_tie_half", "final_certified_error_tie_half",
           "n_train", "backend", "jax_version")


def _row(method="ibp", width=100, eps=0.001, seed=0, err=0.0, cert=0.0, **kw):
    r = dict(method=method, width=width, eps=eps, seed=seed, final_train_error=err, final_certified_error=cert,
             final_loss=1.0, final_test_error=0.0, final_test_certified_error=0.0, diverged=False, lr=0.01,
             converged=True, epochs_run=100, dead_fraction_final=0.0, zero_output_fraction_final=0.0,
             final_train_error_tie_positive=err, final_certified_error_tie_positive=cert,
             final_train_error_tie_half=err, final_certified_error_tie_half=cert, n_train=800, backend="cpu",
             jax_version="0")
    r.update(kw)
    return r


def _sweep(tmp_path, rows, name="s", data=None, train=None):
    d = tmp_path / name
    (d / "cells").mkdir(parents=True)
    cfg = copy.deepcopy(BASE)
    cfg["data"].update(data or {})
    cfg["train"].update(train or {})
    (d / "config.json").write_text(json.dumps(cfg))
    with open(d / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return d


# ----------------------------------------------------------------------------- item 2: counts and intervals
def test_a_cell_error_is_the_pooled_count_with_its_clopper_pearson_interval(tmp_path):
    p = Protocol("t", _sweep(tmp_path, [_row(seed=s) for s in range(3)]))
    iv = p.stat("final_certified_error", "ibp", 100, 0.001)
    assert (iv.k, iv.n, iv.lo) == (0, 2400, 0.0)
    assert iv.hi == pytest.approx(clopper_pearson(0, 2400)[1]) and 0.0015 < iv.hi < 0.0016  # [0, 0.15%]


def test_a_small_count_with_equal_seeds_is_not_a_real_rise(tmp_path):
    # 1 error of 800 at every seed vs 0: equal seeds give a zero standard error, so "2 s.e." called it a rise
    rows = [_row(width=100, seed=s) for s in range(3)] + [_row(width=2000, seed=s, cert=1 / 800) for s in range(3)]
    text = _trend(Protocol("t", _sweep(tmp_path, rows)))
    assert text.startswith("certified training error is flat") and "3/2400" in text


def test_held_out_errors_carry_the_binomial_error_of_the_one_test_set(tmp_path):
    rows = [_row(seed=s, final_test_certified_error=0.1) for s in range(3)]
    iv = Protocol("t", _sweep(tmp_path, rows)).stat("final_test_certified_error", "ibp", 100, 0.001)
    lo, hi = clopper_pearson(20, 200)  # 200 images however many seeds, not 600
    assert iv.value == pytest.approx(0.1) and iv.lo <= lo and iv.hi >= hi and hi - lo > 0.08


def test_seeds_are_read_from_the_data_and_no_plus_minus_zero_is_printed(tmp_path):
    rows = [_row(method=m, seed=s) for m in ("standard", "ibp") for s in (0, 1)]
    page = findings({"two": _sweep(tmp_path, rows)}, init=False)
    assert "seeds per cell: 2 (0, 1)" in page and "`two` 2" in page
    assert "± 0.000" not in page and "±" not in page


def test_the_committed_page_and_preface_state_intervals_and_the_seed_counts():
    page = (ROOT / "FINDINGS.md").read_text()
    preface = (ROOT / "docs" / "findings_preface.md").read_text()
    assert "± 0.000" not in page and "2 s.e." not in page
    assert "`warm-up` 2" in page and "three seeds per cell" not in preface


# ----------------------------------------------------------------------------- item 3: finite training time
def test_initialization_section_reports_initial_loss_and_gradient_flow_time(tmp_path):
    from ntkflow.data import load
    from ntkflow.paper.initialization import initial_loss

    data = dict(source="synthetic", n_train=12, n_test=6, d=6, normalize=False)
    rows = [_row(width=w, seed=s, n_train=12, lr=0.05, epochs_run=30) for w in (20, 80) for s in (0, 1)]
    p = Protocol("syn", _sweep(tmp_path, rows, data=data, train={"batch_size": 4}))
    text = "\n".join(initialization_section([p], eps_grid=(0.001, 0.04), seeds=4, samples=2_000))
    ds = load("synthetic", n=12, n_test=6, d=6, normalize=False)
    l0 = initial_loss(ds.X, ds.y, 0.001, 80, seeds=range(4))
    assert f"| 80 | {l0.fmt(3)} |" in text
    assert "| 4.5; " in text  # lr × steps = 0.05 × 30 epochs × ceil(12/4) steps
    preface = (ROOT / "docs" / "findings_preface.md").read_text()
    assert "would only train faster" not in preface and "artefact of one learning rate" not in preface


# ----------------------------------------------------------------------------- item 4: dead nets
def test_dead_nets_state_the_epochs_run_and_the_lr_runs_that_died():
    text = "; ".join(_dead(Protocol("tuned", STORED / "protocol_gpu")))
    assert "ε = 0.04, m = 100:" in text and "after 61–66 epochs" in text  # not "after 200 epochs"
    assert "ε = 0.04, m = 20,000:" in text and "dead at 9/15 runs of the lr grid" in text  # not "every lr"
    fixed = "; ".join(_dead(Protocol("fixed", STORED / "fixed_lr")))
    assert "alive at ε ≥ 0.04" in fixed and "m = 20,000" in fixed.split("alive at")[1]
    preface = (ROOT / "docs" / "findings_preface.md").read_text()
    assert "at every lr of the grid" not in preface and "a reason the paper does not name" not in preface


# ----------------------------------------------------------------------------- item 5: claim 3's readings
def test_claim3_is_judged_under_each_tie_reading(tmp_path):
    rows = [_row(width=w, eps=0.16, seed=s, err=1.0, cert=1.0, zero_output_fraction_final=1.0,
                 final_train_error_tie_half=0.5, final_certified_error_tie_half=0.5,
                 final_train_error_tie_positive=0.5, final_certified_error_tie_positive=0.51)
            for w in (2000, 5000) for s in range(3)]
    res = {name: near for name, _, near in claim3_readings(Protocol("t", _sweep(tmp_path, rows)), 0.16)}
    assert res == {"tie = error": False, "coin flip": True, "constant classifier": True}


# ----------------------------------------------------------------------------- item 6: budget-bound
def test_claim2_says_budget_bound_when_no_cell_at_large_eps_converged(tmp_path):
    rows = [_row(width=w, eps=e, seed=s, converged=False, epochs_run=200, cert=0.1)
            for w in (500, 2000) for e in (0.04, 0.08) for s in (0, 1)]
    p = Protocol("t", _sweep(tmp_path, rows, train={"epochs": 200, "lr": [0.001, 0.01]}))
    note = budget_bound(p)
    assert note.startswith("budget-bound: none of the 8") and "8/8 ran the whole 200-epoch" in note
    assert "8/8 at the grid's largest lr 0.01" in note
    rows[0]["converged"] = True
    assert budget_bound(Protocol("t", _sweep(tmp_path, rows, name="s2"))) is None
    assert "budget-bound" in (ROOT / "FINDINGS.md").read_text().split("**Claim 3")[0].split("`warm-up`")[-1]


# ----------------------------------------------------------------------------- item 8: lee2021
def test_lee2021_is_quoted_and_the_cosine_distance_tracks_the_final_loss(tmp_path):
    p = Protocol("methods", STORED / "methods")
    text = "\n".join(methods_section(p))
    assert "tighter relaxations give less smooth landscapes" not in text
    assert "relaxed gradient approximation" in text and "CROWN-IBP at β = 1 is CROWN" in text
    rhos = [float(line.split("Spearman ρ = ")[1].split()[0]) for line in text.splitlines() if "Spearman ρ" in line]
    assert len(rhos) == 2 and all(-1 <= r < -0.9 for r in rhos)
    # lee2021's primary measure is stored for every method: CROWN vs IBP is compared on it too
    assert "loss variation not stored" not in text and text.count("; loss variation higher at") == 2
    # cells stored without it: the section names the rerun it needs instead of comparing
    import shutil

    old = tmp_path / "methods"
    shutil.copytree(STORED / "methods", old)
    for f in old.glob("cells/ibp-*.json"):
        rec = json.loads(f.read_text())
        del rec["series"]["loss_variation"]
        f.write_text(json.dumps(rec))
    text = "\n".join(methods_section(Protocol("methods", old)))
    assert "loss variation not stored for ibp" in text and "; loss variation higher at" not in text


# ----------------------------------------------------------------------------- item 9: deep section
def test_no_drift_rate_from_three_widths_with_drift_above_one():
    slope, why = drift_rate([32, 128, 512], {32: [5.5, 5.6, 5.6], 128: [2.3, 2.4, 2.5], 512: [1.2, 1.3, 1.3]})
    assert why is not None and "3 widths" in why and "not lazy" in why


def test_a_drift_rate_is_claimed_from_four_lazy_widths_with_an_interval():
    rng = np.random.default_rng(0)
    ws = [100, 400, 1600, 6400]
    drifts = {w: list(0.9 * (w / 100) ** -0.5 * np.exp(rng.normal(0, 0.05, 3))) for w in ws}
    slope, why = drift_rate(ws, drifts)
    assert why is None and slope.lo < -0.5 < slope.hi and slope.hi - slope.lo < 0.2


def test_two_chance_level_nets_are_indistinguishable_from_chance():
    band = chance_interval(0.9, 300)
    assert band.lo == pytest.approx(0.863, abs=0.005) and band.hi == 1.0
    v = _verdict(rate(267, 300), rate(300, 300), "lower", chance=band)
    assert v.startswith("indistinguishable from chance")
    assert _verdict(rate(30, 300), rate(300, 300), "lower", chance=band).startswith("supported")
    assert chance_error(Protocol("deep", STORED / "deep")) == pytest.approx(0.9)
    deep = "\n".join(methods_section(Protocol("deep", STORED / "deep")))
    assert "supported" not in deep and "two-layer rate" not in deep
