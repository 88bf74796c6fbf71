"""The errors a verification raises for a bad request or an unreachable connector."""

from __future__ import annotations

__all__ = ["ConnectorUnreachableError", "VerifyUsageError"]


class VerifyUsageError(ValueError):
    """A verification was asked for something impossible; the message names the option and fix."""


class ConnectorUnreachableError(RuntimeError):
    """The connector started but never gave a single HTTP answer."""
