import json

import numpy as np
import pytest

import ntkflow as nf
from ntkflow.report import STATUSES, _decide

rng = np.random.default_rng(5)
X = rng.uniform(0.1, 1.0, (8, 5))
Y = np.array([1.0, -1, 1, -1, 1, -1, 1, -1])
KW = dict(samples=2000, flow_n=8, lemma4_seeds=2, progress=False)


@pytest.fixture(scope="module")
def report():
    return nf.check(X, Y, 0.02, 200, **KW)


def test_report_has_every_row_with_an_honest_status(report):
    names = ["assumption_1", "assumption_2", "lambda_0", "epsilon_bound", "width_bound", "lemma_1", "lemma_2",
             "lemma_4", "lemma_5", "lemma_6_rate", "lemma_6_weights", "lemma_7"]
    for name in names:
        row = report[name]
        assert row.status in STATUSES
        assert row.reference
    assert report["assumption_1"].status == "holds" and report["assumption_2"].status == "holds"
    assert report["lambda_0"].ci[0] < report["lambda_0"].measured < report["lambda_0"].ci[1]
    # theory's ε bound is astronomically small: ε = 0.02 violates it
    assert report["epsilon_bound"].status == "violated" and report["epsilon_bound"].looseness > 1e3


def test_derived_weight_bound_holds_on_every_run(report):
    assert report["lemma_6_weights"].extra["derived_status"] == "holds"
    for eps, m, seed in [(0.0, 100, 1), (0.1, 50, 2)]:
        r = nf.check(X, Y, eps, m, seed=seed, **KW)
        assert r["lemma_6_weights"].extra["worst_ratio_derived"] <= 1.0


def test_to_dict_is_json_and_tables_render(report):
    d = json.loads(json.dumps(report.to_dict()))
    assert set(d["rows"]) == set(report.rows)
    assert d["rows"]["lemma_2"]["status"] == report["lemma_2"].status
    text, md = str(report), report.to_markdown()
    assert "lemma_6_rate" in text and "constant 1" in text
    assert md.startswith("| row |") and md.count("\n|") >= len(report.rows)


def test_duplicated_points_break_assumption_2_and_lambda_0():
    Xd = np.vstack([X, X[:1]])
    Yd = np.append(Y, Y[0])
    r = nf.check(Xd, Yd, 0.0, 100, **KW)
    assert r["assumption_2"].status == "violated"
    lam = r["lambda_0"]
    assert abs(lam.measured) < 1e-6  # two identical rows: H∞ is singular (exact closed form at ε = 0)
    assert lam.status in ("violated", "unknown")


def test_large_eps_breaks_assumption_1():
    r = nf.check(X, Y, 0.5, 50, **KW)
    assert r["assumption_1"].status == "violated"
    assert r["width_bound"].status == "violated" and r["width_bound"].bound == float("inf")


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
