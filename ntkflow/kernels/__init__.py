"""Kernels: Gram matrices of margins with respect to the trainable params.

Layout: a package ``ntkflow.kernels`` next to the module ``ntkflow.paper.hinf`` (H∞ / λ0) and
``ntkflow.paper.gram`` (Eq. 6). A package, not a ``kernels.py`` module, because it is where the
design sketch (shared/DESIGN.md) puts all kernel code: the generic J·Jᵀ of any bound
method now (``margin_gram``), and later the Eq. 6 and H∞ code, moved in with
``ntkflow.paper.hinf`` / ``ntkflow.paper.gram`` left as re-exporting shims. Until then this package
re-exports their public names, and ``import ntkflow.paper.hinf`` / ``ntkflow.paper.gram`` work
unchanged (a package and a module of different names do not shadow each other).
"""

from ..paper.gram import gram_matrix, gram_terms
from ..paper.hinf import h_inf, h_inf_exact, lambda_0
from .margin import jacobian_gram, margin_gram

__all__ = ["margin_gram", "jacobian_gram", "gram_matrix", "gram_terms", "h_inf", "h_inf_exact", "lambda_0"]
