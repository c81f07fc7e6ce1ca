import json

import numpy as np
import pytest

import ntkflow as nf
from ntkflow.theory.checker import STATUSES, _decide

rng = np.random.default_rng(5)
X = rng.uniform(0.1, 1.0, (8, 5))
Y = np.array([1.0, -1, 1, -1, 1, -1, 1, -1])
KW = dict(samples=2000, flow_n=8, seeds=2, init_seeds=2, max_steps=40, progress=False)
ROWS = ["assumption_1", "assumption_2", "lambda_0", "epsilon_bound", "width_bound", "theorem_1_time", "lemma_4",
        "lemma_7", "lemma_1", "lemma_2", "corollary_1", "lemma_5", "lemma_6_rate", "lemma_6_weights", "eq5_identity",
        "theorem_1_conclusion", "movement_necessary", "loss_rate_lower"]


@pytest.fixture(scope="module")
def report():
    return nf.check(X, Y, 0.02, 200, **KW)


def test_report_has_every_row_with_an_honest_status(report):
    assert list(report.rows) == ROWS
    for row in report:
        assert row.status in STATUSES and row.reference
        assert row.observed is None or row.observed in STATUSES
    assert report["assumption_1"].status == "holds" and report["assumption_2"].status == "holds"
    assert report["assumption_1"].observed is None
    assert report["lambda_0"].ci[0] < report["lambda_0"].measured < report["lambda_0"].ci[1]
    # theory's ε bound is astronomically small: ε = 0.02 is above it, so Theorem 1 is not met (not contradicted)
    assert report["epsilon_bound"].status == "not_met" and report["epsilon_bound"].looseness > 1e3
    assert report["theorem_1_conclusion"].status == "not_met"
    # Lemma 5's R is ~1e-8 here while the weights move by ~0.1: the lemma says nothing
    lemma5 = report["lemma_5"]
    assert lemma5.status == "inapplicable" and lemma5.extra["premises"]["displacement"] is False
    assert lemma5.observed in ("holds", "violated", "unknown")
    assert report.meta["seeds"] == 2 and len(report["lemma_7"].extra["loss0"]) == 2
    # the two necessary conditions are theorems: they hold along the real flows
    assert report["movement_necessary"].status == "holds" and report["movement_necessary"].measured >= 1
    assert report["loss_rate_lower"].status == "holds" and report["loss_rate_lower"].measured >= 1
    assert report["movement_necessary"].extra["route_eps_threshold"] > 0


def test_flow_is_certified_and_its_horizon_reported(report):
    h = report.meta["horizon"]
    assert report.meta["step_error"] > 0  # the certificate ran
    assert h["capped_by"] == "max_steps" and h["t1"] == pytest.approx(40 * 0.25 / h["lambda_max_h0"])
    assert h["eq10_over_t1"] == pytest.approx(h["t_eq10"] / h["t1"]) and h["eq10_over_t1"] > 1
    assert "capped by max_steps = 40" in report["lemma_2"].note
    # the tracker's Eq. 5 residual and the sign changes are reported
    assert report["eq5_identity"].measured >= 0
    assert all(c >= 0 for c in report["lemma_2"].extra["sign_changed_ever"])


def test_derived_weight_bound_holds_on_every_run(report):
    assert report["lemma_6_weights"].extra["derived_status"] == "holds"
    assert report["lemma_6_rate"].extra["derived_status"] in ("holds", "vacuous")
    for eps, m, seed in [(0.0, 200, 1), (0.1, 200, 2)]:  # the fixture's shapes: no recompilation
        r = nf.check(X, Y, eps, m, seed=seed, **KW)
        assert r["lemma_6_weights"].extra["worst_ratio_derived"] <= 1.0
        assert r["lemma_6_rate"].extra["derived_status"] in ("holds", "vacuous")


def test_to_dict_is_json_and_tables_render(report):
    d = json.loads(json.dumps(report.to_dict()))
    assert set(d["rows"]) == set(report.rows)
    assert d["rows"]["lemma_2"]["status"] == report["lemma_2"].status
    assert d["rows"]["lemma_5"]["observed"] == report["lemma_5"].observed
    text, md = str(report), report.to_markdown()
    assert "lemma_6_rate" in text and "constant 1" in text
    assert md.startswith("| row |") and md.count("\n|") >= len(report.rows)
    assert "inapplicable (observed: " in md


def test_duplicated_points_break_assumption_2_and_lambda_0():
    Xd = X.copy()
    Xd[2] = Xd[0]  # same label, same point; n and m as in the fixture (no recompilation)
    r = nf.check(Xd, Y, 0.0, 200, **KW)
    assert r["assumption_2"].status == "violated"
    lam = r["lambda_0"]
    assert abs(lam.measured) < 1e-6  # two identical rows: H∞ is singular (exact closed form at ε = 0)
    assert lam.status == "inapplicable"  # Lemma 3's premise (Assumption 2) fails
    assert lam.observed in ("violated", "unknown")


def test_large_eps_breaks_assumption_1():
    r = nf.check(X, Y, 0.5, 200, **KW)
    assert r["assumption_1"].status == "violated"
    assert r["width_bound"].status == "not_met" and r["width_bound"].bound == float("inf")


def test_decide_is_unknown_when_the_interval_straddles():
    assert _decide(True, True) == "holds"
    assert _decide(False, True) == "unknown"
    assert _decide(False, False) == "violated"


def test_check_bad_input():
    with pytest.raises(ValueError, match="delta"):
        nf.check(X, Y, 0.1, 10, delta=1.5, **KW)
    with pytest.raises(ValueError, match="m: must be"):
        nf.check(X, Y, 0.1, 0, **KW)
    with pytest.raises(ValueError, match="eps"):
        nf.check(X, Y, 1.1, 10, **KW)


@pytest.mark.parametrize("name, value", [("delta", 0.0), ("delta", "x"), ("init_seeds", 0), ("max_steps", 0),
                                         ("seeds", 0), ("seeds", 1.5), ("t1", -1.0), ("flow_n", 1),
                                         ("samples", 1), ("seed", -1)])
def test_check_bad_options_name_the_argument(name, value):
    kw = {**KW, name: value}
    with pytest.raises(ValueError, match=f"^{name}: ") as e:
        nf.check(X, Y, 0.1, 10, **kw)
    assert "\n" not in str(e.value)


def test_cli_check_passes_seeds_and_max_steps(monkeypatch, capsys):
    from ntkflow.cli import main

    seen = {}

    def fake_check(X, y, eps, m, **kw):
        seen.update(kw, m=m)
        return nf.Report(rows={}, meta={"constants": "stub"})

    monkeypatch.setattr(nf, "check", fake_check)
    assert main(["check", "--data", "synthetic", "--n", "8", "--eps", "0.01", "--width", "40", "--seeds", "4",
                 "--max-steps", "20", "--init-seeds", "50", "--quiet"]) == 0
    assert seen["seeds"] == 4 and seen["max_steps"] == 20 and seen["m"] == 40 and seen["init_seeds"] == 50
    monkeypatch.undo()  # the real check refuses before any work
    assert main(["check", "--data", "synthetic", "--n", "8", "--seeds", "0", "--quiet"]) == 2
    assert "seeds" in capsys.readouterr().err
