import warnings

import numpy as np
import pytest

import ntkflow as nf
from conftest import make_problem

W, A, X, Y = make_problem(seed=2, n=6, m=60, d=5, lo=0.1)
EPS = 0.02


def flow(t1, **kw):
    kw.setdefault("certify", False)
    return nf.gradient_flow(W, A, X, Y, EPS, t1, **kw)


def test_euler_and_rk4_converge_at_their_orders_on_a_flip_free_segment():
    t1 = 0.03
    ref = flow(t1, solver="rk4", dt=t1 / 256, save_at=[t1])
    assert ref.flip_fraction[-1] == 0  # the segment has no indicator flips
    errs = {}
    for solver in ("euler", "rk4"):
        e = [np.linalg.norm(flow(t1, solver=solver, dt=t1 / k, save_at=[t1]).W - ref.W) for k in (1, 2)]
        errs[solver] = e[0] / e[1]
    assert errs["euler"] == pytest.approx(2.0, rel=0.15)
    assert errs["rk4"] == pytest.approx(16.0, rel=0.25)


def test_adaptive_solvers_agree_with_fine_fixed_step():
    t1 = 0.3
    ref = flow(t1, solver="rk4", dt=t1 / 2000, save_at=[t1])
    scale = np.linalg.norm(ref.W - W)
    for solver in ("tsit5", "dopri5"):
        tr = flow(t1, solver=solver, rtol=1e-7, atol=1e-9, save_at=[t1])
        assert np.linalg.norm(tr.W - ref.W) < 1e-3 * scale
        assert tr.meta["accepted_steps"] > 0
    coarse = flow(t1, solver="rk4", save_at=[t1])
    assert np.linalg.norm(coarse.W - ref.W) < 1e-2 * scale


def test_certificate_bounds_the_true_error():
    t1 = 0.3
    ref = flow(t1, solver="rk4", dt=t1 / 4000, save_at=[t1])
    for solver, kw in (("euler", {"dt": t1 / 100}), ("rk4", {}), ("tsit5", {})):
        tr = nf.gradient_flow(W, A, X, Y, EPS, t1, solver=solver, save_at=[t1], **kw)
        true = np.linalg.norm(tr.W - ref.W)
        assert true <= tr.error_estimate + 1e-12, solver
        assert tr.error_estimate < 50 * max(true, 1e-10), solver  # and not absurdly loose


def test_coarse_step_triggers_warning():
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        nf.gradient_flow(W, A, X, Y, EPS, 2.0, solver="euler", dt=0.2, save_at=[2.0])
    assert any("step-error estimate" in str(w.message) for w in rec)


def test_loss_never_increases_and_energy_identity():
    tr = flow(2.0, solver="rk4", save_at=np.linspace(0, 2, 21), keep_W=True)
    assert np.all(np.diff(tr.loss) <= 1e-10)
    # dL̄/dt from the integrator + l'ᵀHl' ≈ 0 (Eq. 5), relative to l'ᵀHl' at the same W:
    # O(h²) away from kinks; a kink inside the difference window gives a spike of O(h)
    rel = []
    for k, Wt in enumerate(tr.W_saved):
        lp = -1 / (1 + np.exp(nf.ibp_lower_margin(Wt, A, X, Y, EPS)))
        rel.append(abs(tr.identity_residual[k]) / (lp @ nf.gram_matrix(Wt, A, X, Y, EPS) @ lp))
    assert np.median(rel) < 1e-4
    assert np.max(rel) < 0.05


def test_exact_identity_grad_norm_equals_quadratic_form():
    # −dL̄/dt = ‖∇L̄‖² = l'ᵀ H l' exactly (closed-form gradient vs structured Gram)
    for eps in (0.0, 0.05, 0.3):
        g = nf.robust_loss_grad(W, A, X, Y, eps)
        lp = -1 / (1 + np.exp(nf.ibp_lower_margin(W, A, X, Y, eps)))
        assert np.sum(g * g) == pytest.approx(lp @ nf.gram_matrix(W, A, X, Y, eps) @ lp, rel=1e-12)


def test_tracked_values_equal_direct_recomputation():
    tr = flow(1.0, solver="rk4", save_at=[0.0, 0.5, 1.0], keep_W=True)
    H0 = nf.gram_matrix(W, A, X, Y, EPS)
    Ap0, Am0 = nf.indicators(W, A, X, Y, EPS)
    for k, Wt in enumerate(tr.W_saved):
        u_lo = nf.ibp_lower_margin(Wt, A, X, Y, EPS)
        H = nf.gram_matrix(Wt, A, X, Y, EPS)
        Ap, Am = nf.indicators(Wt, A, X, Y, EPS)
        flips = (Ap != Ap0) | (Am != Am0)
        assert tr.loss[k] == pytest.approx(nf.robust_loss(Wt, A, X, Y, EPS), rel=1e-12)
        assert tr.certified_error[k] == np.mean(u_lo <= 0)
        assert tr.train_error[k] == np.mean(nf.margin(Wt, A, X, Y) <= 0)
        assert tr.lambda_min[k] == pytest.approx(np.linalg.eigvalsh(H)[0], rel=1e-9)
        assert tr.gram_change[k] == pytest.approx(np.linalg.norm(H - H0, 2), rel=1e-9, abs=1e-12)
        assert tr.flip_fraction[k] == flips.mean()
        assert tr.neuron_flip_fraction[k] == flips.any(axis=0).mean()
        assert tr.max_weight_change[k] == pytest.approx(np.max(np.linalg.norm(Wt - W, axis=1)), rel=1e-12)
    np.testing.assert_array_equal(tr.W, tr.W_saved[-1])


def test_weight_movement_bound_from_bounded_loss_derivative():
    # ‖w_r(t) − w_r(0)‖ ≤ n t max_i(‖x_i‖₂ + ε√d) / √m, because |l'| ≤ 1
    t1 = 3.0
    tr = flow(t1, solver="rk4", save_at=np.linspace(0, t1, 7))
    n, d = X.shape
    bound = n * tr.ts * np.max(np.linalg.norm(X, axis=1) + EPS * np.sqrt(d)) / np.sqrt(W.shape[0])
    assert np.all(tr.max_weight_change <= bound + 1e-12)


def test_reproducible_and_save_load_roundtrip(tmp_path):
    a = flow(0.5, save_at=[0.0, 0.25, 0.5], certify=True)
    b = flow(0.5, save_at=[0.0, 0.25, 0.5], certify=True)
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.lambda_min, b.lambda_min)
    p = a.save(tmp_path / "traj")
    c = nf.Trajectory.load(p)
    np.testing.assert_array_equal(c.W, a.W)
    np.testing.assert_array_equal(c.loss, a.loss)
    assert c.meta == a.meta and c.error_estimate == a.error_estimate
    assert not list(tmp_path.glob(".*tmp"))
    (tmp_path / "traj.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable npz"):
        nf.Trajectory.load(p)


def test_default_save_times_and_zero_horizon():
    tr = flow(0.2)
    assert len(tr.ts) == 101 and tr.ts[0] == 0 and tr.ts[-1] == 0.2
    z = flow(0.0, save_at=[0.0])
    np.testing.assert_array_equal(z.W, W)


@pytest.mark.parametrize("kw,match", [
    ({"t1": -1.0}, "t1"),
    ({"t1": 1.0, "save_at": [0.5, 0.2]}, "save_at: must be strictly increasing"),
    ({"t1": 1.0, "save_at": [0.5, 2.0]}, r"save_at: must lie in \[0, t1\]"),
    ({"t1": 1.0, "dt": 0.0}, "dt"),
    ({"t1": 1.0, "solver": "leapfrog"}, "solver: unknown"),
])
def test_flow_bad_input(kw, match):
    t1 = kw.pop("t1")
    with pytest.raises(ValueError, match=match):
        nf.gradient_flow(W, A, X, Y, EPS, t1, **kw)
