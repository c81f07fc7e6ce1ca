"""wang2022's two-layer net in closed form: Eq. 1 and the IBP margin Eq. 3 (``model``), the robust
loss and its Sec. 3.4 gradient (``loss``), the Gram matrix of Eq. 6 (``gram``), H∞ and λ0 with
their intervals (``hinf``), Assumptions 1 and 2 (``assumptions``), the certified gradient flow
of Eq. 4 (``flow``) and the closed-form tracker (``tracker``). Imports nothing above ``_core``
(and ``data``): the engine's layers use these as fast paths."""

from .assumptions import check_assumption_1, check_assumption_2, normalize_to_box
from .flow import gradient_flow
from .gram import gram_matrix, gram_terms
from .hinf import h_inf, h_inf_exact, lambda_0
from .loss import robust_loss, robust_loss_grad
from .model import ibp_lower_margin, indicators, init_params, margin
from .tracker import Trajectory

__all__ = ["init_params", "margin", "ibp_lower_margin", "indicators", "robust_loss", "robust_loss_grad",
           "gram_matrix", "gram_terms", "h_inf", "h_inf_exact", "lambda_0", "check_assumption_1",
           "check_assumption_2", "normalize_to_box", "gradient_flow", "Trajectory"]
