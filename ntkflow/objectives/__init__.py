"""Training methods as objectives (``init``/``step`` pairs), registered by name.

See ``ntkflow.objectives.base`` for the protocol.
"""

from .base import Context, Step, as_columns, margin_loss

__all__ = ["Context", "Step", "margin_loss", "as_columns"]
