"""What the conformance runs leave behind for the checks to read.

A *run* drives one :class:`~harness.platform.Platform` through a scripted feed life
(``harness.clauses.runs``); its :class:`RunRecord` keeps the platform (trace, partner
ledger and state, gateway), the feeds (accounting, update and batch records) and the
run's own notes. Checks read records; they never drive the connector.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.clauses.notes import RunNotes

if TYPE_CHECKING:
    from fake_partner import Partner, Scenario
    from harness.gateway import Gateway
    from harness.platform import Platform
    from harness.simulator import Feed
    from harness.trace import Exchange, Trace


@dataclass
class RunRecord:
    """One conformance run's evidence.

    ``notes`` holds what the run itself observed and checks need (each run's own
    :mod:`~harness.clauses.notes` dataclass); ``aborted`` says why a run stopped early
    (the connector stopped answering, a step could not proceed) — checks that need the missing part
    report it rather than pass.
    """

    name: str
    platform: Platform
    feeds: dict[str, Feed] = field(default_factory=dict)
    notes: RunNotes = field(default_factory=RunNotes)
    aborted: str | None = None
    first_seq: int = 0
    """Exchanges before this trace sequence number belong to an earlier scope (a stateful
    example judges its own exchanges, not its predecessors' on the same platform)."""
    first_ledger: int = 0
    """Partner ledger entries before this index belong to that earlier scope too."""
    own_feeds_only: bool = False
    """Judge ``feeds`` alone, not every feed the platform built (a stateful example)."""
    user_scenario: bool = False
    """The run played the user's ``--scenario`` (it has no preset of its own)."""

    @property
    def trace(self) -> Trace:
        """The run's one ordered trace of every exchange (all three legs)."""
        return self.platform.trace

    @property
    def partner(self) -> Partner:
        """The run's fake partner (its ledger, state and fault counters)."""
        return self.platform.partner

    @property
    def gateway(self) -> Gateway:
        """The run's fake plugin gateway (feed properties as the connector left them)."""
        return self.platform.gateway

    def connector_exchanges(self, route_path: str | None = None) -> list[Exchange]:
        """The platform->connector exchanges, optionally of one route path."""
        from harness.clauses.view import view_of

        return view_of(self).of_leg("platform->connector", route_path)


@dataclass
class Evidence:
    """The records of every run a verification executed, by run name."""

    runs: dict[str, RunRecord] = field(default_factory=dict)
    seed: int = 0
    profile: str = "fast"
    """The verification profile (``fast``, ``ci``, ``thorough``; see ``harness.verify``)."""

    def __getitem__(self, name: str) -> RunRecord:
        return self.runs[name]

    def get(self, name: str) -> RunRecord | None:
        return self.runs.get(name)

    def __iter__(self) -> Iterator[RunRecord]:
        return iter(self.runs.values())

    def all_connector_exchanges(self) -> Iterator[tuple[RunRecord, Exchange]]:
        """Every platform->connector exchange of every run."""
        for record in self.runs.values():
            for exchange in record.connector_exchanges():
                yield record, exchange


RunFunction = Callable[[RunRecord, int], None]
"""A run's script: drives ``record.platform`` (already started), fills ``record.feeds``
and ``record.notes``; gets the seed."""


@dataclass(frozen=True)
class RunSpec:
    """A named conformance run: its script and the partner scenario it needs."""

    name: str
    script: RunFunction
    scenario: str | Scenario | None = None
    description: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    notes: type[RunNotes] = RunNotes
    """The dataclass of the run's notes (a fresh one per execution)."""


def not_implemented(exchange: Exchange) -> bool:
    """The connector's answer says it lacks the exchange's route (``Route.not_implemented_by``,
    the one rule: checks, the engine and the reports all apply this)."""
    from contracts.routes import route_for_path

    wire = route_for_path(exchange.method, exchange.path)
    if wire is None or exchange.status is None:
        return False
    return wire.not_implemented_by(exchange.status, exchange.response_json())
