"""The partner's virtual clock: all time in the simulation comes from here, nothing sleeps."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime

from fake_partner.errors import ClockError

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
"""2026-01-01T00:00:00Z, the default start of every virtual clock (epoch seconds)."""
MAX_EPOCH = datetime(9000, 1, 1, tzinfo=UTC).timestamp()
"""The clock never goes past 9000-01-01: every time it shows, plus any bounded scenario
lifetime, stays within what ISO-8601 and ``datetime`` can write."""


def isoformat(epoch_seconds: float) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z`` (``2026-01-01T00:00:00.000Z``), as on the wire."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_isoformat(text: str) -> float:
    """Epoch seconds of an ISO-8601 time; a time without offset is taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class VirtualClock:
    """A thread-safe clock that only moves when told to; shared by the partner and the harness."""

    def __init__(self, start: float = DEFAULT_START) -> None:
        if not math.isfinite(start) or not 0 <= start <= MAX_EPOCH:
            raise ClockError(f"VirtualClock start={start!r} is not epoch seconds from 1970 to 9000")
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        """Current virtual time, epoch seconds."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (>= 0) and return the new time."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ClockError(
                f"advance(seconds={seconds!r}): seconds must be a finite number >= 0; "
                "the virtual clock never goes back"
            )
        with self._lock:
            if self._now + seconds > MAX_EPOCH:
                raise ClockError(
                    f"advance(seconds={seconds!r}) would move the clock past 9000-01-01 "
                    f"(at most {MAX_EPOCH - self._now:.0f} s more): advance by less"
                )
            self._now += seconds
            return self._now

    def advance_to(self, epoch_seconds: float) -> float:
        """Move the clock forward to ``epoch_seconds`` (no-op if already past it)."""
        if not math.isfinite(epoch_seconds) or epoch_seconds > MAX_EPOCH:
            raise ClockError(
                f"advance_to(epoch_seconds={epoch_seconds!r}): must be finite and at most "
                f"{MAX_EPOCH:.0f} (9000-01-01)"
            )
        with self._lock:
            self._now = max(self._now, epoch_seconds)
            return self._now

    def isoformat(self) -> str:
        """Current virtual time as the wire shows it."""
        return isoformat(self.now())

    def __repr__(self) -> str:
        return f"VirtualClock({self.isoformat()})"
