"""The name of every conformance run, defined once (runs, checks, reports and tests use
these); it imports nothing, so any module can.

A preset run is named ``preset:<preset>`` after the partner preset it plays.
"""

from __future__ import annotations

__all__ = [
    "AUTH",
    "CONNECTION_FAULTS",
    "CORE",
    "INVALID_CONFIG",
    "INVALID_GRANT",
    "LIFECYCLE",
    "NOT_READY",
    "OVERSIZED",
    "OVERSIZED_BYTES",
    "PARTIAL",
    "RATE_LIMITED",
    "SESSION",
    "STATEFUL",
    "TOKEN_EXPIRY",
    "TRANSIENT",
    "preset_run",
]


def preset_run(preset: str) -> str:
    """The run name of a preset: ``preset:<name>``."""
    return f"preset:{preset}"


LIFECYCLE = "lifecycle"
"""A feed's whole life against the default partner (the core runs)."""
INVALID_CONFIG = "invalid-config"
OVERSIZED = "oversized"
OVERSIZED_BYTES = "oversized-bytes"
AUTH = "auth"
CONNECTION_FAULTS = "connection-faults"
STATEFUL = "stateful"
TOKEN_EXPIRY = preset_run("token-expiry-mid-upload")
INVALID_GRANT = preset_run("invalid-grant")
NOT_READY = preset_run("not-ready-for-3-polls")
RATE_LIMITED = (preset_run("rate-limit-burst"), preset_run("rate-limit-no-retry-after"))
TRANSIENT = tuple(
    preset_run(name)
    for name in ("flaky-5xx", "ambiguous-503", "dropped-connection", "ambiguous-drop")
)
PARTIAL = preset_run("mixed-invalid-items")
CORE = (LIFECYCLE, INVALID_CONFIG)
"""The runs of a feed's life against the default partner, with valid and invalid settings."""
SESSION = (LIFECYCLE, TOKEN_EXPIRY, *RATE_LIMITED, *TRANSIENT, PARTIAL)
"""The runs that exercise the session-wide clauses by design (the lifecycle and every
partner preset with transient faults); the checks judge every run's sessions."""
