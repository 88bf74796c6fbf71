"""How long and how much a verification waits on a connector, shared by its drivers.

One ``Bounds`` per verification: the per-call timeout (``--call-timeout``), an overall
deadline (``--deadline``), how many calls in a row may go unanswered before a driver
gives up on the connector for the rest of its run, and how much of an answer is kept.
A driver that gives up says why in ``driver.stall``; the engine only reacts to it.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DEFAULT_DEADLINE",
    "Bounds",
    "Stall",
    "StallKind",
    "current_bounds",
    "use_bounds",
]

DEFAULT_DEADLINE = 600.0
"""Real seconds a whole verification may take (``--deadline``); a healthy connector over
loopback needs two to three minutes on a busy machine."""

StallKind = Literal["lost", "slow", "hanging", "deadline"]


@dataclass(frozen=True, slots=True)
class Stall:
    """Why a driver stopped calling the connector: it is ``lost`` (no answer at all, or
    its process exited), ``slow`` (answers, but later than the call timeout), ``hanging``
    (answers ``GET /v1/status`` in time but not the calls), or the ``deadline`` passed."""

    kind: StallKind
    reason: str
    """One line for messages, naming the calls and the times."""


@dataclass(slots=True)
class Bounds:
    """The limits of one verification (real seconds; the simulation itself never waits)."""

    call_timeout: float | None = None
    """Real seconds per call; ``None`` keeps each run's ``SimulatorSettings.call_timeout``."""
    deadline: float | None = None
    """Real seconds for the whole verification from ``started``; ``None``: no deadline."""
    max_silent_calls: int = 3
    """Calls in a row without an HTTP answer (timeouts, refused connections) after which
    the driver probes ``GET /v1/status`` once and then gives up for the rest of the run."""
    patience: float = 3.0
    """The probe waits this many call timeouts, so a slow answer still comes in."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Bytes of an answer kept; the rest is counted, not kept."""
    max_read_factor: int = 16
    """An answer is read (and counted) up to this many ``max_body_bytes``, then dropped."""
    started: float = field(default_factory=time.monotonic)
    silent_calls: int = 0
    """Calls in a row (across runs) that got no HTTP answer; any answer resets it."""

    def remaining(self) -> float | None:
        """Real seconds left before the deadline (``None``: no deadline)."""
        if self.deadline is None:
            return None
        return self.deadline - (time.monotonic() - self.started)

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        left = self.remaining()
        return left is not None and left <= 0

    def cap(self, seconds: float) -> float:
        """``seconds``, or less if the deadline comes first (never below zero)."""
        left = self.remaining()
        return seconds if left is None else max(0.0, min(seconds, left))

    def deadline_label(self) -> str:
        """How messages name the deadline."""
        return f"the --deadline of {self.deadline:g} s" if self.deadline is not None else ""


_BOUNDS: contextvars.ContextVar[Bounds | None] = contextvars.ContextVar(
    "feed_harness_bounds", default=None
)


def current_bounds() -> Bounds:
    """The bounds of the verification in progress (fresh defaults outside one)."""
    bounds = _BOUNDS.get()
    return bounds if bounds is not None else Bounds()


@contextlib.contextmanager
def use_bounds(bounds: Bounds) -> Iterator[Bounds]:
    """Make ``bounds`` the current ones inside the block (platforms built there share them)."""
    token = _BOUNDS.set(bounds)
    try:
        yield bounds
    finally:
        _BOUNDS.reset(token)
