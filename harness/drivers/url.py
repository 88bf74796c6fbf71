"""The URL driver: a connector someone else started."""

from __future__ import annotations

import time

from harness.drivers.base import PlatformEnv
from harness.drivers.bounds import Bounds
from harness.drivers.loopback import _HttpDriver
from harness.trace import Trace

__all__ = ["UrlDriver"]


class UrlDriver(_HttpDriver):
    """A connector someone else started, at ``base_url`` (pointed at the served gateway)."""

    def __init__(
        self,
        base_url: str,
        *,
        start_timeout: float = 20.0,
        trace: Trace | None = None,
        bounds: Bounds | None = None,
    ) -> None:
        super().__init__(base_url, trace=trace, bounds=bounds)
        self.start_timeout = start_timeout

    def start(self, env: PlatformEnv | None = None) -> None:
        """Wait until the connector answers ``GET /v1/status`` with 200."""
        self._wait_ready(time.monotonic() + self.start_timeout, lambda: None)
