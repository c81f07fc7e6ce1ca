"""AdvIBP (fan2021 Alg. 1 and 2): joint adversarial + IBP training with moment-based weights.

After a warm-up of ``t_nat`` epochs of clean training and ``t_adv`` epochs of FGSM
training (Alg. 2, WARM-UP), every step computes g_adv = ∇L_adv (FGSM with random start)
and g_IBP = ∇L̄_IBP and descends along

    g_final = κ_adv g_adv + κ_IBP g_IBP + κ_reg ∇‖L̄_IBP‖²            (Alg. 2, line 11)

with (κ_adv, κ_IBP, κ_reg) from bias-corrected moving averages of PAST gradients (Alg. 1):
m₁, m₂ (first moments of g_adv, g_IBP, rate β1) and v₁, v₂ (moments of their norms, rate β2):

- ⟨m₁, m₂⟩ > 0 — "bisector": γ = ½⟨m₁+m₂, a⟩/‖a‖² with a = m₁/v₁ + m₂/v₂; κ = (γ/v₁, γ/v₂, 0).
- otherwise, FOSC c(x_adv) ≤ c_t — "project IBP out": κ = (1, −⟨m₁,m₂⟩/v₂², 0).
- otherwise — "project adv out": κ = (−⟨m₁,m₂⟩/v₁², 1, ½).

c(x_adv) = max_{x' ∈ box} ⟨x' − x_adv, ∇ₓL(x_adv)⟩ (fan2021 Eq. 6, Wang et al. 2019), the
batch mean; c_t = clip(c_max − (t − R)·c_max/T′, 0, c_max) with t the epochs since warm-up.

Departures from the print, each deliberate:
- Alg. 1 divides by 1 − β^t at t = 0, where there is no past gradient. Moments start at t = 1:
  the first joint step uses the fixed weights κ = (1, 1, 0) (case "init") and only feeds
  the moments.
- The projection uses moment estimates, not the step's gradients, so g_final is only
  approximately orthogonal to the deprioritized gradient: the step records
  ⟨g_final, g_IBP⟩ (``aux["dot_final_ibp"]``; the step −lr·g_final increases L̄_IBP to
  first order iff it is negative; ``aux["ibp_increase"]`` flags it) and cos(g_adv, g_IBP).
- Losses are sums over the batch (ntkflow's convention, Eq. 2); the regularizer is on the
  batch-mean IBP loss L̄_mean as in fan2021, put on the sum scale: B·L̄_mean², whose
  gradient is 2·L̄_mean·g_IBP. The κ are invariant to this scaling.

- The step's loss (summed by the trainer into the epoch loss its stop rule watches) is
  L_adv + L̄_IBP, not the κ-weighted sum: AdvIBP's κ scale like 1/‖g‖ (bisector:
  κ_adv = γ/v₁), so the weighted sum stays flat as the gradients shrink and a plateau of it
  is not a plateau of training; and a stop rule that reads one quantity for AdvIBP and its
  baseline compares them like for like. The descent direction is g_final, unchanged.

``fixed=True`` is fan2021's baseline (Eq. 5, "weighted sum"): the same warm-up, then
κ = (``kappa_adv``, ``kappa_ibp``, 0) at every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..nets import inputs as NI
from .. import _validate as V
from .._core.errors import NtkflowError
from .base import Step
from .methods import attack_points, bound_loss, clean_loss
from .registry import mean_summary

__all__ = ["AdvIBP", "AdvIBPState", "CASES", "fosc"]

#: ``aux["case"]`` codes: 0 init (no moments yet), 1 bisector, 2 adversarial prioritized
#: (IBP projected out), 3 IBP prioritized (adversarial projected out), 4 fixed weights,
#: 5 warm-up (clean), 6 warm-up (FGSM).
CASES = ("init", "bisector", "adv_priority", "ibp_priority", "fixed", "warmup_nat", "warmup_adv")


class AdvIBPState(NamedTuple):
    m1: object  # β1-average of g_adv (pytree like params), not bias-corrected
    m2: object
    v1: jax.Array  # β2-average of ‖g_adv‖₂
    v2: jax.Array
    t: jax.Array  # joint steps fed into the moments


def _vdot(a, b):
    # elementwise products: a dot could run as TF32 on NVIDIA GPUs
    return sum(jnp.sum(x * y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def _axpy(*terms):
    """Σ_k c_k · tree_k over pytrees."""
    return jax.tree_util.tree_map(lambda *xs: sum(c * x for c, x in zip([c for c, _ in terms], xs)),
                                  *[t for _, t in terms])


def fosc(net, params, X_adv, y, lo, hi):
    """Batch-mean FOSC c(x_adv) = max_{x' ∈ [lo, hi]} ⟨x' − x_adv, ∇ₓ l(x_adv)⟩ ≥ 0 (fan2021 Eq. 6).
    0 iff x_adv is a first-order stationary point of the loss in the box."""
    g = jax.grad(lambda x: clean_loss(net, params, x, y))(X_adv)
    per = jnp.maximum((hi - X_adv) * g, (lo - X_adv) * g)
    return jnp.mean(jnp.sum(per.reshape(per.shape[0], -1), axis=1))


@dataclass(frozen=True)
class AdvIBP:
    """fan2021's AdvIBP (``fixed=False``) or its fixed-κ baseline (``fixed=True``).

    Epochs are counted by the trainer (``ctx.epoch``): [0, t_nat) clean, [t_nat, t_nat + t_adv)
    FGSM, then joint. ``ramp`` (R) and ``decay`` (T′) are in epochs after the warm-up; set the
    trainer's ε schedule to match (ε = 0 during warm-up, ramp over R).
    """

    t_nat: float = 0.0
    t_adv: float = 0.0
    ramp: float = 0.0
    decay: float = 1.0
    c_max: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.99
    alpha: float = 1.25
    fixed: bool = False
    kappa_adv: float = 1.0
    kappa_ibp: float = 1.0
    clip: tuple | None = None
    aux_keys: tuple = ("case", "cos_adv_ibp", "dot_final_ibp", "ibp_increase", "fosc", "c_t", "kappa_adv",
                       "kappa_ibp")
    #: its phases (clean, FGSM, joint) switch by epoch: a sweep gives it fan2021's warm-up schedule
    phases_by_epoch = True

    def __post_init__(self):
        for f in ("t_nat", "t_adv", "ramp", "c_max"):
            V.positive_float(f"advibp.{f}", getattr(self, f), allow_zero=True)
        V.positive_float("advibp.decay", self.decay)
        for f in ("beta1", "beta2"):
            if not 0 <= float(getattr(self, f)) < 1:
                raise NtkflowError(f"advibp.{f}: must be in [0, 1), got {getattr(self, f)}")

    @property
    def name(self) -> str:
        return "advibp_fixed" if self.fixed else "advibp"

    def judged_loss(self, net, params, X, y, ctx):
        """Its IBP loss: AdvIBP certifies with IBP."""
        return bound_loss(net, params, X, y, ctx.eps, "ibp", clip=self.clip)

    def summarize(self, aux: dict) -> dict:
        """Epoch means, with the Alg. 1 case as one fraction per case (``case_<name>``)."""
        out = mean_summary({k: v for k, v in aux.items() if k != "case"})
        case = np.asarray(aux["case"], float)
        out.update({f"case_{name}": float(np.mean(case == i)) for i, name in enumerate(CASES)})
        return out

    def init(self, params) -> AdvIBPState:
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        z = jnp.zeros((), jax.tree_util.tree_leaves(params)[0].dtype)
        return AdvIBPState(zeros, zeros, z, z, jnp.zeros((), jnp.int32))

    # ---------------------------------------------------------------- pieces
    def _adv(self, net, params, X, y, ctx):
        X_adv = attack_points(net, params, X, y, ctx.eps, ctx.key, attack="fgsm", steps=1, step_size=None,
                              restarts=1, alpha=self.alpha, clip=self.clip)
        return X_adv, jax.value_and_grad(clean_loss, argnums=1)(net, params, X_adv, y)

    def _ibp(self, net, params, X, y, ctx):
        return jax.value_and_grad(lambda p: bound_loss(net, p, X, y, ctx.eps, "ibp", clip=self.clip))(params)

    def c_t(self, epoch):
        t = epoch - (self.t_nat + self.t_adv)
        return jnp.clip(self.c_max - (t - self.ramp) * self.c_max / self.decay, 0.0, self.c_max)

    def weights(self, state: AdvIBPState, fosc_value, c_t):
        """(κ_adv, κ_IBP, κ_reg, case) of Alg. 1 from the moments in ``state``."""
        t = jnp.maximum(state.t, 1).astype(state.v1.dtype)
        b1, b2 = 1 - self.beta1 ** t, 1 - self.beta2 ** t
        m1 = jax.tree_util.tree_map(lambda v: v / b1, state.m1)
        m2 = jax.tree_util.tree_map(lambda v: v / b1, state.m2)
        v1, v2 = state.v1 / b2, state.v2 / b2
        tiny = jnp.finfo(v1.dtype).tiny
        v1s, v2s = jnp.maximum(v1, tiny), jnp.maximum(v2, tiny)
        dot = _vdot(m1, m2)
        a = _axpy((1 / v1s, m1), (1 / v2s, m2))
        gamma = 0.5 * _vdot(_axpy((1.0, m1), (1.0, m2)), a) / jnp.maximum(_vdot(a, a), tiny)
        one = jnp.ones_like(v1)
        bis = (gamma / v1s, gamma / v2s, 0 * one, 1)
        adv = (one, -dot / v2s ** 2, 0 * one, 2)
        ibp = (-dot / v1s ** 2, one, 0.5 * one, 3)
        pick = lambda i: jnp.where(dot > 0, bis[i], jnp.where(fosc_value <= c_t, adv[i], ibp[i]))  # noqa: E731
        k = tuple(pick(i) for i in range(4))
        init = state.t == 0
        return (jnp.where(init, 1.0, k[0]), jnp.where(init, 1.0, k[1]), jnp.where(init, 0.0, k[2]),
                jnp.where(init, 0, k[3]))

    # ---------------------------------------------------------------- the step
    def _joint(self, net, params, state, X, y, ctx):
        X_adv, (l_adv, g_adv) = self._adv(net, params, X, y, ctx)
        l_ibp, g_ibp = self._ibp(net, params, X, y, ctx)
        B = X.shape[0]
        c_t = self.c_t(ctx.epoch)
        lo, hi = NI.input_box(X, ctx.eps, self.clip)
        fv = fosc(net, jax.lax.stop_gradient(params), X_adv, y, lo, hi)
        if self.fixed:
            ka, ki, kr, case = self.kappa_adv, self.kappa_ibp, 0.0, 4
        else:
            ka, ki, kr, case = self.weights(state, fv, c_t)
        mean = l_ibp / B
        g = _axpy((ka, g_adv), (ki + kr * 2 * mean, g_ibp))
        loss = l_adv + l_ibp  # what the stop rule watches: the same quantity for both methods (see module doc)
        n_adv, n_ibp = jnp.sqrt(_vdot(g_adv, g_adv)), jnp.sqrt(_vdot(g_ibp, g_ibp))
        new = AdvIBPState(_axpy((self.beta1, state.m1), (1 - self.beta1, g_adv)),
                          _axpy((self.beta1, state.m2), (1 - self.beta1, g_ibp)),
                          self.beta2 * state.v1 + (1 - self.beta2) * n_adv,
                          self.beta2 * state.v2 + (1 - self.beta2) * n_ibp, state.t + 1)
        cos = _vdot(g_adv, g_ibp) / jnp.maximum(n_adv * n_ibp, jnp.finfo(n_adv.dtype).tiny)
        dot_final = _vdot(g, g_ibp)
        aux = {"case": jnp.asarray(case, jnp.float32), "cos_adv_ibp": cos, "dot_final_ibp": dot_final,
               "ibp_increase": (dot_final < 0).astype(n_adv.dtype),
               "fosc": fv, "c_t": c_t, "kappa_adv": jnp.asarray(ka, n_adv.dtype),
               "kappa_ibp": jnp.asarray(ki, n_adv.dtype)}
        return Step(loss, g, new, aux)

    def _warmup(self, net, params, state, X, y, ctx, adversarial: bool):
        if adversarial:
            _, (loss, g) = self._adv(net, params, X, y, ctx)
        else:
            loss, g = jax.value_and_grad(clean_loss, argnums=1)(net, params, X, y)
        nan = jnp.full((), jnp.nan, loss.dtype)
        aux = {k: nan for k in self.aux_keys}
        aux["case"] = jnp.asarray(6 if adversarial else 5, jnp.float32)
        return Step(loss, g, state, aux)

    def step(self, net, params, state, X, y, ctx) -> Step:
        phase = (ctx.epoch >= self.t_nat).astype(jnp.int32) + (ctx.epoch >= self.t_nat + self.t_adv).astype(jnp.int32)
        def f32(out):  # lax.switch needs equal output types; aux is recorded as float32
            return Step(out.loss, out.grads, out.state, {k: out.aux[k].astype(jnp.float32) for k in self.aux_keys})

        branches = [lambda: f32(self._warmup(net, params, state, X, y, ctx, False)),
                    lambda: f32(self._warmup(net, params, state, X, y, ctx, True)),
                    lambda: f32(self._joint(net, params, state, X, y, ctx))]
        return jax.lax.switch(phase, branches)
