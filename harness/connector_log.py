"""What a connector printed or logged during a run, kept masked and bounded.

A connector that writes a token to its log leaks it as surely as one that answers it:
logs are shipped, indexed and read by people who must not hold partner credentials. So
every line is checked, as it comes, against the secrets the run knows (client secret,
refresh token, every access token the partner issued, the plugin token); a line holding
one is kept, masked, as a :class:`LogLeak` for SECRET-NO-LEAK. The log itself keeps only
its last lines, masked. Out of process, the lines are the connector's stdout and stderr;
in process, the records of every logger but the harness's own (the connector's, its
libraries': httpx logs request URLs at INFO).
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass

from harness.redaction import Redactor

__all__ = ["ConnectorLog", "LogCapture", "LogLeak"]

TAIL_LINES = 200
MAX_LEAKS = 20
MAX_SHOWN = 300
"""Characters of a leaking line kept (masked) to show where the secret was."""
_HARNESS_LOGGERS = ("harness.", "fake_partner", "respx", "hypothesis")
_CONNECTOR_LOGGERS = ("harness.sdk", "harness.reference")
"""The connector code the harness ships (the SDK mirror, the reference connector) logs
under these names: they are the connector's, not the harness's."""


@dataclass(frozen=True, slots=True)
class LogLeak:
    """A log line that held a known secret: its number, the kinds of secret, the line masked."""

    line: int
    kinds: tuple[str, ...]
    text: str


class ConnectorLog:
    """The lines a connector wrote in one run: counted, checked for secrets, tail kept."""

    def __init__(self, redactor: Redactor, *, tail_lines: int = TAIL_LINES) -> None:
        self.redactor = redactor
        self.lines = 0
        self.tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self.leaks: list[LogLeak] = []
        self.leaked_lines = 0
        """Lines that held a secret, beyond the first ``MAX_LEAKS`` kept as leaks too."""
        self._lock = threading.Lock()

    def feed(self, line: str) -> None:
        """One line (or record) of output."""
        masked, kinds = self.redactor.text_masked(line)
        with self._lock:
            self.lines += 1
            self.tail.append(masked)
            if kinds:
                self.leaked_lines += 1
                if len(self.leaks) < MAX_LEAKS:
                    self.leaks.append(LogLeak(self.lines, kinds, masked[:MAX_SHOWN]))

    def tail_text(self, lines: int | None = None) -> str:
        """The last lines, masked (every secret known now, not only when they came)."""
        with self._lock:
            kept = list(self.tail)
        if lines is not None:
            kept = kept[-lines:]
        return self.redactor.text("\n".join(kept))


class LogCapture(logging.Handler):
    """Feeds a :class:`ConnectorLog` with the records of an in-process connector: every
    logger's but the harness's own, at the levels the loggers are configured for."""

    def __init__(self, log: ConnectorLog) -> None:
        super().__init__(logging.NOTSET)
        self.log = log
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if name.startswith(_CONNECTOR_LOGGERS):
            return True
        return not name.startswith(_HARNESS_LOGGERS)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a record that cannot be formatted is still a line
            text = f"{record.levelname} {record.name}: {record.msg!r}"
        for line in text.splitlines() or [""]:
            self.log.feed(line)
