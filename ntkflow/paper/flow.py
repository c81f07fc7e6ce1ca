"""Gradient flow dW/dt = −∂L̄/∂W (Eq. 4) with a step-error certificate.

Solvers: fixed-step ``euler`` and ``rk4`` (a ``lax.fori_loop``, the reference) and
adaptive ``tsit5`` / ``dopri5`` from diffrax with a PID step-size controller.

Accuracy: the right-hand side is only piecewise smooth — it jumps when an indicator
flips (w_rᵀx_i ∓ ε‖w_r‖₁ crosses 0). Between flips the methods have their classical
order (1 for Euler, 4 for RK4, 5 for Tsit5/Dopri5); a step that straddles a flip makes
a local error O(h²) times the jump, which is O(1/√m) per flip, so with many flips the
observed global order drops towards 1. That is why the certificate is measured, not
assumed: each run is repeated alongside with half the step (fixed step) or 10×
tighter tolerances (adaptive), and ``error_estimate`` is 2·max_t ‖W(t) − W_ref(t)‖_F
(the factor 2 is Richardson's for order 1, the worst case).

Where the flow pushes a pre-activation onto its kink from both sides the solution
slides along the switching surface (a Filippov sliding mode) and explicit solvers
chatter across it with amplitude O(h): different solvers then agree only to O(h),
and the certificate shows it. Adaptive solvers spend many rejected steps at kinks;
for wide nets the fixed-step RK4 is usually the cheaper way to a given certificate.
"""

from __future__ import annotations

import math
import warnings
from functools import partial

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from .. import _validate as V
from .._core.errors import NtkflowError
from .._jax import row_norms, x64
from .gram import _gram
from .loss import _robust_loss, _robust_loss_and_grad
from .._progress import progress as progress_bar
from .tracker import Trajectory, stack_rows, tracker

__all__ = ["gradient_flow", "SOLVERS"]

SOLVERS = ("euler", "rk4", "tsit5", "dopri5")
_ORDER = {"euler": 1, "rk4": 4, "tsit5": 5, "dopri5": 5}
#: Most steps one run may take: diffrax's ``max_steps`` and the fixed-step loop count are 32-bit.
STEPS_MAX = 2**31 - 1


def _rhs(W, a, X, y, eps, l1=None):
    """−∂L̄/∂W (Eq. 4); ``l1`` = ‖w_r‖₁ when the caller carries it (see ``_step``)."""
    return -_robust_loss_and_grad(W, a, X, y, eps, l1)[1]


def _with_norms(W):
    """(W, ‖w_r‖₁): the norms are reduced in the elementwise pass that made W."""
    return W, jnp.sum(jnp.abs(W), axis=1)


def _bare(W):
    """(W, None): the right-hand side reduces ‖w_r‖₁ itself (the generic path)."""
    return W, None


def _step(p, a, X, y, eps, h, method, at=_with_norms):
    """One Euler or RK4 step of Eq. 4 from p = at(W) to at(W(t + h)).

    With ``at = _with_norms`` the row norms of each stage point are computed where the
    point is formed, never from a loop parameter: XLA on CPU can fuse that reduction
    into the product X Wᵀ and run it ~3× slower (model._ibp_preact). Same arithmetic
    as the plain formulas (``at = _bare``), to rounding.
    """
    f = lambda q: _rhs(q[0], a, X, y, eps, q[1])  # noqa: E731
    W = p[0]
    if method == "euler":
        return at(W + h * f(p))
    k1 = f(p)
    k2 = f(at(W + h / 2 * k1))
    k3 = f(at(W + h / 2 * k2))
    k4 = f(at(W + h * k3))
    return at(W + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4))


@partial(jax.jit, static_argnames=("method", "carry_norms"))
def _fixed_segment(W, a, X, y, eps, h, k, method, carry_norms=True):
    """k steps of size h (k is traced: one compilation for every segment). ``carry_norms``
    carries ‖w_r‖₁ through the loop (the fast path); False is the generic loop."""
    p = (W, row_norms(W)) if carry_norms else _bare(W)
    body = lambda _, q: _step(q, a, X, y, eps, h, method, _with_norms if carry_norms else _bare)  # noqa: E731
    return jax.lax.fori_loop(0, k, body, p)[0]


@partial(jax.jit, static_argnames=("method", "max_steps"))
def _adaptive_segment(W, a, X, y, eps, t0, t1, dt0, rtol, atol, method, max_steps):
    solver = diffrax.Tsit5() if method == "tsit5" else diffrax.Dopri5()
    term = diffrax.ODETerm(lambda t, w, args: _rhs(w, a, X, y, eps))
    sol = diffrax.diffeqsolve(
        term, solver, t0, t1, dt0, W,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        saveat=diffrax.SaveAt(t1=True), max_steps=max_steps, throw=False,
    )
    return sol.ys[-1], sol.stats["num_accepted_steps"], sol.stats["num_rejected_steps"], sol.result._value


@partial(jax.jit, static_argnames=("method",))
def _loss_rate(W, a, X, y, eps, h, method):
    """dL̄/dt along the integrator: central difference over one step forward and back."""
    fwd = _robust_loss(_step((W, row_norms(W)), a, X, y, eps, h, method)[0], a, X, y, eps)
    bwd = _robust_loss(_step((W, row_norms(W)), a, X, y, eps, -h, method)[0], a, X, y, eps)
    return (fwd - bwd) / (2 * h)


def _save_times(save_at, t1):
    if save_at is None:
        return np.linspace(0.0, t1, 101)
    ts = V.array("save_at", save_at, 1)
    if np.any(np.diff(ts) <= 0):
        raise NtkflowError("save_at: must be strictly increasing")
    if ts[0] < 0 or ts[-1] > t1:
        raise NtkflowError(f"save_at: must lie in [0, t1] = [0, {t1}], got [{ts[0]}, {ts[-1]}]")
    return ts


def gradient_flow(W0, a, X, y, eps, t1, *, save_at=None, solver: str = "rk4", dt: float | None = None,
                  rtol: float = 1e-5, atol: float = 1e-7, certify: bool = True, track_gram: bool = True,
                  keep_W: bool = False, max_steps: int = 1_000_000, progress: bool = False) -> Trajectory:
    """Integrate dW/dt = −∂L̄/∂W (Eq. 4) from W0 over [0, t1]; return a ``Trajectory``.

    ``save_at`` (default 101 even points of [0, t1]) are the times where every tracked
    quantity (``tracker.SERIES``) is recorded; ``keep_W`` also keeps W there.
    ``dt`` (fixed-step solvers; the adaptive ones start from it) defaults to
    0.25/λmax(H(0)) for rk4 and 0.02/λmax(H(0)) for euler: the flow's fastest time
    scale is set by λmax(H)·max l'' ≤ λmax(H)/4, the curvature of L̄ along the Gram
    directions, and these steps keep the certificate near 1e-3 of the displacement. ``rtol``/``atol`` control the adaptive solvers. With ``certify``
    the run is repeated with half the step (or 10× tighter tolerances) and
    ``error_estimate`` (and the ``step_error`` series) measure the difference; a warning
    says when it exceeds 1% of the weight displacement ‖W(t1) − W0‖_F.
    ``max_steps`` bounds the steps of one run with any solver (for the fixed-step ones,
    t1/dt). Float64 throughout; deterministic on CPU.
    """
    W0, a, X, y, eps = V.problem(W0, a, X, y, eps, gram=True)  # H(0) sets the default dt
    t1 = V.positive_float("t1", t1, allow_zero=True)
    if solver not in SOLVERS:
        raise NtkflowError(f"solver: unknown {solver!r}; choose one of {', '.join(SOLVERS)}")
    rtol, atol = V.positive_float("rtol", rtol), V.positive_float("atol", atol)
    certify, track_gram, keep_W, progress = (V.flag(k, v) for k, v in (
        ("certify", certify), ("track_gram", track_gram), ("keep_W", keep_W), ("progress", progress)))
    max_steps = V.positive_int("max_steps", max_steps, maximum=STEPS_MAX)
    if dt is not None:
        dt = _fixed_steps(V.positive_float("dt", dt), t1, max_steps, solver)
    ts = _save_times(save_at, t1)
    return _gradient_flow(W0, a, X, y, eps, t1, ts, solver, dt, rtol, atol, certify, track_gram, keep_W,
                          max_steps, progress)


def _fixed_steps(dt: float, t1: float, max_steps: int, solver: str, default: str = "") -> float:
    """``dt``, once its number of fixed steps t1/dt is known to be within ``max_steps``."""
    if solver in ("euler", "rk4") and t1 / dt > max_steps:
        raise NtkflowError(f"dt: t1/dt = {t1 / dt:.3g} steps{default} exceed max_steps = {max_steps}; "
                         "pass a larger dt or max_steps")
    return dt


@x64
def _gradient_flow(W0, a, X, y, eps, t1, ts, solver, dt, rtol, atol, certify, track_gram, keep_W,
                   max_steps, progress):
    W0, a, X, y = (jnp.asarray(v) for v in (W0, a, X, y))
    adaptive = solver in ("tsit5", "dopri5")
    H0 = np.asarray(_gram(W0, a, X, y, eps))
    lam_max = float(scipy.linalg.eigvalsh(H0, subset_by_index=[len(y) - 1] * 2)[0])
    if dt is None:
        dt = _fixed_steps((0.02 if solver == "euler" else 0.25) / max(lam_max, 1e-12), t1, max_steps, solver,
                          f" (dt = {0.02 if solver == 'euler' else 0.25}/λmax(H(0)) by default)")
    h_id = dt / 10  # central difference: O(h_id²) away from kinks
    rate = lambda W: float(_loss_rate(W, a, X, y, eps, h_id, "rk4" if adaptive else solver))  # noqa: E731
    record = tracker(W0, a, X, y, eps, gram=track_gram, loss_rate=rate, H0=H0)
    stats = {"accepted_steps": 0, "rejected_steps": 0, "ref_accepted_steps": 0}

    def advance(W, t0, t_end, ref: bool):
        if t_end <= t0:
            return W
        if adaptive:
            tol = 10.0 if ref else 1.0
            W, acc, rej, res = _adaptive_segment(W, a, X, y, eps, t0, t_end, min(dt, t_end - t0), rtol / tol,
                                                 atol / tol, solver, max_steps)
            if int(res) != 0:
                raise RuntimeError(f"gradient_flow: diffrax stopped at t ∈ [{t0}, {t_end}] "
                                   f"(max_steps={max_steps} reached or step size underflow)")
            stats["ref_accepted_steps" if ref else "accepted_steps"] += int(acc)
            if not ref:
                stats["rejected_steps"] += int(rej)
            return W
        k = max(1, math.ceil((t_end - t0) / dt - 1e-9))
        if ref:
            k *= 2
        else:
            stats["accepted_steps"] += k
        return _fixed_segment(W, a, X, y, eps, (t_end - t0) / k, k, solver)

    rows, saved, step_err = [], [], []
    W, Wr, t = W0, W0, 0.0
    for s in progress_bar(range(len(ts)), progress, f"gradient flow ({solver})"):
        W = advance(W, t, float(ts[s]), ref=False)
        if certify:
            Wr = advance(Wr, t, float(ts[s]), ref=True)
            step_err.append(float(jnp.linalg.norm(W - Wr)))
        t = float(ts[s])
        rows.append(record(W))
        if keep_W:
            saved.append(np.asarray(W))
    W = advance(W, t, t1, ref=False)  # save_at may end before t1
    if certify:
        Wr = advance(Wr, t, t1, ref=True)
        step_err.append(float(jnp.linalg.norm(W - Wr)))
    series = stack_rows(rows)
    if certify:
        series["step_error"] = np.array(step_err[: len(ts)])
    err = 2.0 * max(step_err) if certify else float("nan")
    disp = float(jnp.linalg.norm(W - W0))
    if certify and disp > 0 and err > 0.01 * disp:
        warnings.warn(f"gradient_flow: step-error estimate {err:.3g} exceeds 1% of the weight displacement "
                      f"{disp:.3g}; pass a smaller dt (now {dt:.3g}) or tighter rtol/atol", stacklevel=4)
    meta = {"kind": "gradient_flow", "solver": solver, "dt": dt, "rtol": rtol, "atol": atol, "eps": eps, "t1": t1,
            "m": int(W0.shape[0]), "n": int(X.shape[0]), "d": int(X.shape[1]), "lambda_max_h0": lam_max,
            "displacement": disp, "order": _ORDER[solver], **stats}
    return Trajectory(ts=np.asarray(ts, float), series=series, W=np.asarray(W), a=np.asarray(a), meta=meta,
                      error_estimate=err, W_saved=np.stack(saved) if keep_W else None)
