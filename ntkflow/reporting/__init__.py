"""What is published from stored results, never retraining: FINDINGS.md's sections
(``findings``: Figure 1's claims under the protocols, the methods, AdvIBP, the theorem's
structure — ``advibp``, ``phase``, ``structure``) and the figures of a results directory
(``plots.figures``)."""

from .findings import findings
from .plots import figures

__all__ = ["findings", "figures"]
