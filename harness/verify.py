"""The public face of a verification: ``verify(target)`` and what goes with it.

The work is split by idea: :mod:`harness.targets` (the connector under test),
:mod:`harness.profiles` (how hard hypothesis searches), :mod:`harness.engine` (runs and
judgement) and :mod:`harness.excerpts` (what a report shows of a failure). This module
re-exports them so ``from harness.verify import verify`` keeps working.
"""

from __future__ import annotations

from harness.engine import Progress, not_implemented_routes, reproduce_command, verify
from harness.errors import ConnectorUnreachableError, VerifyUsageError
from harness.excerpts import (
    MAX_LEDGER_ENTRIES,
    MAX_TRACE_ENTRIES,
    feed_accounting,
    ledger_window,
    trace_excerpt,
)
from harness.profiles import DEFAULT_PROFILE, PROFILES, current_profile, hypothesis_settings
from harness.targets import Target, UrlTarget, make_target

__all__ = [
    "DEFAULT_PROFILE",
    "MAX_LEDGER_ENTRIES",
    "MAX_TRACE_ENTRIES",
    "PROFILES",
    "ConnectorUnreachableError",
    "Progress",
    "Target",
    "UrlTarget",
    "VerifyUsageError",
    "current_profile",
    "feed_accounting",
    "hypothesis_settings",
    "ledger_window",
    "make_target",
    "not_implemented_routes",
    "reproduce_command",
    "trace_excerpt",
    "verify",
]
