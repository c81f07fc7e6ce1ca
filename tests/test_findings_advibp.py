"""The AdvIBP-vs-baseline section on small synthetic sweep directories: counts, intervals and
verdicts checked against independent computations (scipy), branch frequencies by hand."""

import csv
import json
import math

import numpy as np
import pytest
import scipy.stats

from ntkflow.reporting.advibp import (Interval, advibp_section, branch_frequencies, c_max_check, claim_verdict,
                                     difference_verdict)
from ntkflow.sweep.cells import Cell, cell_key
from ntkflow.sweep.config import resolve

N_TEST = 200
COLUMNS = ("method", "width", "eps", "seed", "cell_id", "lr", "converged", "diverged", "epochs_run",
           "final_test_certified_error", "final_test_error")


def _series(fosc, cases):
    """A record's series: per recorded epoch, the case fractions and the batch-mean FOSC."""
    names = ("init", "bisector", "adv_priority", "ibp_priority", "fixed", "warmup_nat", "warmup_adv")
    return {**{f"case_{n}": [c.get(n, 0.0) for c in cases] for n in names}, "fosc": list(fosc)}


def make_sweep(tmp_path, adv, fixed, c_max=0.005, fosc=(0.002, 0.004, 0.01), diverged=(), cases=None):
    """A sweep directory with AdvIBP held-out certified errors ``adv`` and baseline ``fixed`` per seed."""
    cfg = resolve({"data": {"source": "mnist25", "n_train": 200, "n_test": N_TEST},
                   "grid": {"method": ["advibp", "advibp_fixed"], "width": [200], "eps": [0.003],
                            "seed": list(range(len(adv)))},
                   "train": {"lr": [0.1, 0.3], "t_nat": 2, "t_adv": 2, "eps_ramp": 8, "epochs": 50},
                   "advibp": {"c_max": c_max}})
    (tmp_path / "cells").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    rows = []
    for method, errs in (("advibp", adv), ("advibp_fixed", fixed)):
        for s, e in enumerate(errs):
            cell = Cell(200, method, 0.003, s)
            div = (method, s) in diverged
            rows.append({"method": method, "width": 200, "eps": 0.003, "seed": s, "cell_id": cell.id,
                         "lr": 0.1 if s % 2 else 0.3, "converged": not div, "diverged": div, "epochs_run": 20 + s,
                         "final_test_certified_error": "nan" if div else e,
                         "final_test_error": "nan" if div else round(e * N_TEST / 2) / N_TEST})
            joint = (cases or [{"bisector": 1.0}]) if method == "advibp" else [{"fixed": 1.0}]
            rec = {"cell": {"width": 200, "method": method, "eps": 0.003, "seed": s}, "key": cell_key(cfg, cell),
                   "series": _series([math.nan, *fosc], [{"warmup_nat": 1.0}, {"warmup_adv": 1.0}, *joint])}
            (tmp_path / "cells" / f"{cell.id}-{cell_key(cfg, cell)}.json").write_text(json.dumps(rec))
    with open(tmp_path / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return tmp_path


def _t_interval(d):
    d = np.asarray(d, float)
    return scipy.stats.t.interval(0.95, d.size - 1, loc=d.mean(), scale=scipy.stats.sem(d))


def _line(lines, start):
    return next(line for line in lines if line.startswith(start))


def test_a_real_difference_is_called_real_with_its_interval(tmp_path):
    adv = [0.05, 0.06, 0.05, 0.055, 0.06]
    fixed = [0.20, 0.22, 0.21, 0.19, 0.20]
    lines = advibp_section(make_sweep(tmp_path, adv, fixed))
    diff = _line(lines, "- AdvIBP − baseline")
    assert "real: AdvIBP lower" in diff
    lo, hi = _t_interval(np.subtract(adv, fixed))
    assert f"[{lo * 100:.3g}, {hi * 100:.3g}]%" in diff
    # pooled counts: Σ rate·200 over the 5 seeds, its Clopper–Pearson interval from the beta quantiles
    k = int(round(sum(adv) * N_TEST))
    row = _line(lines, "| advibp |")
    assert f"{k}/{5 * N_TEST}" in row
    assert f"{scipy.stats.beta.ppf(0.025, k, 5 * N_TEST - k + 1) * 100:.3g}," in row
    assert "0.1 (2), 0.3 (3)" in row and "5/5" in row
    # the points reading: the reduction's interval lies above 0 and reaches 9.1 points
    assert "supported" in _line(lines, "- fan2021's reduction read in points")


def test_a_straddling_difference_is_within_noise(tmp_path):
    fixed = [0.10, 0.12, 0.11, 0.10, 0.09]
    adv = list(np.add(fixed, [0.01, -0.01, 0.005, -0.005, 0.0]))
    lines = advibp_section(make_sweep(tmp_path, adv, fixed))
    assert "within noise" in _line(lines, "- AdvIBP − baseline")
    assert "real" not in _line(lines, "- AdvIBP − baseline")
    # a reduction ≥ 9.1 points is excluded: the claim, read in points, is not reproduced
    assert "not reproduced" in _line(lines, "- fan2021's reduction read in points")


def test_a_diverged_run_is_counted_never_averaged(tmp_path):
    adv = [0.05, 0.06, 0.05, 0.055, 0.06]
    lines = advibp_section(make_sweep(tmp_path, adv, [0.2] * 5, diverged={("advibp", 4)}))
    row = _line(lines, "| advibp |")
    k = int(round(sum(adv[:4]) * N_TEST))
    assert f"{k}/{4 * N_TEST}" in row and row.rstrip(" |").split("|")[-2].strip() == "1"
    assert "paired over 4 seeds" in _line(lines, "- AdvIBP − baseline")


def test_branch_frequencies_sum_to_one_and_match_the_hand_count(tmp_path):
    cases = [{"init": 0.25, "bisector": 0.75}, {"bisector": 1.0}, {"adv_priority": 0.5, "ibp_priority": 0.5}]
    recs = [{"series": _series([math.nan] * 5, [{"warmup_nat": 1.0}, {"warmup_adv": 1.0}, *cases])}] * 2
    f = branch_frequencies(recs)
    assert sum(f.values()) == pytest.approx(1.0, abs=1e-12)
    # joint steps: init 0.25, bisector 1.75, adv 0.5, ibp 0.5 epochs of 3 (warm-up excluded)
    assert f == pytest.approx({"init": 0.25 / 3, "bisector": 1.75 / 3, "adv_priority": 0.5 / 3,
                               "ibp_priority": 0.5 / 3, "fixed": 0.0})
    lines = advibp_section(make_sweep(tmp_path, [0.1] * 5, [0.2] * 5, cases=cases))
    assert "init 0.083, bisector 0.583, adv_priority 0.167, ibp_priority 0.167" in _line(lines, "| advibp |")
    assert "fixed 1.000" in _line(lines, "| advibp_fixed |")
    assert "decided 0.333 of its joint steps" in _line(lines, "- AdvIBP's FOSC test")  # (0.5 + 0.5)/3


def test_c_max_outside_the_measured_fosc_range_is_flagged(tmp_path):
    lines = advibp_section(make_sweep(tmp_path, [0.1] * 5, [0.2] * 5, c_max=1e-4, fosc=(0.002, 0.01)))
    fosc = _line(lines, "- FOSC threshold")
    assert "**flagged**" in fosc and "below the measured FOSC range [0.002, 0.01]" in fosc
    assert c_max_check(0.05, 0.002, 0.01)[0] is False and "above" in c_max_check(0.05, 0.002, 0.01)[1]
    assert c_max_check(0.005, 0.002, 0.01)[0] is True
    assert c_max_check(0.005, math.nan, math.nan)[0] is False


def test_verdicts_decide_from_the_interval():
    assert claim_verdict(Interval(0.15, 0.12, 0.2, 5)) == "supported"
    assert claim_verdict(Interval(0.0, -0.02, 0.03, 5)).startswith("not reproduced")
    assert claim_verdict(Interval(0.05, -0.05, 0.2, 5)).startswith("unknown")
    assert difference_verdict(Interval(-0.1, -0.15, -0.05, 5)) == "real: AdvIBP lower"
    assert difference_verdict(Interval(0.1, 0.05, 0.15, 5)) == "real: AdvIBP higher"
    # seeds that all differ by the same amount: no spread, no decision (not "real")
    assert difference_verdict(Interval(0.005, 0.005, 0.005, 5)).startswith("undecided")


def test_the_findings_page_routes_an_advibp_sweep_to_its_section(tmp_path):
    """``ntkflow findings advibp=DIR``: an AdvIBP-vs-baseline directory gets fan2021's held-out
    comparison, not the training-error methods table (which would judge it by the wrong measure)."""
    from ntkflow.reporting.findings import findings

    page = findings({"advibp": make_sweep(tmp_path, [0.05, 0.06, 0.055], [0.2, 0.22, 0.21])}, init=False)
    assert "## AdvIBP vs its fixed-κ baseline (fan2021)" in page
    assert "## Training methods side by side" not in page
    assert "real: AdvIBP lower" in page
