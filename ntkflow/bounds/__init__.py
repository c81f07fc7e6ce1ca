"""Bounds as an extension point: certified lower bounds of the margins f_y − f_j over the ℓ∞ ball.

``margin_bounds(net, params, X, y, eps, method)`` for the methods in ``METHODS`` (IBP,
CROWN-IBP, CROWN, CAP, zero-slope, and lee2021's IBP-intermediate variants, with the β mix);
``exp_sum_upper`` bounds the cross-entropy's sum Σ_j exp(f_j − f_y) with one backward row
(loss fusion, for training); ``exact_margin`` solves the exact robust margin of a small net as a MILP. A new method is one
``register(name, Method(slope, intermediate))`` (with its slope rule: ``register_slope``).
"""

from .engine import BETA_BRANCHES, METHODS, Method, clean_margins, margin_bounds, register
from .exact import ExactMargin, exact_margin
from .fusion import exp_sum_upper
from .linear import SLOPES, preactivation_bounds, register_slope, relu_relaxation

__all__ = ["margin_bounds", "BETA_BRANCHES", "clean_margins", "exact_margin", "ExactMargin", "exp_sum_upper", "METHODS", "Method",
           "preactivation_bounds", "relu_relaxation", "register", "register_slope", "SLOPES"]
