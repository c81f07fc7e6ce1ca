"""The error ntkflow raises for its users' mistakes.

``NtkflowError`` is a ``ValueError`` (so ``except ValueError`` and ``pytest.raises(ValueError)``
keep working) whose message is one line naming the argument, the config key or the file. The CLI
prints it as one line and exits 2; any other exception is a bug in ntkflow or a library and keeps
its traceback, so a user error is never confused with one, nor one hidden behind the other.
"""

from __future__ import annotations

__all__ = ["NtkflowError"]


class NtkflowError(ValueError):
    """Bad input from a user: a one-line message naming what to change."""
