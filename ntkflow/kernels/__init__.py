"""Kernels: Gram matrices of margins with respect to the trainable params.

Layout: a package ``ntkflow.kernels`` next to the module ``ntkflow.kernel`` (H∞ / λ0) and
``ntkflow.gram`` (Eq. 6). A package, not a ``kernels.py`` module, because it is where the
design sketch (shared/DESIGN.md) puts all kernel code: the generic J·Jᵀ of any bound
method now (``margin_gram``), and later the Eq. 6 and H∞ code, moved in with
``ntkflow.kernel`` / ``ntkflow.gram`` left as re-exporting shims. Until then this package
re-exports their public names, and ``import ntkflow.kernel`` / ``ntkflow.gram`` work
unchanged (a package and a module of different names do not shadow each other).
"""

from ..gram import gram_matrix, gram_terms
from ..kernel import h_inf, h_inf_exact, lambda_0
from .margin import jacobian_gram, margin_gram

__all__ = ["margin_gram", "jacobian_gram", "gram_matrix", "gram_terms", "h_inf", "h_inf_exact", "lambda_0"]
