"""When the trainer takes the paper's closed form, and the two epochs it chooses between.

``closed_form(net, obj, eps)`` is the one predicate: the paper's two-layer net (``nets.two_layer``)
trained on the plain IBP loss (Eq. 2: ``Certified("ibp")`` with no mix, clip, regularizer or loss
fusion), or on the clean loss at ε = 0. Then an epoch is ``paper.epoch.sgd_epoch``, the
Sec. 3.4 gradient in closed form, and everything else of the run — records, stop rule, metrics
— is the generic trainer's. ``path_for`` is the dispatch; ``fit`` and ``fit_group`` ask it
once per run. tests/test_objectives.py and tests/test_train_paths.py check the fast path equal
to the generic one it replaces (``fit(..., fast_path=False)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax

from ..objectives import Certified, Standard
from ..paper.epoch import sgd_epoch
from ..paper.loss import robust_loss
from .steps import epoch as generic_epoch, loop_epoch, prefers_host_loop

__all__ = ["closed_form", "closed_form_method", "path_for", "Generic", "ClosedForm"]


def closed_form(net, obj, eps: float) -> bool:
    """True when the Sec. 3.4 closed-form epoch trains ``obj`` on ``net`` at target ``eps``."""
    return getattr(net, "tag", None) == "two_layer" and closed_form_method(obj, eps)


def closed_form_method(obj, eps: float) -> bool:
    """The method half of ``closed_form`` (for callers that know the net is the paper's)."""
    if type(obj) is Certified:
        return (obj.bound == "ibp" and not obj.mix and obj.clip is None and not obj.regularize
                and not obj.loss_fusion)
    return type(obj) is Standard and eps == 0


@dataclass(frozen=True)
class Generic:
    """The engine's epoch: ``objective.step`` by autodiff of its loss; the carry holds params."""

    closed = False

    def state(self, params):
        return params

    def params(self, state):
        return state

    def epoch(self, net, carry, X, y, idx, sched, keys, scale, lr, budget, obj, opt):
        run = loop_epoch if prefers_host_loop(net) else generic_epoch
        return run(net, *carry, X, y, idx, sched, keys, scale, lr, budget, obj, opt)


@dataclass(frozen=True)
class ClosedForm:
    """The paper's epoch on W (the carry holds W, not the params tuple). ``clean``: standard
    training, ε = 0 at every step."""

    clean: bool = False
    closed = True

    def state(self, params):
        return params[0]["weight"]

    def params(self, W):
        return ({"weight": W}, {}, {})  # the layout of nets.two_layer

    def epoch(self, net, carry, X, y, idx, sched, keys, scale, lr, budget, obj, opt):
        """``sched``: the (steps,) ε of each step (``FitRun.epoch_inputs``: 0 when ``clean``)."""
        W, s, os, gp = carry
        W, s, g, total, l2, cos = _closed_epoch(W, s, gp, net.layers[2].fixed, X, y, idx, sched, scale, lr, opt)
        return W, s, os, g, total, {"grad_l2_change": l2, "grad_cos_distance": cos}

    def judged_eps(self, e: float) -> float:
        """The ε the method's loss is taken at when the record's ε is ``e``."""
        return 0.0 if self.clean else e

    def loss(self, W, a, X, y, e: float) -> float:
        """The method's loss on the whole set at the record's ε ``e`` (Eq. 2 in closed form)."""
        return robust_loss(W, a, X, y, self.judged_eps(e))


@partial(jax.jit, static_argnames=("opt",))
def _closed_epoch(W, s, gp, fixed, X, y, idx, eps_steps, scale, lr, opt):
    # one dispatch per epoch: the frozen output row (1, m) of nets.two_layer becomes the paper's a here
    return sgd_epoch(W, s, gp, fixed[0].astype(W.dtype), X, y, idx, eps_steps, scale, lr, opt)


def path_for(net, obj, eps: float, enabled: bool = True):
    """``ClosedForm`` where ``closed_form`` holds (and ``enabled``), else ``Generic``."""
    if enabled and closed_form(net, obj, eps):
        return ClosedForm(clean=type(obj) is Standard)
    return Generic()
