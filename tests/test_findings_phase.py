"""The phase-diagram analysis on constructed tables: counts against scipy's Clopper–Pearson,
m*(ε) by hand, ε_crit recovered from cells built on Eq. 14′'s exact shape, exponents
recovered from power laws."""

import csv
import json
import math

import numpy as np
import pytest
import scipy.stats

from ntkflow.reporting.phase import (PhaseCell, critical_width, eps_crit_exponents, fit_eps_crit, phase_figure,
                                    phase_section, reach_rates, step_size_ratio, theorem_bounds)


def _row(n, d, eps, width, seed, reached, cert=0.0, diverged=False, t=1.0):
    return {"n_train": n, "d": d, "eps": eps, "width": width, "seed": seed, "reached_kappa": reached,
            "final_certified_error": cert, "diverged": diverged, "time_to_kappa": t if reached else math.nan}


def _cell(width, k, K, eps=0.01, n=8, d=4):
    return PhaseCell(n, d, eps, width, outcomes=tuple([True] * k + [False] * (K - k)), times=())


def test_a_run_reaches_only_below_kappa_with_zero_certified_error_and_not_diverged():
    rows = [_row(8, 4, 0.01, 100, 0, True), _row(8, 4, 0.01, 100, 1, True, cert=0.125),
            _row(8, 4, 0.01, 100, 2, False), _row(8, 4, 0.01, 100, 3, True, diverged=True),
            _row(8, 4, 0.01, 1000, 0, True)]
    cells = reach_rates(rows)
    assert set(cells) == {(8, 4, 0.01, 100), (8, 4, 0.01, 1000)}
    c = cells[(8, 4, 0.01, 100)]
    assert c.outcomes == (True, False, False, False) and c.reached.k == 1 and c.reached.n == 4
    a = 0.025
    assert c.reached.lo == pytest.approx(scipy.stats.beta.ppf(a, 1, 4)) and \
        c.reached.hi == pytest.approx(scipy.stats.beta.ppf(1 - a, 2, 3))
    with pytest.raises(ValueError, match="reached_kappa or final_loss"):
        reach_rates([{"n_train": 8, "d": 4, "eps": 0.0, "width": 10, "final_certified_error": 0.0}])


def test_without_a_reached_column_the_final_loss_decides_and_assumption_2_failures_are_left_out():
    base = {"n_train": 8, "d": 4, "eps": 0.1, "width": 100, "final_certified_error": 0.0, "diverged": False,
            "lr": 0.025, "epochs_run": 400.0}
    rows = [{**base, "seed": 0, "final_loss": 0.69, "assumption_2_holds": 1.0},
            {**base, "seed": 1, "final_loss": 0.70, "assumption_2_holds": 1.0},
            {**base, "seed": 2, "final_loss": 0.10, "assumption_2_holds": 0.0}]
    c = reach_rates(rows, kappa=math.log(2))[(8, 4, 0.1, 100)]
    assert c.outcomes == (True, False)  # 0.69 < log 2 < 0.70; the third row violates Assumption 2
    assert c.times == (pytest.approx(0.025 * 400),)


def test_critical_width_is_the_first_width_at_one_minus_delta_and_is_never_decided_with_few_runs():
    row = [_cell(100, 0, 20), _cell(1000, 15, 20), _cell(10000, 19, 20)]
    cw = critical_width(row, 0.1)
    assert cw["m_star"] == 10000  # 19/20 ≥ 0.9, 15/20 < 0.9
    # 15/20's upper end (0.913) reaches 0.9, 0/20's (0.168) does not
    assert scipy.stats.beta.ppf(0.975, 16, 5) > 0.9 > scipy.stats.beta.ppf(0.975, 1, 20)
    assert cw["m_not_excluded"] == 1000
    assert not cw["decided"] and cw["runs_to_decide"] == 36  # 20/20's lower end 0.83 < 0.9
    assert critical_width([_cell(100, 40, 40)], 0.1)["decided"]  # 40/40: lower end 0.912
    assert critical_width([_cell(100, 3, 20)], 0.1)["m_star"] is None
    with pytest.raises(ValueError, match="delta"):
        critical_width(row, 1.5)


def _eq14_cells(A, B, C, eps_grid, widths, K=20, n=8, d=4):
    """Cells in which every run reaches exactly when m ≥ m*(ε) = (C/(A − Bε))² (∞ past A/B)."""
    cells = {}
    for e in eps_grid:
        m_star = (C / (A - B * e)) ** 2 if A - B * e > 0 else math.inf
        for w in widths:
            cells[(n, d, e, w)] = _cell(w, K if w >= m_star else 0, K, eps=e, n=n, d=d)
    return cells


def test_eps_crit_is_recovered_from_cells_on_eq14s_exact_shape():
    A, B, C = 1.0, 50.0, 5.0  # ε_crit = A/B = 0.02
    widths = np.unique(np.geomspace(20, 1e6, 400).astype(int)).tolist()  # fine: 1/√m* quantized by < 1%
    eps_grid = [0.0, 0.004, 0.008, 0.012, 0.016, 0.0195, 0.03]
    fit = fit_eps_crit(_eq14_cells(A, B, C, eps_grid, widths), 8, 4, 0.1, resamples=50)
    assert fit["fit"].value == pytest.approx(A / B, rel=0.03)
    # deterministic outcomes: every resample gives the same line
    assert fit["fit"].lo == pytest.approx(fit["fit"].value) and fit["fit"].hi == pytest.approx(fit["fit"].value)
    assert fit["bracket"] == (0.0195, 0.03)
    assert fit["m_star"][-1] is None


def test_bootstrap_interval_widens_with_random_outcomes_and_holds_the_point():
    rng = np.random.default_rng(3)
    cells = {}
    for e in (0.0, 0.005, 0.01, 0.015):
        for w in (100, 300, 1000, 3000, 10000):
            p = min(1.0, max(0.0, 1.5 * math.log10(w) - 2.5 - 60 * e))
            cells[(8, 4, e, w)] = PhaseCell(8, 4, e, w, tuple(bool(v) for v in rng.random(20) < p), ())
    fit = fit_eps_crit(cells, 8, 4, 0.1, resamples=300, seed=1)
    assert fit["fit"].finite and fit["fit"].lo <= fit["fit"].value <= fit["fit"].hi and fit["fit"].hi > fit["fit"].lo
    assert fit["valid_resamples"] >= 150 and fit["bracket"] == (0.015, math.inf)
    with pytest.raises(ValueError, match="n, d"):
        fit_eps_crit(cells, 16, 4, 0.1)


def test_exponents_are_recovered_from_power_laws():
    pts = [(n, d, 3.0 * n**-2.0 * d**-1.0) for n in (8, 16, 32, 64) for d in (4, 16, 64)]
    ex = eps_crit_exponents(pts)
    assert ex["n"].value == pytest.approx(-2.0) and ex["d"].value == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    noisy = [(n, d, e * math.exp(0.05 * rng.standard_normal())) for n, d, e in pts]
    ex = eps_crit_exponents(noisy)
    assert ex["n"].lo < -2.0 < ex["n"].hi and ex["d"].lo < -1.0 < ex["d"].hi and ex["n"].n == 12
    assert not np.isfinite(eps_crit_exponents(pts[:2])["n"].lo)
    assert not np.isfinite(eps_crit_exponents([(8, 4, 1e-2), (16, 4, 1e-3), (32, 4, 1e-4), (64, 4, 1e-5)])["d"].lo)


def test_section_and_figure_read_a_stored_sweep(tmp_path):
    rows = []
    for e in (0.0, 0.01, 0.1):
        for w in (100, 1000):
            for s in range(5):
                rows.append(_row(8, 4, e, w, s, reached=(e < 0.05 and (w == 1000 or s < 2))))
    (tmp_path / "config.json").write_text(json.dumps({"data": {"source": "synthetic"},
                                                      "train": {"lr": 0.01, "epochs": 100, "stop": {"kappa": 0.5}}}))
    with open(tmp_path / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (tmp_path / "lambda0.csv").write_text("eps,lambda_0,ci_low,ci_high,samples,n_train,d\n"
                                          "0.01,0.5,0.4,0.6,100,8,4\n0.01,9.0,8.0,10.0,100,16,4\n")
    text = "\n".join(phase_section(tmp_path))
    assert "λ0 = λmin(H∞) (95% CI, Monte Carlo): ε = 0.01: 0.5 [0.4, 0.6]" in text and "9 [8" not in text
    assert "Theorem 1 asks no finite width at any point of this grid" in text  # its ε bound at n = 8, d = 4 is < 1e-6
    assert "all below the grid's smallest ε = 0.01." in text
    assert "n = 8, d = 4" in text and "| 0.01 | 2/5 = 40% [5.27, 85.3]% | 5/5 = 100% [47.8, 100]% | 1,000 | 1,000 |" in text
    assert "the grid reaches up to ε = 0.01 (next grid ε: 0.1)" in text and "± 0.000" not in text
    assert "16 runs did not reach κ; 0 of them ran the whole budget of 100 epochs" in text  # 6 at ε ≤ 0.01, 10 at 0.1
    # m* is the same at ε = 0 and 0.01: the line does not fall and no ε_crit is claimed
    assert "ε_crit (Eq. 14′'s zero of 1/√m* in ε): — (fewer than two ε with a finite m*, or m* does not grow" in text
    out = phase_figure(tmp_path, tmp_path / "phase.png")
    assert out.exists() and out.stat().st_size > 1000
    with pytest.raises(ValueError, match="not a sweep directory"):
        phase_section(tmp_path / "nothing")


def test_findings_and_figures_route_a_sweep_over_the_data_axes(tmp_path):
    from ntkflow.reporting.findings import findings
    from ntkflow.reporting.phase import is_phase_sweep
    from ntkflow.reporting.plots import figures
    from ntkflow.sweep import resolve, run_sweep

    cfg = resolve({"data": {"source": "synthetic"}, "grid": {"method": ["ibp"], "n_train": [4], "d": [2, 3],
                                                            "width": [8], "eps": [0.001], "seed": [0, 1]},
                   "train": {"optimizer": "gd", "lr": 0.05, "epochs": 30,
                             "stop": {"kappa": math.log(2), "patience": 30, "rel_tol": 0.0, "abs_tol": 0.0}}})
    assert is_phase_sweep(cfg) and not is_phase_sweep(resolve({"grid": {"width": [8]}}))
    run_sweep(cfg, tmp_path, quiet=True)
    page = findings({"phase": str(tmp_path)}, init=False)
    assert "## The ε–width phase diagram" in page and "**n = 4, d = 3**" in page
    assert "Figure 1" not in page.split("## The ε–width")[1]
    assert [p.name for p in figures(tmp_path)] == ["fig_phase.png"]


def test_theorem_bounds_are_consistent_with_each_other_and_monotone():
    """On the data a phase cell trains on: the bounds equal theory.formulas' on the same data
    loaded independently (ξ, X from numpy); a derived width is finite where the derived ε
    bound covers ε; the printed width is finite exactly below δ²λ0²/(d^2.5 n⁴); the width
    grows with ε and shrinks as λ0 grows."""
    from ntkflow.data import load
    from ntkflow.theory import formulas as T

    cfg = {"data": {"source": "synthetic", "seed": 3, "normalize": True}}
    n, d, delta = 4, 2, 0.1
    X = np.asarray(load("synthetic", n=n, d=d, eps=1e-3, seed=3, normalize=True).X, float)
    xi, xs = np.linalg.norm(X, axis=1).min(), np.linalg.norm(X, axis=1).max() + 1e-3 * np.sqrt(d)
    got = theorem_bounds(cfg, n, d, 1e-3, 0.5, delta)
    assert got["eps_derived"] == pytest.approx(T.epsilon_bound(n, d, delta, 0.5, xi, "derived", x_scale=xs, eps=1e-3),
                                               rel=1e-12)
    assert got["eps_printed"] == pytest.approx(T.epsilon_bound(n, d, delta, 0.5, xi, "printed"), rel=1e-12)
    for lam in (0.05, 0.5):
        tiny = theorem_bounds(cfg, n, d, 1e-18, lam, delta)
        assert 1e-18 <= tiny["eps_derived"] and np.isfinite(tiny["width_derived"])
        edge = delta**2 * lam**2 / (d**2.5 * n**4)
        assert tiny["width_edge_printed"] == pytest.approx(edge)
        inside = 0.9 * min(edge, tiny["eps_printed"])  # covered by the printed ε bound and below the edge
        assert np.isfinite(theorem_bounds(cfg, n, d, inside, lam, delta)["width_printed"])
        assert not np.isfinite(theorem_bounds(cfg, n, d, 1.1 * edge, lam, delta)["width_printed"])
        big = theorem_bounds(cfg, n, d, 0.01, lam, delta)
        assert big["eps_derived"] < 0.01 and not np.isfinite(big["width_derived"])
    e = 1e-12
    w = [theorem_bounds(cfg, n, d, e, lam, delta)["width_derived"] for lam in (0.05, 0.5)]
    assert w[0] > w[1]
    assert theorem_bounds(cfg, n, d, 2 * e, 0.5, delta)["width_derived"] >= w[1]


def test_step_size_ratio_is_lr_times_the_top_eigenvalue_of_the_arc_cosine_gram():
    from ntkflow.data import load

    cfg = {"data": {"source": "synthetic", "seed": 2}}
    ds = load("synthetic", n=5, d=3, eps=0.01, seed=2, normalize=False)  # the cells' data: [0, 1]^d
    X, y = np.asarray(ds.X, float), np.asarray(ds.y, float)
    cos = np.clip((X @ X.T) / np.outer(np.linalg.norm(X, axis=1), np.linalg.norm(X, axis=1)), -1, 1)
    H = np.outer(y, y) * (X @ X.T) * (np.pi - np.arccos(cos)) / (2 * np.pi)  # Du et al. 2019's H∞ at ε = 0
    assert step_size_ratio(cfg, 5, 3, 0.01, 0.3) == pytest.approx(0.3 * np.linalg.eigvalsh(H)[-1], rel=1e-12)
