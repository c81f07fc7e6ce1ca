"""ntkflow: measure the convergence theory of IBP certified training (Wang et al. 2022)."""

from . import data, theory
from .paper.assumptions import check_assumption_1, check_assumption_2, normalize_to_box
from .paper.gram import gram_matrix, gram_terms
from .paper.flow import gradient_flow
from .paper.hinf import h_inf, h_inf_exact, lambda_0
from .paper.loss import robust_loss, robust_loss_grad
from .theory.checker import Report, check
from .paper.model import ibp_lower_margin, indicators, init_params, margin
from .paper.tracker import Trajectory
from .training.settings import EpsSchedule
from .training.two_layer import train

__version__ = "0.1.0"

__all__ = [
    "init_params", "margin", "ibp_lower_margin", "indicators",
    "robust_loss", "robust_loss_grad",
    "gram_matrix", "gram_terms",
    "h_inf", "h_inf_exact", "lambda_0",
    "check_assumption_1", "check_assumption_2", "normalize_to_box",
    "gradient_flow", "train", "EpsSchedule", "Trajectory", "check", "Report", "theory", "data",
]

# The engine, beside the paper's functions: nets, their bounds, training objectives, the metric
# registry, the trainer (``ntkflow.training``: ``training.fit.fit`` trains any net, ``train`` above is
# its front door for the paper's net), the sweep. Bad input raises ``NtkflowError``.
# (``ntkflow.reporting`` is imported on its own: its figures select matplotlib's Agg backend.)
from . import attacks, bounds, kernels, metrics, nets, objectives, sweep, training  # noqa: E402
from ._core.errors import NtkflowError  # noqa: E402
from .training.fit import fit  # noqa: E402

__all__ += ["nets", "bounds", "objectives", "metrics", "fit", "training", "sweep", "attacks", "kernels", "NtkflowError"]
