"""Analyses of nets built on the bounds: the thesis's IBP difference gain at initialization
(``gain``). Above ``bounds``, below ``objectives``."""

from .gain import TABLE_3_1, difference_gain, difference_gain_closed_form, expected_difference_gain, mean_abs_weight

__all__ = ["difference_gain", "difference_gain_closed_form", "expected_difference_gain", "mean_abs_weight",
           "TABLE_3_1"]
