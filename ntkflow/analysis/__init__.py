"""Analyses of nets built on the bounds and the objectives: the thesis's IBP difference gain at
initialization (``gain``), fan2021's sandwich and lee2021's smoothness measures (``landscape``).
Above ``objectives`` (the landscape's per-sample loss is theirs), below ``metrics``."""

from .gain import TABLE_3_1, difference_gain, difference_gain_closed_form, expected_difference_gain, mean_abs_weight

__all__ = ["difference_gain", "difference_gain_closed_form", "expected_difference_gain", "mean_abs_weight",
           "TABLE_3_1"]
