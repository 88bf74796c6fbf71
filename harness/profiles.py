"""Verification profiles: how hard the hypothesis-based clauses search."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from harness.errors import VerifyUsageError

if TYPE_CHECKING:
    import hypothesis

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "check_profile",
    "current_profile",
    "hypothesis_settings",
    "use_profile",
]

PROFILES = ("fast", "ci", "thorough")
"""Verification profiles: how hard the hypothesis-based clauses search."""
DEFAULT_PROFILE = "fast"

_PROFILE: contextvars.ContextVar[str] = contextvars.ContextVar(
    "feed_harness_profile", default=DEFAULT_PROFILE
)


def current_profile() -> str:
    """The profile of the verification in progress (``fast`` outside one)."""
    return _PROFILE.get()


def hypothesis_settings(profile: str | None = None) -> hypothesis.settings:
    """Hypothesis settings of a profile: fast ~20 examples, ci 50 derandomized, thorough 500.

    ``None`` means :func:`current_profile`. Nothing depends on the wall clock, so a seed
    gives the same examples on any machine and under any load: deadlines are off (the
    virtual clock, not the wall clock, times the partner), and the search stops at the
    first failure instead of hunting for more bugs for up to ten real seconds
    (``report_multiple_bugs``), which made the evidence, and the counts in the messages,
    depend on how fast the machine was.
    """
    import hypothesis

    name = check_profile(profile if profile is not None else current_profile())
    common: dict[str, Any] = {
        "deadline": None,
        "database": None,
        "print_blob": False,
        "report_multiple_bugs": False,
        "suppress_health_check": list(hypothesis.HealthCheck),
    }
    if name == "ci":
        return hypothesis.settings(max_examples=50, derandomize=True, **common)
    if name == "thorough":
        return hypothesis.settings(max_examples=500, **common)
    return hypothesis.settings(max_examples=20, **common)


def check_profile(profile: str) -> str:
    """``profile`` if it names a profile; a usage error listing them otherwise."""
    if profile not in PROFILES:
        raise VerifyUsageError(
            f"--profile {profile!r} is not a profile: choose one of {', '.join(PROFILES)}"
        )
    return profile


@contextlib.contextmanager
def use_profile(profile: str) -> Iterator[None]:
    """Make ``profile`` the current one inside the block."""
    token = _PROFILE.set(profile)
    try:
        yield
    finally:
        _PROFILE.reset(token)
