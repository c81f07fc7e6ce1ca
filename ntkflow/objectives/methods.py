"""The training methods that minimize one loss: clean, certified (any bound), adversarial.

- ``Standard``: the clean loss Σ_i l(m(x_i)).
- ``Certified(bound)``: the loss on the certified lower margins of ``bound`` (a key of
  ``ntkflow.bounds.METHODS``): ``ibp`` (the paper's Eq. 2 on the two-layer net),
  ``crown_ibp`` with CROWN-IBP's mix (1 − β)·IBP + β·CROWN-IBP (lee2021 Eq. 3; β runs from 1
  to 0 along the ε ramp, ``schedules``), ``crown``, and lee2021's variants. Optional: the
  thesis's warm-up regularizers (Sec. 3.2.3), weighted by ``ctx.lam``.
- ``Adversarial(attack)``: Madry-style training on attack points found inside the step
  (``pgd``: projected sign-gradient steps from a random start; ``fgsm``: one step of α·ε
  from a uniform random start, fan2021 Alg. 2 / Wong et al. 2020). The attack point is a
  constant of the step (no gradient through the attack: Danskin's theorem).

BatchNorm: ``Standard.step`` and ``Certified.step`` train a net with BN layers in PyTorch's train
mode — each BN normalizes by the clean minibatch's statistics (``train_mode``), the bound
passing through the affine map they define (auto_LiRPA, Shi et al. 2021); the gradient flows
through the statistics. Everything else (``judged_loss``, metrics, certification) sees the
params as they are: eval mode, the running statistics, which the trainer updates after each
step (``nets.update_running_stats``). ``Adversarial`` keeps eval mode (which batch's statistics
an attack should see is a choice this code does not make). A net without BN is unchanged.

Attack step sizes are relative to ε, so they follow an ε schedule: PGD's step is
``step_size``·ε (default 2.5/steps, Madry et al.), FGSM's ``alpha``·ε (default 1.25).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ..nets import inputs as NI
from .. import _validate as V
from .._core.errors import NtkflowError
from ..attacks import fgsm_box, pgd_box
from ..bounds import METHODS as BOUNDS
from ..bounds import clean_margins, exp_sum_upper, margin_bounds
from ..nets import has_batchnorm, with_batch_stats
from .base import Step, log1p_scaled, margin_loss

__all__ = ["Standard", "Certified", "Adversarial", "loss_step", "attack_points", "clean_loss", "bound_loss",
           "train_mode"]


def clean_loss(net, params, X, y):
    """Σ_i l(m(x_i)) on the clean margins (the standard loss; at attack points, the adversarial one)."""
    return jnp.sum(margin_loss(clean_margins(net, params, X, y)))


def bound_loss(net, params, X, y, eps, bound: str, *, clip=None, beta=None):
    """Σ_i l(m̲_i) on the certified lower margins of ``bound`` (the certified loss, Eq. 2 for IBP)."""
    return jnp.sum(margin_loss(margin_bounds(net, params, X, y, eps, bound, clip=clip, beta=beta)))


def train_mode(net, params, X):
    """params in which every BatchNorm layer normalizes by the clean batch X's statistics
    (``nets.with_batch_stats``, differentiable); ``params`` itself for a net without BN."""
    return with_batch_stats(net, params, X) if has_batchnorm(net) else params


def loss_step(loss_fn, params, state):
    """``Step`` of an objective that minimizes one scalar ``loss_fn(params)`` (no aux)."""
    loss, grads = jax.value_and_grad(loss_fn)(params)
    return Step(loss, grads, state, {})


@dataclass(frozen=True)
class Standard:
    """Clean training: Σ_i l(f_y(x_i) − f_j(x_i)) (logistic loss for a single output)."""

    name: str = "standard"
    aux_keys: tuple = ()
    judged_errors = ("train_error",)  # clean training aims at the clean error

    def init(self, params):
        return ()

    def judged_loss(self, net, params, X, y, ctx):
        return clean_loss(net, params, X, y)

    def loss(self, net, params, X, y, ctx):
        return clean_loss(net, params, X, y)

    def step(self, net, params, state, X, y, ctx) -> Step:
        return loss_step(lambda p: self.loss(net, train_mode(net, p, X), X, y, ctx), params, state)


@dataclass(frozen=True)
class Certified:
    """The loss on certified lower margins: Σ_i l(m̲_i) with m̲ from ``bound``.

    ``mix``: use (1 − β)·IBP + β·bound with β = ``ctx.beta`` (CROWN-IBP). ``loss_fusion``:
    train on the fused bound log(1 + Σ̄) of ``bounds.exp_sum_upper`` (one backward row instead of
    K − 1; the mix then mixes the two bounds of the sum); the certified margins, the error and
    the Gram still use the K − 1 rows. ``regularize``:
    add λ·(L_tightness + L_relu) of the thesis (Eq. 3.8) with λ = ``ctx.lam`` and tolerance
    ``tau``; the regularizers are computed from IBP as in the thesis.
    """

    bound: str = "ibp"
    mix: bool = False
    clip: tuple | None = None
    regularize: bool = False
    tau: float = 0.5
    loss_fusion: bool = False
    aux_keys: tuple = ()

    def __post_init__(self):
        if self.bound not in BOUNDS:
            raise NtkflowError(f"bound: unknown {self.bound!r}; choose one of {', '.join(BOUNDS)}")
        if not isinstance(self.loss_fusion, bool):
            raise NtkflowError(f"loss_fusion: must be true or false, got {self.loss_fusion!r}")
        if self.loss_fusion and BOUNDS[self.bound].slope is None:
            raise NtkflowError(f"loss_fusion: needs a bound with a backward pass; {self.bound!r} has none "
                             "(IBP's loss is already one interval pass)")
        if not 0 < float(self.tau) <= 1:
            raise NtkflowError(f"tau: must be in (0, 1], got {self.tau}")

    @property
    def name(self) -> str:
        return self.bound

    @property
    def own_bound(self) -> str:
        return self.bound

    def init(self, params):
        return ()

    def judged_loss(self, net, params, X, y, ctx):
        """Σ_i l(m̲_i) on its (mixed) certified margins (fused: the fused bound), without the regularizers."""
        if self.loss_fusion:
            M, s = exp_sum_upper(net, params, X, y, ctx.eps, self.bound, clip=self.clip,
                                 beta=ctx.beta if self.mix else None, beta_branch=ctx.beta_branch)
            return jnp.sum(log1p_scaled(M, s))
        return jnp.sum(margin_loss(self.margins(net, params, X, y, ctx)))

    def margins(self, net, params, X, y, ctx):
        return margin_bounds(net, params, X, y, ctx.eps, self.bound, clip=self.clip,
                             beta=ctx.beta if self.mix else None, beta_branch=ctx.beta_branch)

    def loss(self, net, params, X, y, ctx):
        total = self.judged_loss(net, params, X, y, ctx)
        if self.regularize:
            from .regularizers import relu_balance, tightness

            lo, hi = NI.input_box(X, ctx.eps, self.clip)
            total = total + ctx.lam * (tightness(net, params, lo, hi, self.tau)
                                       + relu_balance(net, params, lo, hi, self.tau))
        return total

    def step(self, net, params, state, X, y, ctx) -> Step:
        return loss_step(lambda p: self.loss(net, train_mode(net, p, X), X, y, ctx), params, state)


def attack_points(net, params, X, y, eps, key, *, attack: str, steps: int, step_size, restarts: int, alpha: float,
                  clip=None):
    """Attack points (n, *input_shape) in the ε-ball (∩ clip), as constants of the step."""
    pb = NI.problem(net, params, X, y, eps, clip)
    params = jax.lax.stop_gradient(params)
    if attack == "pgd":
        step = (2.5 / steps if step_size is None else step_size) * pb.eps
        X_adv, _ = pgd_box(net, params, pb.C, pb.X, pb.lo, pb.hi, key, step, steps, restarts)
    else:
        X_adv = fgsm_box(net, params, pb.C, pb.lo, pb.hi, pb.lo, pb.hi, key, alpha * pb.eps)
    return jax.lax.stop_gradient(X_adv)


@dataclass(frozen=True)
class Adversarial:
    """Adversarial training: Σ_i l(m(x_adv,i)) at attack points found in the step.

    ``attack``: "pgd" (``steps``, ``step_size`` relative to ε, ``restarts``) or "fgsm"
    (``alpha``·ε from a uniform random start).
    """

    attack: str = "pgd"
    steps: int = 10
    step_size: float | None = None
    restarts: int = 1
    alpha: float = 1.25
    clip: tuple | None = None
    aux_keys: tuple = ()
    judged_errors = ("pgd_error", "certified_error")  # the PGD error where recorded

    def __post_init__(self):
        if self.attack not in ("pgd", "fgsm"):
            raise NtkflowError(f"attack: must be 'pgd' or 'fgsm', got {self.attack!r}")
        V.positive_int("attack.steps", self.steps)
        V.positive_int("attack.restarts", self.restarts)
        V.positive_float("attack.alpha", self.alpha)
        if self.step_size is not None:
            V.positive_float("attack.step_size", self.step_size)

    @property
    def name(self) -> str:
        return self.attack

    def init(self, params):
        return ()

    def points(self, net, params, X, y, ctx):
        return attack_points(net, params, X, y, ctx.eps, ctx.key, attack=self.attack, steps=self.steps,
                             step_size=self.step_size, restarts=self.restarts, alpha=self.alpha, clip=self.clip)

    def attack_points(self, net, params, X, y, ctx):
        """The points its Gram is taken at: its own training attack (drawn with ``ctx.key``)."""
        return self.points(net, params, X, y, ctx)

    def loss_at(self, net, params, X_adv, y):
        return clean_loss(net, params, X_adv, y)

    def judged_loss(self, net, params, X, y, ctx):
        return self.loss_at(net, params, self.points(net, params, X, y, ctx), y)

    def step(self, net, params, state, X, y, ctx) -> Step:
        X_adv = self.points(net, params, X, y, ctx)
        return loss_step(lambda p: self.loss_at(net, p, X_adv, y), params, state)
