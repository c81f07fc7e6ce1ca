import numpy as np
import pytest

import ntkflow as nf


def test_assumption_1_holds_and_reports_xi():
    X = np.array([[0.1, 1.0], [0.5, 0.2]])
    r = nf.check_assumption_1(X, 0.1)
    assert r and r.holds
    assert r.xi == pytest.approx(np.sqrt(0.29))
    assert r.violating.size == 0


def test_assumption_1_fails_for_eps_above_a_coordinate_and_for_raw_pixels():
    X = np.array([[0.1, 1.0], [0.5, 0.2], [0.3, 0.3]])
    r = nf.check_assumption_1(X, 0.25)
    assert not r
    assert r.violating.tolist() == [0, 1]
    mn = nf.data.mnist25(n=50)
    assert not nf.check_assumption_1(mn.X, 0.01)
    assert nf.check_assumption_1(nf.normalize_to_box(mn.X, 0.01), 0.01)


def test_normalize_to_box_maps_unit_interval_onto_eps_box():
    X = np.array([[0.0, 1.0, 0.5]])
    np.testing.assert_allclose(nf.normalize_to_box(X, 0.2), [[0.2, 1.0, 0.6]])
    with pytest.raises(ValueError, match="X"):
        nf.normalize_to_box(X * 2, 0.2)


def test_assumption_2_exact_on_constructed_pairs():
    x = np.array([0.3, 0.5, 0.7])
    # x and 1.1·x are parallel at every ε
    X = np.stack([x, 1.1 * x])
    for eps in (0.0, 0.01, 0.1):
        r = nf.check_assumption_2(X, eps)
        assert not r and r.pair == (0, 1) and r.violating_pairs == 1
    # nearly parallel: parallel once the boxes are wide enough
    X = np.stack([x, 1.1 * x + np.array([0.0, 0.02, 0.0])])
    assert nf.check_assumption_2(X, 0.0)
    assert nf.check_assumption_2(X, 0.001)
    assert not nf.check_assumption_2(X, 0.01)
    # clearly non-parallel
    X = np.array([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]])
    r = nf.check_assumption_2(X, 0.05)
    assert r and r.separation > 1 and r.pair is None


def test_assumption_2_threshold_matches_closed_form():
    # boxes around (1, 2)·s and (2, 1)·s: 1-D ratio intervals meet exactly at the critical ε
    # c ∈ [(2−e)/(1+e), (2+e)/(1−e)] ∩ [(1−e)/(2+e), (1+e)/(2−e)]: nonempty iff (2−e)/(1+e) ≤ (1+e)/(2−e)
    # ⇔ 2 − e ≤ 1 + e ⇔ e ≥ 0.5 (scaled by s = 0.4: ε* = 0.2)
    X = 0.4 * np.array([[1.0, 2.0], [2.0, 1.0]]) + 0.0
    assert nf.check_assumption_2(X, 0.199)
    assert not nf.check_assumption_2(X, 0.201)
    assert nf.check_assumption_2(X, 0.199).separation == pytest.approx(((0.8 - 0.199) / (0.4 + 0.199)) / ((0.4 + 0.199) / (0.8 - 0.199)))


def test_assumption_2_witness_is_really_parallel():
    rng = np.random.default_rng(0)
    X = rng.uniform(0.2, 1.0, (30, 6))
    X[17] = X[4] * 0.97 + 0.004
    r = nf.check_assumption_2(X, 0.01)
    assert not r and r.pair == (4, 17)
    # c·B_4 meets B_17 coordinatewise
    c = r.c
    lo4, hi4, lo17, hi17 = X[4] - 0.01, X[4] + 0.01, X[17] - 0.01, X[17] + 0.01
    assert np.all(c * lo4 <= hi17 + 1e-12) and np.all(c * hi4 >= lo17 - 1e-12)


def test_assumption_2_agrees_between_fast_and_general_paths():
    rng = np.random.default_rng(1)
    X = rng.uniform(0.05, 1.0, (40, 5))
    X[3] = X[9] * 1.02
    from ntkflow.paper.assumptions import _ratio_bounds, _ratio_bounds_positive
    import jax
    with jax.enable_x64(True):
        for eps in (0.0, 0.03):
            L1, U1 = _ratio_bounds(X - eps, X + eps, X - eps, X + eps)
            L2, U2 = _ratio_bounds_positive(X - eps, X + eps, X - eps, X + eps)
            np.testing.assert_allclose(L1, L2)
            np.testing.assert_allclose(U1, U2)


def test_assumption_2_on_embedded_mnist():
    d = nf.data.mnist25()
    Xb = nf.normalize_to_box(d.X, 0.04)
    r = nf.check_assumption_2(Xb, 0.04)
    assert r  # real digits are far from parallel
    dup = np.vstack([Xb, Xb[:1]])
    r = nf.check_assumption_2(dup, 0.0)
    assert not r and r.pair == (0, 1000) and r.c == pytest.approx(1.0)
