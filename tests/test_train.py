import numpy as np
import pytest

import ntkflow as nf
from conftest import make_problem

W, A, X, Y = make_problem(seed=3, n=8, m=50, d=5, lo=0.1)
EPS = 0.02


def test_full_batch_gd_approaches_the_flow():
    t1 = 0.5
    ref = nf.gradient_flow(W, A, X, Y, EPS, t1, save_at=[t1], dt=t1 / 5000, certify=False, track_gram=False)
    disp = np.linalg.norm(ref.W - W)
    errs = []
    for steps in (50, 100, 200):
        tr = nf.train(W, A, X, Y, EPS, optimizer="gd", lr=t1 / steps, epochs=steps)
        errs.append(np.linalg.norm(tr.W - ref.W))
    assert errs[-1] < 0.02 * disp
    assert errs[0] > errs[1] > errs[2]  # first-order convergence in the step
    assert errs[0] / errs[2] == pytest.approx(4.0, rel=0.5)


def test_sgd_reduces_loss_and_is_reproducible():
    a = nf.train(W, A, X, Y, 0.0, lr=0.05, epochs=20, batch_size=2, seed=1)
    b = nf.train(W, A, X, Y, 0.0, lr=0.05, epochs=20, batch_size=2, seed=1)
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.loss, b.loss)
    assert a.loss[-1] < 0.8 * a.loss[0] and np.all(np.diff(a.loss[::5]) < 0)
    assert len(a.ts) == 21 and a.meta["optimizer"] == "sgd"
    c = nf.train(W, A, X, Y, 0.0, lr=0.05, epochs=20, batch_size=2, seed=2)
    assert not np.array_equal(a.W, c.W)


def test_eps_schedule_warmup_then_ramp():
    tr = nf.train(W, A, X, Y, 0.1, lr=0.01, epochs=6, batch_size=4, eps_schedule={"warmup": 2, "ramp": 2})
    np.testing.assert_allclose(tr.eps, [0.0, 0.0, 0.0, 0.05, 0.1, 0.1, 0.1])
    # certified error is measured at the scheduled ε
    np.testing.assert_array_equal(tr.certified_error[:3], tr.train_error[:3])
    tr2 = nf.train(W, A, X, Y, 0.1, lr=0.01, epochs=2, eps_schedule=lambda e: 0.05)
    assert tr2.eps[-1] == 0.05


def test_optimizers_from_optax():
    for opt in ("sgd", "momentum", "adam", "gd"):
        tr = nf.train(W, A, X, Y, 0.0, optimizer=opt, lr=0.01, epochs=5, batch_size=4)
        assert tr.loss[-1] < tr.loss[0], opt


def test_track_gram_records_lambda_min():
    tr = nf.train(W, A, X, Y, EPS, lr=0.01, epochs=2, batch_size=4, track_gram=True)
    assert tr.lambda_min[0] == pytest.approx(np.linalg.eigvalsh(nf.gram_matrix(W, A, X, Y, EPS))[0], rel=1e-9)
    assert tr.gram_change[0] == 0
    assert np.all(np.isnan(nf.train(W, A, X, Y, EPS, lr=0.01, epochs=1).lambda_min))


@pytest.mark.parametrize("kw,match", [
    ({"lr": 0.0, "epochs": 1}, "lr"),
    ({"lr": 0.1, "epochs": 0}, "epochs"),
    ({"lr": 0.1, "epochs": 1, "batch_size": 0}, "batch_size"),
    ({"lr": 0.1, "epochs": 1, "batch_size": 9}, "batch_size"),
    ({"lr": 0.1, "epochs": 1, "optimizer": "lbfgs-x"}, "optimizer: unknown"),
    ({"lr": 0.1, "epochs": 1, "eps_schedule": {"begin": 1}}, "eps_schedule"),
    ({"lr": 0.1, "epochs": 1, "eps_schedule": {"start": 2}}, "schedule.start"),
])
def test_train_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        nf.train(W, A, X, Y, EPS, **kw)


def test_float32_training_tracks_float64_and_record_every():
    a64 = nf.train(W, A, X, Y, EPS, lr=0.01, epochs=6, batch_size=4, record_every=3)
    a32 = nf.train(W, A, X, Y, EPS, lr=0.01, epochs=6, batch_size=4, record_every=3, dtype="float32")
    np.testing.assert_array_equal(a64.ts, [0, 3, 6])
    assert a32.W.dtype == np.float64
    np.testing.assert_allclose(a32.W, a64.W, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(a32.loss, a64.loss, rtol=1e-4)


def test_eps_schedule_is_the_one_ramp_family():
    """``EpsSchedule`` is ``objectives.schedules.Ramp`` (start 0): the same object, the same values."""
    from ntkflow.objectives.schedules import Ramp

    assert nf.EpsSchedule is Ramp
    s = nf.EpsSchedule(warmup=2, ramp=8)
    assert [s(t, 0.1) for t in (0, 1.9, 2, 6, 10, 12)] == [0.0, 0.0, 0.0, 0.1 * 0.5, 0.1, 0.1]
