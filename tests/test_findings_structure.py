"""The laziness and λ0-collapse sections on small synthetic sweep directories: slopes and their
intervals against scipy, ‖H(0)‖ against autodiff, the path floor as the bound's limit, the
helping fraction's half point against the Gaussian prediction, crossings by hand, routing."""

import csv
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from ntkflow._core.stats import Interval
from ntkflow.reporting.findings import findings
from ntkflow.reporting.structure import (HALF_RATIO, first_crossing, gram_norm0, half_crossing, help_half,
                                        init_fractions, is_lambda0_sweep, is_laziness_sweep, lambda0_section,
                                        laziness_section, lazy_verdict, path_floor, predicted_eps)
from ntkflow.paper.initialization import helpful_fraction, hurting_fraction
from ntkflow.paper.model import ibp_lower_margin, init_params
from ntkflow.sweep.cells import Cell, cell_key, dataset_for
from ntkflow.sweep.config import resolve
from ntkflow.theory.necessary import initial_loss_lower_bound, path_length_lower_bound

KAPPA = math.log(2)
WIDTHS = (8, 16, 32, 64)


def _write(tmp_path, cfg, rows, series=None, lam=None):
    (tmp_path / "cells").mkdir(parents=True)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    cols = sorted({k for r in rows for k in r})
    with open(tmp_path / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        cell = Cell(r["width"], r["method"], r["eps"], r["seed"])
        rec = {"cell": {"width": cell.width, "method": cell.method, "eps": cell.eps, "seed": cell.seed},
               "key": cell_key(cfg, cell), "series": (series or {}).get(r["cell_id"], {})}
        (tmp_path / "cells" / f"{cell.id}-{cell_key(cfg, cell)}.json").write_text(json.dumps(rec))
    if lam is not None:
        with open(tmp_path / "lambda0.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=("eps", "lambda_0", "ci_low", "ci_high", "samples", "n_train"))
            w.writeheader()
            w.writerows(lam)
    return tmp_path


def _laziness_cfg():
    return resolve({"data": {"source": "mnist25", "n_train": 8, "pool": 4},
                    "grid": {"method": ["ibp"], "width": list(WIDTHS), "eps": [0.0, 0.01], "seed": [0, 1, 2]},
                    "train": {"optimizer": "gd", "lr": 0.05, "epochs": 100,
                              "stop": {"patience": 100, "rel_tol": 0.0, "abs_tol": 0.0, "kappa": KAPPA}},
                    "track": {"gram": True, "every": 100}})


def make_laziness(tmp_path, unreached=()):
    """ε = 0 moves like 2·m^−1/2, ε = 0.01 like 3·m^0 (times a seed factor); ``unreached``
    (width, ε, seed) cells end above κ."""
    cfg = _laziness_cfg()
    rows, series = [], {}
    for w in WIDTHS:
        for e in (0.0, 0.01):
            for s in (0, 1, 2):
                f = 1 + 0.05 * (s - 1) + 0.01 * math.log(w)
                move = (2 * w ** -0.5 if e == 0 else 3.0) * f
                cell = Cell(w, "ibp", e, s)
                rows.append({"method": "ibp", "width": w, "eps": e, "seed": s, "cell_id": cell.id, "lr": 0.05,
                             "diverged": False, "converged": True, "epochs_run": 50, "n_train": 8,
                             "final_loss": 2.0 if (w, e, s) in unreached else 0.6,
                             "max_weight_change": move, "mean_path_length_final": 1.5 * move,
                             "flip_fraction_final": 0.1 * move, "final_certified_error": 0.0})
                series[cell.id] = {"loss": [5.0 + 10 * e * math.sqrt(w), 0.6], "gram_change": [0.0, 0.2 * move]}
    return _write(tmp_path, cfg, rows, series), rows


def test_gram_norm0_is_the_top_eigenvalue_of_the_autodiff_gram():
    cfg = _laziness_cfg()
    ds = dataset_for(cfg, 0.0)
    X, y = np.asarray(ds.X), np.asarray(ds.y)
    for eps, m, seed in ((0.0, 7, 0), (0.02, 9, 3)):
        W, a = init_params(seed, m, X.shape[1])
        def u_lower(W_):
            """Eq. 3 written out: (1/√m)Σ_r s_ir·relu(w_rᵀx_i − s_ir·ε‖w_r‖₁), s_ir = y_i a_r."""
            sgn = y[:, None] * a[None, :]
            z = X @ W_.T - sgn * eps * jnp.sum(jnp.abs(W_), axis=1)[None, :]
            return jnp.sum(sgn * jax.nn.relu(z), axis=1) / jnp.sqrt(W_.shape[0])

        with jax.enable_x64(True):
            J = jax.jacobian(u_lower)(jnp.asarray(W, jnp.float64))
            assert np.allclose(u_lower(jnp.asarray(W)), ibp_lower_margin(W, a, X, y, eps), atol=1e-10)
        J = np.asarray(J).reshape(len(y), -1)
        assert gram_norm0(X, y, eps, m, seed) == pytest.approx(np.linalg.eigvalsh(J @ J.T)[-1], rel=1e-9)


def test_path_floor_is_the_width_free_limit_of_the_necessary_bound():
    n, d, X, eps = 16, 49, 2.5, 0.01
    m = 1e14
    lim = path_length_lower_bound(initial_loss_lower_bound(n, m, d, eps), KAPPA, n, X, m)
    assert path_floor(eps, d, X) == pytest.approx(lim, rel=1e-6)
    assert path_floor(0.0, d, X) == 0.0


def test_lazy_verdict_reads_the_interval():
    std = Interval(-0.5, -0.55, -0.45, 12)
    assert lazy_verdict(Interval(-0.5, -0.53, -0.47, 12), std).startswith("lazy like standard")
    assert lazy_verdict(Interval(-0.2, -0.25, -0.15, 12), std).startswith("not lazy at standard")
    assert lazy_verdict(Interval(-0.02, -0.1, 0.05, 12), std).startswith("not lazy: no decrease")
    assert lazy_verdict(Interval(0.2, 0.1, 0.3, 12), std).startswith("not lazy: grows")
    assert lazy_verdict(Interval(-0.8, -0.9, -0.7, 12), std).startswith("shrinks faster")
    assert lazy_verdict(Interval(-0.5, math.nan, math.nan, 2), std).startswith("undecided")


def test_laziness_section_slopes_rates_and_answer(tmp_path):
    d, rows = make_laziness(tmp_path, unreached={(64, 0.01, 2)})
    lines = laziness_section(d)
    text = "\n".join(lines)
    # the slope of log max‖Δw_r‖ on log m over the cells that reached κ, with its t interval (df = k − 2)
    for e in (0.0, 0.01):
        pts = [(r["width"], r["max_weight_change"]) for r in rows if r["eps"] == e and r["final_loss"] < KAPPA]
        x, v = np.log(np.array(pts, float)).T
        fit = scipy.stats.linregress(x, v)
        half = scipy.stats.t.ppf(0.975, len(x) - 2) * fit.stderr
        row = next(line for line in lines if line.startswith(f"| {e:g} | ") and "≥1,000" in line)
        assert f"{fit.slope:.2f} [{fit.slope - half:.2f}, {fit.slope + half:.2f}]" in row.split("|")[2]
    # the unreached cell: 2/3 at (64, 0.01) with its Clopper–Pearson interval
    lo, hi = scipy.stats.beta.ppf(0.025, 2, 2), scipy.stats.beta.ppf(0.975, 3, 1)
    row = next(line for line in lines if line.startswith("| 0.01 | 64 |"))
    assert f"2/3 = 66.7% [{lo * 100:.3g}, {hi * 100:.3g}]%" in row
    assert "23/24" in text
    answer = next(line for line in lines if line.startswith("**Answer"))
    assert "? No:" in answer and "not lazy: no decrease" in answer
    assert is_laziness_sweep(json.loads((d / "config.json").read_text()))


def _lambda0_cfg(scale=1.0, pool=1):
    return resolve({"data": {"source": "mnist25", "n_train": 20, "scale": scale, "pool": pool},
                    "grid": {"method": ["ibp"], "width": [20], "eps": [0.0, 0.01, 0.02, 0.04], "seed": [0, 1, 2]},
                    "train": {"optimizer": "gd", "lr": [1e-3, 3e-3], "epochs": 10},
                    "track": {"lambda_0": True}})


def make_lambda0(tmp_path, cfg, dead_at):
    """Dead fraction 1/2 + 10·(ε − dead_at[s]) (counts of 20 neurons on this grid): seed s crosses
    1/2 at ``dead_at[s]``; λ0 falls linearly to 0 at ε = 0.04."""
    grid = [0.0, 0.01, 0.02, 0.04]
    rows = []
    for s, c in enumerate(dead_at):
        for e in grid:
            cell = Cell(20, "ibp", e, s)
            dead = float(np.clip(0.5 + (e - c) * 10, 0, 1))
            rows.append({"method": "ibp", "width": 20, "eps": e, "seed": s, "cell_id": cell.id, "diverged": False,
                         "n_train": 20, "lr": 1e-3, "dead_fraction_final": dead, "final_certified_error": 0.05 * s,
                         "helpful_fraction_final": 0.3, "final_train_error": 0.0, "converged": True})
    lam = [{"eps": e, "lambda_0": 4 * (1 - e / 0.04), "ci_low": 4 * (1 - e / 0.04) - 0.2,
            "ci_high": 4 * (1 - e / 0.04) + 0.2, "samples": 100, "n_train": 20} for e in grid]
    return _write(tmp_path, cfg, rows, lam=lam)


def test_crossings_by_hand():
    assert first_crossing([0, 1, 2], [1.0, 0.6, 0.2], 0.5) == pytest.approx(1.25)
    assert first_crossing([0, 1, 2], [0.0, 0.2, 0.8], 0.5) == pytest.approx(1.5)
    assert math.isnan(first_crossing([0, 1], [1.0, 0.9], 0.5))
    iv = half_crossing([0, 1, 2], [1.0, 0.6, 0.2], [0.9, 0.5, 0.1], [1.1, 0.7, 0.3])
    # half of the value at 0 is 0.5: value crosses at 1.25, the lower curve at 1.0, the upper at 1.5
    assert (iv.value, iv.lo, iv.hi) == pytest.approx((1.25, 1.0, 1.5))


def test_init_fractions_match_the_pair_fractions_of_one_draw():
    X = dataset_for(_lambda0_cfg(), 0.0).X
    W = np.random.default_rng(0).standard_normal((4000, X.shape[1]))
    ones_y, ones_a = np.ones(len(X)), np.ones(len(W))
    got = init_fractions(X, [0.0, 0.01, 0.03])
    for e, (h, u) in got.items():
        # with y_i a_r = +1 for every pair helpful_fraction is the fraction of all pairs; −1: hurting
        assert h.value == pytest.approx(helpful_fraction(W, ones_a, X, ones_y, e), abs=1e-12)
        assert u.value == pytest.approx(hurting_fraction(W, -ones_a, X, ones_y, e), abs=1e-12)
        assert h.lo < h.value < h.hi


def test_help_half_sits_at_the_gaussian_prediction_for_equal_norms():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((30, 400))
    X *= 3.0 / np.linalg.norm(X, axis=1, keepdims=True)
    hh = help_half(X, neurons=3000, boots=100)
    pred = HALF_RATIO * predicted_eps(X)
    assert hh.value == pytest.approx(pred, rel=0.05)  # ‖w‖₁ concentrates to ~4% at d = 400
    assert hh.lo < hh.value < hh.hi
    # at ε_½ the helping fraction of the same draw is half its ε = 0 value
    f = init_fractions(X, [0.0, hh.value], neurons=3000)
    assert f[hh.value][0].value == pytest.approx(f[0.0][0].value / 2, abs=2e-3)


def test_lambda0_section_half_points_and_verdict(tmp_path):
    a = make_lambda0(tmp_path / "a", _lambda0_cfg(), dead_at=(0.015, 0.02, 0.025))
    b = make_lambda0(tmp_path / "b", _lambda0_cfg(scale=2.0), dead_at=(0.02, 0.025, 0.03))
    lines = lambda0_section({"a": a, "b": b})
    text = "\n".join(lines)
    lo, hi = scipy.stats.t.interval(0.95, 2, loc=0.02, scale=scipy.stats.sem([0.015, 0.02, 0.025]))
    assert f"reaches 1/2 at ε = 0.02 [{lo:.4g}, {hi:.4g}] (3/3 seeds" in text
    # λ0 falls from 4 to 0 at 0.04: half at 0.02; the CI curves ±0.2 cross at 0.018 and 0.022
    assert "half its ε = 0 value: ε = 0.02 [0.018, 0.022]" in text
    # the certified error pooled over 3 seeds × 20 images at ε = 0: (0 + 1 + 2)/60
    assert "3/60 = 5%" in text
    # the dead fraction at ε = 0 pooled over seeds as a count of neurons: (7 + 6 + 5)/60
    row = next(line for line in lines if line.startswith("| 0 | 0.00 |"))
    assert "18/60 = 30%" in row and "(closed form)" not in row
    assert text.count("### `") == 2 and "**Answer:**" in text
    assert is_lambda0_sweep(json.loads((a / "config.json").read_text()))


def test_findings_routes_structure_sweeps_to_their_sections(tmp_path):
    lz, _ = make_laziness(tmp_path / "lz")
    l0 = make_lambda0(tmp_path / "l0", _lambda0_cfg(), dead_at=(0.015, 0.02, 0.025))
    page = findings({"laziness": lz, "raw": l0})
    assert "## Is IBP training lazy at fixed ε > 0?" in page
    assert "## The λ0 collapse at large ε" in page
    assert "## The paper's three Fig. 1 claims" not in page


def test_helping_metrics_count_pairs_by_hand():
    """The registered helpful/hurting fractions at a two-layer net's params against a loop over
    the (sample, neuron) pairs of Eq. 3's two cases."""
    from ntkflow.metrics import recorder
    from ntkflow.nets import two_layer

    rng = np.random.default_rng(2)
    X, y = rng.uniform(0, 1, (6, 5)), np.array([1.0, -1, 1, -1, 1, 1])
    W, a = rng.standard_normal((9, 5)), np.where(rng.uniform(size=9) < 0.5, -1.0, 1.0)
    eps = 0.05
    help_, hurt = [], []
    for i in range(6):
        for r in range(9):
            z, gap = W[r] @ X[i], eps * np.abs(W[r]).sum()
            (help_ if y[i] * a[r] > 0 else hurt).append(z - gap > 0 if y[i] * a[r] > 0 else z + gap > 0)
    with jax.enable_x64(True):
        net, p0 = two_layer(W, a)
        rec = recorder(net, p0, jnp.asarray(X), jnp.asarray(y), eps, names=["helpful_fraction", "hurting_fraction"])
        got = rec(p0)
    assert got["helpful_fraction"] == pytest.approx(np.mean(help_), abs=1e-12)
    assert got["hurting_fraction"] == pytest.approx(np.mean(hurt), abs=1e-12)


def test_figures_routes_structure_sweeps(tmp_path):
    from ntkflow.reporting.plots import figures

    lz, _ = make_laziness(tmp_path / "lz")
    assert [p.name for p in figures(lz)] == ["fig_laziness.png", "fig_laziness.pdf"]
    make_lambda0(tmp_path / "copies" / "raw", _lambda0_cfg(), dead_at=(0.015, 0.02, 0.025))
    make_lambda0(tmp_path / "copies" / "x2", _lambda0_cfg(scale=2.0), dead_at=(0.02, 0.025, 0.03))
    out = figures(tmp_path / "copies")
    assert [p.name for p in out] == ["fig_lambda0_eps.png", "fig_lambda0_eps.pdf"] and all(p.stat().st_size for p in out)
