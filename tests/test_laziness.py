"""The κ stop rule behind experiments/laziness.toml: training ends at the first epoch whose
end weights have L̄ < κ, checked against an independent numpy IBP loss along a full run."""

import numpy as np
import pytest

import ntkflow as nf
from ntkflow.training.settings import StopRule
from conftest import make_problem

W, A, X, Y = make_problem(seed=5, n=8, m=40, d=5, lo=0.1)
EPS = 0.01


def _ibp_loss(Wt, a, X, y, eps):
    """Σ_i log(1+exp(−u̲_i)), u̲_i = Σ_r y_i a_r σ(w_r·x_i ∓ ε‖w_r‖₁)/√m (the bound side by sign(y_i a_r))."""
    m = Wt.shape[0]
    z = X @ Wt.T                                          # (n, m)
    r = eps * np.abs(Wt).sum(1)                           # (m,)
    s = np.sign(y[:, None] * a[None, :])
    lo = np.maximum(z - s * r, 0.0)
    u = (y[:, None] * a[None, :] * lo).sum(1) / np.sqrt(m)
    return float(np.log1p(np.exp(-u)).sum())


def _full_run(epochs):
    return nf.train(W, A, X, Y, EPS, optimizer="gd", lr=0.5, epochs=epochs, keep_W=True)


def test_numpy_loss_matches_the_tracker():
    tr = _full_run(5)
    got = [_ibp_loss(Wt, np.asarray(A), np.asarray(X), np.asarray(Y), EPS) for Wt in tr.W_saved]
    np.testing.assert_allclose(got, tr.loss, rtol=1e-10)


def test_kappa_stops_at_the_first_epoch_below():
    full = _full_run(30)
    losses = np.array([_ibp_loss(Wt, np.asarray(A), np.asarray(X), np.asarray(Y), EPS) for Wt in full.W_saved])
    assert losses[-1] < losses[0]  # the run makes progress, so a κ in between is crossed
    kappa = 0.5 * (losses[0] + losses[-1])
    first = int(np.argmax(losses < kappa))
    assert 0 < first < 30
    rule = StopRule(patience=1000, rel_tol=0.0, abs_tol=0.0, kappa=kappa)
    tr = nf.train(W, A, X, Y, EPS, optimizer="gd", lr=0.5, epochs=30, stop=rule)
    assert tr.meta["reached_kappa"] and tr.meta["converged"]
    assert tr.meta["epochs_run"] == first
    assert tr.loss[-1] < kappa <= losses[first - 1]
    np.testing.assert_allclose(tr.W, full.W_saved[first], rtol=1e-12, atol=1e-14)


def test_unreached_kappa_runs_the_budget():
    rule = {"patience": 1000, "rel_tol": 0.0, "abs_tol": 0.0, "kappa": 1e-12}
    tr = nf.train(W, A, X, Y, EPS, optimizer="gd", lr=0.5, epochs=6, stop=rule)
    assert not tr.meta["reached_kappa"] and tr.meta["epochs_run"] == 6


def test_bad_kappa():
    with pytest.raises(ValueError, match="stop.kappa"):
        StopRule(kappa=-1.0)


def test_mean_path_length_is_the_polyline_of_the_gd_iterates():
    tr = _full_run(12)
    steps = np.linalg.norm(np.diff(tr.W_saved, axis=0), axis=2)       # (epochs, m)
    want = np.concatenate([[0.0], np.cumsum(steps, axis=0).mean(1)])
    np.testing.assert_allclose(tr.series["mean_path_length"], want, rtol=1e-10, atol=1e-15)
    # a path is at least its chord: ≥ the mean displacement, and ≥ the max one / m
    disp = np.linalg.norm(tr.W_saved[-1] - tr.W_saved[0], axis=1)
    assert want[-1] >= disp.mean() * (1 - 1e-12) and want[-1] > 0
