"""Each report row on its own, from hand-made measurements (no flow is run here)."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.stats

from ntkflow.theory import checker as R
from ntkflow.theory import formulas as T
from ntkflow.paper.tracker import SERIES, Trajectory


def data(n=2, d=1, lam=1.0, ci=None, xi=1.0):
    X = np.full((n, d), xi / math.sqrt(d))  # ‖x_i‖ = ξ, so X = ξ at ε = 0
    lo, hi = ci or (lam, lam)
    est = SimpleNamespace(value=lam, ci=(lo, hi), samples=1, groups=1, gap=1.0, bias=0.0)
    return R._Data(X=X, y=np.ones(n), n=n, d=d, xi=xi, x_scale=T.input_scale(X, 0.0), a1=True, a2=True, lam=est,
                   ends=(max(lo, 0.0), max(hi, 0.0)))


def run(ts, **series):
    ts = np.asarray(ts, float)
    full = {k: np.zeros(ts.size) for k in SERIES}
    full["step_error"] = np.zeros(ts.size)
    full.update({k: np.broadcast_to(np.asarray(v, float), ts.shape).copy() for k, v in series.items()})
    tr = Trajectory(ts=ts, series=full, W=np.zeros((1, 1)), a=np.ones(1), error_estimate=2 * full["step_error"].max())
    return R._Run(init=0, tr=tr, sign_changes=np.zeros(ts.size, int), sign_changed_ever=0,
                  qform=np.ones(ts.size), grad_sq=np.ones(ts.size), warnings=[])


def ctx(sub, runs, *, eps=0.0, m=100, delta=0.1, full=None, lmins=(1.0,), losses0=(1.0,)):
    t1 = float(runs[0].tr.ts[-1]) if runs else 1.0
    horizon = {"t1": t1, "dt": t1 / 100, "capped_by": None, "t_eq10": t1, "t_need_derived": t1, "eq10_over_t1": 1.0,
               "max_steps": 100}
    return R._Ctx(eps=eps, m=m, delta=delta, full=full or sub, sub=sub, lmins=list(lmins), losses0=list(losses0),
                  runs=runs, horizon=horizon)


# ----------------------------------------------------------------------------- decision helpers
def test_binomial_ci_is_clopper_pearson():
    for k, K in [(0, 5), (1, 5), (3, 5), (5, 5), (2, 40)]:
        ref = scipy.stats.binomtest(k, K).proportion_ci(method="exact")
        assert R.binomial_ci(k, K) == pytest.approx((ref.low, ref.high))


def test_frequency_status_is_decided_from_the_clopper_pearson_interval():
    # 0 of 3: CI [0, 0.71] straddles δ = 0.1 — undecided, not "holds" (k/K ≤ δ was the old rule)
    assert R._frequency_status(0, 3, 0.1) == "unknown"
    assert R._frequency_status(0, 5, 0.1) == "unknown"  # CI [0, 0.52]
    assert R._frequency_status(0, 35, 0.1) == "unknown" and R._frequency_status(0, 36, 0.1) == "holds"  # 0.1000 vs 0.0974
    assert R._frequency_status(1, 20, 0.1) == "unknown"  # 5% ≤ δ, but CI [0.001, 0.25]
    assert R._frequency_status(1, 60, 0.1) == "holds"  # CI upper end 0.0894
    assert R._frequency_status(1, 5, 0.1) == "unknown"  # 20% > δ but CI [0.005, 0.72] contains δ
    assert R._frequency_status(3, 5, 0.1) == "violated"  # CI lower end 0.147 > δ
    assert R._frequency_status(2, 3, 0.1) == "unknown" and R._frequency_status(3, 3, 0.1) == "violated"
    for k, K in [(0, 3), (0, 36), (2, 40), (5, 20), (9, 30)]:
        lo, hi = scipy.stats.binomtest(k, K).proportion_ci(method="exact")
        assert R._frequency_status(k, K, 0.1) == ("violated" if lo > 0.1 else "holds" if hi <= 0.1 else "unknown")


def test_every_point_vacuous_stays_vacuous_even_when_undecided():
    pts = [R._Points(ok=np.ones(2, bool), vacuous=np.ones(2, bool), applicable=np.ones(2, bool))] * 3
    assert R._points_status(pts, 0.1, True) == "vacuous"  # 0 of 3 is undecided, but the bound says nothing
    pts = [R._Points(ok=np.ones(2, bool), vacuous=np.array([True, False]), applicable=np.ones(2, bool))] * 3
    assert R._points_status(pts, 0.1, True) == "unknown"
    assert R._points_status(pts * 12, 0.1, True) == "holds"  # 36 runs
    assert R._points_status(pts, None, True) == "holds"  # a sure claim: no failure, holds


def test_gate_and_ends():
    assert R._gate("holds", {"a": True}) == ("holds", "holds")
    assert R._gate("holds", {"a": True, "b": False}) == ("inapplicable", "holds")
    assert R._gate("violated", {"a": None}) == ("unknown", "violated")
    assert R._gate("violated", {"a": False}, "not_met") == ("not_met", "violated")
    assert R._tri((1.0, 2.0), lambda v: v > 0.5) is True and R._tri((1.0, 2.0), lambda v: v > 1.5) is None
    assert R._over_ends((1.0, 2.0), lambda v: ("holds" if v > 1.5 else "violated", "x")) == ("unknown", "x")
    assert R._decide(True, True) == "holds" and R._decide(False, True) == "unknown"


# ----------------------------------------------------------------------------- Lemma 6
def _counterexample_ctx(ts, lmin, lam=1.0, ci=None, step_error=0.0):
    sub = data(n=1000, lam=lam, ci=ci)
    loss = T.constant_gram_loss(ts, 1000, 0.5)
    return ctx(sub, [run(ts, loss=loss, lambda_min=lmin, step_error=step_error)])


def test_lemma_6_rate_is_violated_by_the_counterexample_flow():
    ts = np.linspace(0, 3000, 61)  # past Eq. 10's time 2800.2
    row = R._row_lemma_6_rate(_counterexample_ctx(ts, 0.5))
    assert row.status == "violated" and row.observed == "violated"
    assert row.extra["envelopes"]["appendix"]["status"] == "violated"
    assert row.extra["derived_status"] == "holds"  # the valid replacement is not
    # premise λmin(H) ≥ λ0/2 fails from the start: the lemma says nothing, the conclusion is still shown
    row = R._row_lemma_6_rate(_counterexample_ctx(ts, 0.4))
    assert row.status == "inapplicable" and row.observed == "violated"
    # a short run: both envelopes stay above L̄(0)
    assert R._row_lemma_6_rate(_counterexample_ctx(np.linspace(0, 100, 11), 0.5)).status == "vacuous"
    # an integration error as large as the gap hides the violation
    assert R._row_lemma_6_rate(_counterexample_ctx(ts, 0.5, step_error=1e-3)).status != "violated"
    # λ0 ∈ [0.9, 1.1]: contradicted at 1.1, not at 0.9
    assert R._row_lemma_6_rate(_counterexample_ctx(ts, 0.6, ci=(0.9, 1.1))).status == "unknown"


def test_lemma_6_rate_note_places_lemma_6_where_theorem_1_uses_it():
    ts = np.linspace(0, 10, 11)
    c = ctx(data(n=1000, lam=1.0), [run(ts, loss=5 * np.exp(-0.3 * ts), lambda_min=0.5)])  # rate exactly 0.3
    row = R._row_lemma_6_rate(c)
    assert row.measured == pytest.approx(0.3)
    # the fitted rate against both printed rates: λ0/2 (main text) and λ0/4 (appendix)
    assert row.extra["rate_over_main"] == pytest.approx(0.6) and row.extra["rate_over_appendix"] == pytest.approx(1.2)
    assert "λ0/2 = 0.5 (main text; ratio 0.6)" in row.note and "λ0/4 = 0.25 (appendix; ratio 1.2)" in row.note
    # Eq. 10′/Eq. 10 on the full data at L̄(0) = 1: 5.005·(1 + 1000/κ) / (4·(log(1/κ) + 1))
    factor = (2 * (1 + 1000 / math.log(2)) / T.LEMMA6_CONSTANT) / (4 * (math.log(1 / math.log(2)) + 1))
    assert row.extra["factor_eq10_derived_over_printed"] == pytest.approx(factor)
    assert "exactly where it fails" in row.note and "constant factor" in row.note


def test_lemma_6_weights_printed_and_derived():
    sub = data(n=2, xi=3.0)  # X = 3: the derived bound is 3× the printed one
    ts = np.linspace(0, 1, 11)
    c = ctx(sub, [run(ts, max_weight_change=2 * 2 * ts / 10, lambda_min=1.0)], m=100)  # twice n t/√m
    row = R._row_lemma_6_weights(c)
    assert row.measured == pytest.approx(2.0) and row.status == "violated"
    assert row.extra["worst_ratio_derived"] == pytest.approx(2 / 3) and row.extra["derived_status"] == "holds"
    row = R._row_lemma_6_weights(ctx(sub, [run(ts, max_weight_change=2 * 2 * ts / 10, lambda_min=0.1)], m=100))
    assert row.status == "inapplicable" and row.observed == "violated"


# ----------------------------------------------------------------------------- Lemmas 1, 2, 5, Corollary 1
def test_lemma_2_is_decided_point_by_point():
    sub = data(n=2)  # slope 12·4/(√(2π)·0.1) = 191.5 per unit R; trivial bound 2
    ts = [0.0, 1.0, 2.0]
    R_t = [0.0, 0.001, 0.005]
    early_jump = [run(ts, max_weight_change=R_t, gram_change=[0, 0.5, 0.6]) for _ in range(3)]
    row = R._row_lemma_2(ctx(sub, early_jump))
    assert row.bound == pytest.approx(12 * 4 / (math.sqrt(2 * math.pi) * 0.1))
    # 0.5/0.001 = 500 > 191.5 at t = 1, although 0.6 < Eq. 7 at R(t1) = 0.96
    assert row.status == "violated" and row.measured == pytest.approx(500)
    good = run(ts, max_weight_change=R_t, gram_change=[0, 0.1, 0.6])
    assert R._row_lemma_2(ctx(sub, [good] * 3)).status == "unknown"  # 0 of 3: CI [0, 0.71] ∋ δ
    row = R._row_lemma_2(ctx(sub, [good] * 36))
    assert row.status == "holds" and row.extra["derived_status"] == "holds" and "≥ 36" in row.note
    # one failing run of three: 33% > δ but not significantly
    mixed = early_jump[:1] + [run(ts, max_weight_change=R_t, gram_change=[0, 0.1, 0.6])] * 2
    assert R._row_lemma_2(ctx(sub, mixed)).status == "unknown"
    # Eq. 7 above the trivial bound at every t
    far = [run(ts, max_weight_change=[0, 0.02, 0.05], gram_change=[0, 0.5, 0.6])] * 3
    assert R._row_lemma_2(ctx(sub, far)).status == "vacuous"
    # ε far above Lemma 1's condition at these R: inapplicable, conclusion still observed
    row = R._row_lemma_2(ctx(sub, early_jump, eps=0.05))  # slope ×1.16: 500 still above it
    assert row.status == "inapplicable" and row.observed == "violated"


def test_corollary_1_point_by_point():
    sub = data(n=2)
    ts = [0.0, 1.0, 2.0]
    runs = [run(ts, max_weight_change=[0, 0.001, 0.002], lambda_min=[1.0, 0.5, 0.9])] * 3
    row = R._row_corollary_1(ctx(sub, runs))  # λmin(H(0)) − 191.5·0.001 = 0.81 > 0.5 at t = 1
    assert row.status == "violated" and row.measured == pytest.approx(0.5)
    runs = [run(ts, max_weight_change=[0, 0.001, 0.002], lambda_min=[1.0, 0.9, 0.7])] * 3
    assert R._row_corollary_1(ctx(sub, runs)).status == "unknown"  # 3 runs cannot decide at δ
    assert R._row_corollary_1(ctx(sub, runs * 12)).status == "holds"
    runs = [run(ts, max_weight_change=[0, 0.01, 0.02], lambda_min=[1.0, 0.5, 0.5])] * 3
    assert R._row_corollary_1(ctx(sub, runs)).status == "vacuous"


def test_lemma_1_needs_its_eps_condition():
    sub = data(n=2, d=4, xi=2.0)
    ts = [0.0, 1.0]
    runs = [run(ts, max_weight_change=[0, 0.01], flip_fraction=[0, 0.5])]
    row = R._row_lemma_1(ctx(sub, runs))  # R̃/2 = 6·1·2·0.01/(√(2π)·2) = 0.024 < 0.5
    assert row.status == "violated"
    row = R._row_lemma_1(ctx(sub, runs, eps=0.3))
    assert row.status == "inapplicable" and row.observed == "violated"


def test_lemma_5_is_inapplicable_when_weights_move_beyond_R():
    sub = data(n=2)  # R = √(2π)/384 · 0.1 / 4 = 1.6e-4; Lemma 4′ width 4 log 20 = 12
    ts = np.linspace(0, 1, 5)
    moved = [run(ts, max_weight_change=ts, lambda_min=0.6) for _ in range(36)]
    row = R._row_lemma_5(ctx(sub, moved))
    assert row.status == "inapplicable" and row.observed == "holds"
    assert R._row_lemma_5(ctx(sub, moved[:3])).observed == "unknown"
    assert row.extra["premises"]["displacement"] is False
    collapsed = [run(ts, max_weight_change=ts, lambda_min=0.3) for _ in range(3)]
    assert R._row_lemma_5(ctx(sub, collapsed)).observed == "violated"
    still = [run(ts, max_weight_change=1e-5 * ts, lambda_min=0.3) for _ in range(3)]
    assert R._row_lemma_5(ctx(sub, still)).status == "violated"
    assert R._row_lemma_5(ctx(sub, still, m=5)).status == "inapplicable"  # below Lemma 4′'s width
    one_of_three = still[:1] + [run(ts, max_weight_change=1e-5 * ts, lambda_min=0.6)] * 2
    assert R._row_lemma_5(ctx(sub, one_of_three)).status == "unknown"


# ----------------------------------------------------------------------------- full-data rows
def test_lemma_4_accounts_for_width():
    full = data(n=2)  # Lemma 4′ width 4 log 20 = 12
    low = ctx(full, [], lmins=(0.5, 0.5, 0.5), m=100)
    assert R._row_lemma_4(low).status == "violated"
    low.m = 5
    row = R._row_lemma_4(low)
    assert row.status == "inapplicable" and row.observed == "violated"
    assert R._row_lemma_4(ctx(full, [], lmins=(1.0, 0.9, 0.8), m=100)).status == "unknown"  # 0 of 3
    assert R._row_lemma_4(ctx(full, [], lmins=(1.0, 0.9, 0.8) * 12, m=100)).status == "holds"  # 0 of 36
    # λ0 ∈ [0.9, 1.1]: ¾λ0 ∈ [0.675, 0.825] straddles 0.8
    straddle = ctx(data(n=2, ci=(0.9, 1.1)), [], lmins=(0.8, 0.8, 0.8), m=100)
    assert R._row_lemma_4(straddle).status == "unknown"


def test_lemma_7_printed_and_derived_decided_from_the_interval():
    full = data(n=2)  # ‖x_i‖ = 1, ε = 0: printed n/δ = 20; Lemma 7′ Σ(log 2 + √(1/2))/δ = 28.0
    row = R._row_lemma_7(ctx(full, [], losses0=(25.0,) * 36))
    assert row.bound == pytest.approx(20.0)
    assert row.extra["derived"] == pytest.approx(2 * (math.log(2) + math.sqrt(0.5)) / 0.1)
    assert row.status == "violated" and row.extra["derived_status"] == "holds"
    assert R._row_lemma_7(ctx(full, [], losses0=(1.0,) * 3)).status == "unknown"  # 0 of 3 cannot decide
    row = R._row_lemma_7(ctx(full, [], losses0=(1.0,) * 36))
    assert row.status == "holds" and row.extra["intervals"]["printed"][1] <= 0.1


def test_theorem_1_rows_decide_at_the_least_favourable_end():
    full = data(n=2)
    w = T.width_bound(2, 1, 0.1, 1.0, 0.0, 1.0, x_scale=1.0)
    ok = ctx(full, [], m=2 * w, losses0=(1.4,))
    assert R._row_width_bound(ok).status == "holds"
    assert R._row_theorem_1_time(ok).status == "holds"
    # ε = 0 meets the bound (0 ≤ bound): natural training is covered, whatever the bound's size
    assert R._row_epsilon_bound(ok).extra["derived"] < R.EPS_PRACTICAL
    assert R._row_epsilon_bound(ok).status == "holds"
    # a positive ε at or below a bound smaller than one grey level: met, but no practical ε is
    tiny = ctx(full, [], eps=0.5 * R._row_epsilon_bound(ok).extra["derived"])
    assert R._row_epsilon_bound(tiny).status == "vacuous"
    assert R._row_width_bound(ctx(full, [], m=w / 2)).status == "not_met"
    # the width falls with λ0: m between width(1.1) and width(0.9) is undecided
    wide = data(n=2, ci=(0.9, 1.1))
    assert R._row_width_bound(ctx(wide, [], m=w)).status == "unknown"
    assert R._row_epsilon_bound(ctx(full, [], eps=0.01)).status == "not_met"


def test_theorem_1_conclusion():
    sub = data(n=2)
    m = 2 * T.width_bound(2, 1, 0.05, 1.0, 0.0, 1.0, x_scale=1.0)  # every condition of Theorem 1 met (δ ≥ 0.05)
    t_need = T.time_needed(1.4, 1.0, n=2, variant="derived")
    ts = np.linspace(0, 2 * t_need, 21)
    zero_early = [run(ts, loss=1.4, certified_error=np.where(ts < t_need / 2, 0.5, 0.0))] * 3
    row = R._row_theorem_1_conclusion(ctx(sub, zero_early, m=m))
    assert row.status == "unknown" and "≥ 11" in row.note  # 0 of 3 at 3δ = 0.3: CI [0, 0.71]
    row = R._row_theorem_1_conclusion(ctx(sub, zero_early * 4, m=m))  # 12 runs ≥ runs_to_decide(0.3) = 11
    assert row.status == "holds" and row.observed == "holds"
    never = [run(ts, loss=1.4, certified_error=0.5)] * 3
    assert R._row_theorem_1_conclusion(ctx(sub, never, m=m)).status == "unknown"  # 3/3 vs 3δ = 0.3: CI [0.29, 1]
    assert R._row_theorem_1_conclusion(ctx(sub, never, m=m, delta=0.05)).status == "violated"
    short = [run(ts[:5], loss=1.4, certified_error=0.5)] * 3  # t1 < t_need: cannot tell yet
    assert R._row_theorem_1_conclusion(ctx(sub, short, m=m)).observed == "unknown"
    row = R._row_theorem_1_conclusion(ctx(sub, zero_early * 4, m=1000))
    assert row.status == "not_met" and row.observed == "holds"


def test_eq5_identity_row():
    sub = data(n=2)
    ts = [0.0, 1.0]
    assert R._row_eq5_identity(ctx(sub, [run(ts, identity_residual=1e-4)])).status == "holds"
    row = R._row_eq5_identity(ctx(sub, [run(ts, identity_residual=[1e-4, 0.5])]))
    assert row.status == "violated" and row.measured == pytest.approx(0.5)


def test_observed_is_rendered_and_serialized():
    row = R.Row("lemma_5", 1.0, 0.5, "inapplicable", "Lemma 5", observed="holds")
    rep = R.Report(rows={"lemma_5": row}, meta={"constants": ""})
    assert "inapplicable (observed: holds)" in rep.to_markdown()
    assert rep.to_dict()["rows"]["lemma_5"]["observed"] == "holds"
    assert set(R.STATUSES) >= {"not_met", "inapplicable"}


# ----------------------------------------------------------------------------- necessary conditions
def _with(run_, path=None, lam_max=None):
    run_.path = np.asarray(path, float) if path is not None else None
    run_.lam_max = np.asarray(lam_max, float) if lam_max is not None else None
    return run_


def test_movement_necessary_compares_the_polyline_with_the_bound():
    s = data(n=2, d=1, xi=1.0)  # X = 1
    ts = [0.0, 1.0, 2.0]
    loss = [10.0, 3.0, 0.5]
    need = [(10.0 - L) / (2 * 1.0 * math.sqrt(100)) for L in loss]  # (L̄(0) − L̄(t))/(nX√m), m = 100
    ok = R._row_movement_necessary(ctx(s, [_with(run(ts, loss=loss), path=[0, need[1] * 1.5, need[2] * 1.01],
                                                lam_max=[1, 1, 1])]))
    assert ok.status == "holds" and ok.measured == pytest.approx(1.01)
    assert ok.extra["path_at_kappa"] == [pytest.approx(need[2] * 1.01)]
    bad = R._row_movement_necessary(ctx(s, [_with(run(ts, loss=loss), path=[0, need[1] * 0.5, need[2]],
                                                 lam_max=[1, 1, 1])]))
    assert bad.status == "violated" and bad.measured == pytest.approx(0.5)


def test_loss_rate_lower_refuses_exponential_decay_from_a_large_loss():
    s = data(n=2, d=1, xi=1.0)
    ts = np.linspace(0, 10, 11)
    slow = 50.0 / (1 + 1.0 * 50.0 * ts)  # exactly the envelope at Λ = 1 / 1.05 margin: holds
    fast = 50.0 * np.exp(-2.0 * ts)  # exponential from L̄(0) = 50 with λmax = 1: impossible
    ok = R._row_loss_rate_lower(ctx(s, [_with(run(ts, loss=slow), path=np.zeros(11), lam_max=np.ones(11))]))
    assert ok.status == "holds" and ok.measured >= 1
    # the margin is read at t > 0 (t = 0 is 1 by construction): (1 + 52.5t)/(1 + 50t) rises in t, least at t = 1
    assert ok.measured == pytest.approx(53.5 / 51, rel=1e-12)
    bad = R._row_loss_rate_lower(ctx(s, [_with(run(ts, loss=fast), path=np.zeros(11), lam_max=np.ones(11))]))
    assert bad.status == "violated" and bad.measured < 1e-3
