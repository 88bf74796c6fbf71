"""Runs one after the other for a connector process, its starts and stops overlapped.

A ``--cmd`` connector is started afresh for every run (~0.5 s here: an interpreter, its
imports, a server) and stopped after it (~0.3 s: the server's own shutdown), and in a
verification of 17 runs those waits were about half of the wall time. Here the next
runs' platforms (served partner, served gateway, connector process) start while a run
plays, and a played run's platform stops while the next one plays.

The runs themselves still play one at a time, in order, on the calling thread: a run's
exchanges, its virtual clock and its verdict are those of a serial verification. A
platform started ahead is a fresh one, as a serial run would build, and a run whose start
fails beside other instances is started again alone (see :class:`RunsAhead`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from fake_partner import Scenario
from harness.clauses.evidence import RunRecord, RunSpec
from harness.clauses.runs import play_run, prepare_run
from harness.drivers import ConnectorStartError
from harness.platform import Platform
from harness.targets import Target

__all__ = ["AHEAD", "RunsAhead"]

AHEAD = 2
"""Platforms started ahead of the run that plays: most runs play in less time than a
connector takes to start, so one ahead would still be waited for."""


def _start(platform: Platform) -> None:
    """Start ``platform``, stopping what began if it cannot (as ``with`` would)."""
    try:
        platform.start()
    except BaseException:
        platform.stop()
        raise


class RunsAhead:
    """Executes runs of ``target`` as ``execute_run`` would, each platform started ahead
    of its turn and stopped behind it. Use as a context manager: leaving it gives up the
    starts no run will use and waits until every platform it started has stopped.

    The first run's platform starts alone. A connector that cannot start beside another
    instance of itself (a fixed port or file of its own) fails a start made ahead; that
    run's platform is then started again alone, and from then on every run starts alone
    after the previous one has stopped, as in a serial verification. A start that fails
    alone fails its run.
    """

    def __init__(
        self,
        target: Target,
        *,
        seed: int,
        scenario: Scenario | None = None,
        partner: str | None = None,
        ahead: int = AHEAD,
    ) -> None:
        self._target = target
        self._seed = seed
        self._scenario = scenario
        self._partner = partner
        self._ahead = ahead
        self._pool = ThreadPoolExecutor(
            max_workers=ahead + 2, thread_name_prefix="feed-harness-platform"
        )
        self._starting: dict[str, tuple[RunRecord, Future[None]]] = {}
        self._stopping: list[Future[None]] = []

    @property
    def alone(self) -> bool:
        """Whether each run now starts alone, after the previous one stopped."""
        return self._ahead == 0

    def __enter__(self) -> RunsAhead:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def execute(self, spec: RunSpec, following: Sequence[RunSpec] = ()) -> RunRecord:
        """Play ``spec`` on its platform (started now, or ahead), and start the platforms
        of the first ``following`` runs meanwhile. Raises what ``execute_run`` raises;
        the platform is stopped in the background once the run has played."""
        begun = self._starting.pop(spec.name, None)
        beside = begun is not None
        if begun is None:
            self._wait_stops()
            begun = self._begin(spec)
        record, started = begun
        try:
            try:
                started.result()  # what the start raised, this run raises
            except ConnectorStartError:
                if not beside:
                    raise
                self._start_alone_from_now()
                record, started = self._begin(spec)
                started.result()
        except BaseException:
            self._give_up(record, started)
            raise
        for nxt in following[: self._ahead]:
            if nxt.name not in self._starting:
                self._starting[nxt.name] = self._begin(nxt)
        platform = record.platform
        try:
            play_run(spec, record, self._seed)
        except BaseException:
            platform.stop()
            raise
        self._stopping.append(self._pool.submit(platform.stop))
        return record

    def _begin(self, spec: RunSpec) -> tuple[RunRecord, Future[None]]:
        # built on this thread: a platform reads the verification's bounds from its context
        record = prepare_run(spec, self._target, scenario=self._scenario, partner=self._partner)
        return record, self._pool.submit(_start, record.platform)

    def _give_up(self, record: RunRecord, started: Future[None]) -> None:
        """Abandon a start, wait for it to end, stop what it left running."""
        record.platform.abandon()
        with contextlib.suppress(Exception):  # it was raised, or is of no interest now
            started.result()
        record.platform.stop()

    def _start_alone_from_now(self) -> None:
        """Give up every start made ahead and wait for every stop: from now on each run
        starts alone."""
        self._ahead = 0
        starting, self._starting = self._starting, {}
        for record, started in starting.values():
            self._give_up(record, started)
        self._wait_stops()

    def _wait_stops(self) -> None:
        stopping, self._stopping = self._stopping, []
        for stop in stopping:
            with contextlib.suppress(Exception):  # a stop's own trouble is not the run's
                stop.result()

    def close(self) -> None:
        """Give up the starts no run used, and wait until every platform has stopped."""
        try:
            self._start_alone_from_now()
        finally:
            self._pool.shutdown(wait=True)
