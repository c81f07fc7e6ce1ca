"""``train``: the paper's front door — the two-layer net of Eq. 1 from (W0, a), trained by ``fit``.

The first layer W is trained on L̄ (Eq. 2) with any optax optimizer and ε schedule; ``fit``
takes the closed-form Sec. 3.4 epoch for IBP (and the clean loss at ε = 0) and the engine's
step for every other method, and records every registered metric on both.
"""

from __future__ import annotations

from .. import _validate as V
from .._jax import x64
from ..nets import two_layer
from ..paper.tracker import Trajectory
from .fit import fit
from .settings import FitSettings, fit_settings

__all__ = ["train", "train_with"]


def train(W0, a, X, y, eps, *, optimizer: str = "sgd", lr: float, epochs: int, batch_size: int | None = None,
          eps_schedule=None, seed: int = 0, momentum: float | None = None, stop=None, tie: str = "wrong",
          track_gram: bool = False, keep_W: bool = False, record_every: int = 1, dtype: str = "float64",
          progress: bool = False, objective="ibp", options: dict | None = None,
          fit_options: dict | None = None) -> Trajectory:
    """Train the first layer with ``optimizer`` on the method's loss; return a ``Trajectory`` recorded per epoch.

    Args:
      W0, a, X, y, eps: the problem, shapes (m, d), (m,), (n, d), (n,); ``eps`` is the target radius.
      optimizer: sgd (``batch_size`` < n) / gd (full batch) / momentum / adam (optax).
      lr: the learning rate, a time step of the gradient flow of the summed loss L̄.
      epochs: the epoch budget.
      eps_schedule: ``EpsSchedule``, dict or callable epoch → ε (default: ε fixed).
      stop: a ``StopRule`` (or its dict) that ends training on a loss plateau or below κ; None
        runs the whole budget. ``meta["converged"]`` says whether the rule fired.
      tie: how the recorded errors count a tie f(x) = 0 (``tracker.TIE_RULES``).
      track_gram: add λmin(H) and ‖H − H(0)‖₂ (O(n²m) per record).
      keep_W: keep W at every record (``W_saved``).
      record_every: record every k-th epoch (and always the last).
      dtype: "float32" trains in float32 (full-precision products, no TF32) for speed; what is
        recorded — loss, errors, certified error — is always recomputed in float64 from W.
      objective, options: the training method (``ntkflow.objectives``) and its options;
        ``fit_options``: the rest of ``fit``'s settings (``beta_schedule``, ``reg_weight``,
        ``attack``, ``attack_every``, ``metrics``, ``fast_path``), flat as ``fit`` takes them.

    Returns:
      A ``Trajectory`` over epochs (``ts`` 0 = initialization) with ``W``, ``a`` and every
      registered metric. Standard training is ``eps=0``. A run whose weights or loss become
      non-finite stops there with ``meta["diverged"]`` and NaN errors. The same inputs and
      seed give identical trajectories on CPU.
    """
    W0, a, X, y, eps = V.problem(W0, a, X, y, eps)
    run = fit_settings(optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size, eps_schedule=eps_schedule,
                       seed=seed, momentum=momentum, stop=stop, tie=tie, track_gram=track_gram, keep_W=keep_W,
                       record_every=record_every, dtype=dtype, progress=progress, **(fit_options or {}))
    return _train(W0, a, X, y, eps, run, objective, options)


def train_with(W0, a, X, y, eps, run: FitSettings, *, objective="ibp", options: dict | None = None) -> Trajectory:
    """``train`` with its settings as one ``FitSettings`` (``training.settings``), for callers
    that hold the objects (the sweep).

    Returns:
      The ``Trajectory`` of ``train``.
    """
    W0, a, X, y, eps = V.problem(W0, a, X, y, eps)
    return _train(W0, a, X, y, eps, run, objective, options)


@x64
def _train(W0, a, X, y, eps, run: FitSettings, objective, options) -> Trajectory:
    """``fit`` on ``nets.two_layer(W0, a)`` (built inside x64, so W stays float64)."""
    net, p0 = two_layer(W0, a)
    tr = fit(net, p0, X, y, eps, objective=objective, options=options, **run.parts())
    m, d = W0.shape
    tr.meta.update(kind="train", m=int(m), d=int(d))
    tr.params = None  # W and a are the paper's params
    return tr
