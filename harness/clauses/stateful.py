"""STATEFUL-LIFECYCLE: random feed lives under transient partner faults (a hypothesis machine).

After every step of :class:`FeedLifecycle` the batch accounting, honesty, no duplicate
success and convergence are checked; the run keeps the shrunk failing program and the seed.
"""

from __future__ import annotations

import contextlib
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import hypothesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from hypothesis.internal.conjecture import engine as _engine
from hypothesis.reporting import with_reporter
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    get_state_machine_test,
    invariant,
    multiple,
    rule,
)

from fake_partner.faults import (
    ApplyThenFailEffect,
    ErrorEffect,
    ExpireTokenEffect,
    FaultRule,
    HoldProvisioningEffect,
)
from fake_partner.scenario import Scenario
from harness.clauses.evidence import Evidence, RunRecord, RunSpec
from harness.clauses.notes import StatefulNotes
from harness.clauses.registry import Verdict, clause, get_clause
from harness.clauses.run_names import STATEFUL
from harness.strategies import EMAIL_STYLES, SEEDS, sim_users, twin

if TYPE_CHECKING:
    from harness.platform import Platform
    from harness.simulator import Feed
    from harness.users import Operation, SimUser

__all__ = [
    "CLAUSE_ID",
    "MAX_FAULT_CALLS",
    "RUN_SPECS",
    "STATEFUL",
    "STATEMENT",
    "BrokenInvariantError",
    "FeedLifecycle",
    "StatefulOutcome",
    "check_stateful_lifecycle",
    "explore",
    "machine_for",
    "run_stateful",
    "shrink_budget",
    "stateful_settings",
]

CLAUSE_ID = "STATEFUL-LIFECYCLE"
STATEMENT = (
    "under random sequences of updates, flushes, clock advances and transient partner "
    "faults, accounting stays exact, success is never invented or duplicated, and "
    "membership converges once faults clear"
)
INVARIANTS = ("BATCH-ACCOUNTING", "RETRY-NO-DUPLICATE-SUCCESS", "BATCH-HONEST", "CONVERGENCE")
"""The clauses checked after every step of an example, on the example's own evidence."""
MAX_FAULT_CALLS = 3
"""A fault lasts at most this many partner calls: fewer than the platform's batch attempts,
so a correct connector never has a batch dead-lettered."""
BATCH_FLUSH_MAX_SIZE = 5
"""Small batches so that a few users already fill and flush a queue."""
_STEPS = {"fast": 15, "ci": 20, "thorough": 40}
_SHRINK_SECONDS = {"fast": 10.0, "ci": 30.0, "thorough": 300.0}
"""Real seconds hypothesis may spend shrinking a failure. The failure and the seed's
examples are deterministic; how short the program gets within this time may vary."""
_RATE_WINDOW = 60
_UPLOAD_GLOB = "/v1/segments/*/members"
_SHOWN = 3


class BrokenInvariantError(AssertionError):
    """A clause of the machine broke: ``invariant`` names it, ``seqs`` the trace exchanges."""

    def __init__(self, invariant: str, detail: str, seqs: Sequence[int | None] = ()) -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant
        self.detail = detail
        self.seqs = tuple(seq for seq in seqs if seq is not None)


@dataclass
class _Life:
    """The example's feed, started on first use: its partner segment and where its
    exchanges begin in the platform's trace (the example is judged on its own)."""

    feed: Feed
    segment_id: str
    first_seq: int
    first_ledger: int


class FeedLifecycle(RuleBasedStateMachine):
    """One feed's life on :attr:`platform` (set by :func:`machine_for`): a new feed per
    example, created and connected at its first step (rejected examples cost nothing)."""

    platform: ClassVar[Platform | None] = None
    base_scenario: ClassVar[Scenario | None] = None
    last_feed: ClassVar[Feed | None] = None
    examples: ClassVar[int] = 0
    lives: ClassVar[int] = 0
    """Examples whose feed was created and connected (the others were abandoned)."""
    abandoned: ClassVar[list[str]] = []

    users = Bundle("users")

    def __init__(self) -> None:
        super().__init__()
        cls = type(self)
        if cls.platform is None or cls.base_scenario is None:
            raise RuntimeError(
                "FeedLifecycle has no platform: build the machine with machine_for(platform)"
            )
        cls.examples += 1
        self.host: Platform = cls.platform
        self.base: Scenario = cls.base_scenario
        self.partner = self.host.partner
        self.faults: list[FaultRule] = []
        self._life: _Life | None = None
        self.partner.set_scenario(self.base)

    @property
    def life(self) -> _Life:
        """The example's feed, created and connected now if it is not yet."""
        if self._life is None:
            self._life = self._start()
        return self._life

    @property
    def feed(self) -> Feed:
        """The example's feed (see :attr:`life`)."""
        return self.life.feed

    def _start(self) -> _Life:
        # a fresh rate-limit minute: no example inherits its predecessor's request count
        self.host.clock.advance(_RATE_WINDOW + 1)
        if not self.partner.dialect_info().get("refresh_grant", True):
            # without a refresh grant an expired token is dead for good (Meta's 190): each
            # example starts logged in, or one example's expiry would decide the next ones'
            # fate and hypothesis could not replay them
            self.host.reauthenticate()
        first_seq = self.host.trace.next_seq()
        first_ledger = len(self.host.partner.ledger)
        feed = self.host.new_feed(self.base.accounts[0].id)
        type(self).last_feed = feed
        created = feed.create()
        if not created.ok:
            # CREATE-OK judges creation (on every run); without a feed there is no life
            self._abandon(f"creation did not end ok: {created}")
        self.host.clock.advance(self.base.provisioning_delay)  # past provisioning: one poll
        self._connect(feed)
        segment_id = self.host.partner_segment_id(feed.feed_id)
        type(self).lives += 1
        return _Life(feed, segment_id, first_seq, first_ledger)

    def _connect(self, feed: Feed) -> None:
        """Connect the feed as the platform would: a connection that does not end ``ok``
        while the partner fails transiently is CONNECT-TRANSIENT's to judge (a warning), so
        the platform re-activates the feed once the faults are gone; a connection that still
        does not end ``ok`` then is judged by CONNECT-READY on the trace, and the example
        cannot go on."""
        outcome = feed.connect()
        if outcome.ok:
            return
        if self.faults:
            self.faults = []
            self.partner.set_scenario(self.base)
            self.host.clock.advance(_RATE_WINDOW + 1)
            outcome = feed.connect()
            if outcome.ok:
                return
        self._abandon(f"connection did not end ok: {outcome}")

    def _abandon(self, why: str) -> None:
        """End this example without a verdict of its own: the clauses that state what went
        wrong (CREATE-OK, CONNECT-READY...) judge it on the run's trace."""
        type(self).abandoned.append(why)
        hypothesis.reject()

    def teardown(self) -> None:
        """Disarm the faults and end the feed's step (pending items flushed).

        The feeds a run leaves behind are judged again by the session-wide clauses
        (CONVERGENCE, BATCH-*): each must end as a complete step, not mid-queue.
        """
        self.partner.set_scenario(self.base)
        if self._life is not None and self._life.feed.state == "ACTIVE":
            # a connector that fails here is judged by those clauses, not by teardown
            with contextlib.suppress(Exception):
                self._life.feed.flush()

    # ------------------------------------------------------------------ faults

    def _remaining(self) -> list[FaultRule]:
        """The injected rules that have calls left, with ``times`` set to what is left."""
        left: list[FaultRule] = []
        counters = self.partner.faults.counters()[len(self.base.faults) :]
        for fault, counter in zip(self.faults, counters, strict=True):
            times = (fault.times or 0) - counter["fired"]
            if times > 0:
                left.append(fault.model_copy(update={"times": times}))
        return left

    def _inject(self, fault: FaultRule) -> None:
        """Arm ``fault`` beside what is left of the others (the feed is started first)."""
        _ = self.life
        self.faults = [*self._remaining(), fault]
        faults = (*self.base.faults, *self.faults)
        self.partner.set_scenario(self.base.model_copy(update={"faults": faults}))

    # ------------------------------------------------------------------ rules: updates

    def _send(self, users: list[SimUser], operation: Operation, then_flush: bool) -> None:
        self.feed.send(users, operation)
        if then_flush:  # the platform flushes at the end of its step
            self.feed.flush()

    @rule(
        target=users,
        new=st.lists(sim_users(), min_size=1, max_size=5),
        then_flush=st.booleans(),
    )
    def upsert_new(self, new: list[SimUser], then_flush: bool) -> MultipleResults[SimUser]:
        """New users enter the segment."""
        self._send(new, "UPSERT", then_flush)
        return multiple(*new)

    @rule(target=users, of=users, seed=SEEDS, style=st.integers(0, EMAIL_STYLES - 1))
    def upsert_twin(self, of: SimUser, seed: int, style: int) -> SimUser:
        """Another user point sharing a known user's identifiers (emails re-typed) enters."""
        user = twin(of, seed, style)
        self._send([user], "UPSERT", False)
        return user

    @rule(known=st.lists(users, min_size=1, max_size=5), then_flush=st.booleans())
    def upsert(self, known: list[SimUser], then_flush: bool) -> None:
        """Known users are sent again (they re-enter or are refreshed)."""
        self._send(known, "UPSERT", then_flush)

    @rule(known=st.lists(users, min_size=1, max_size=5), then_flush=st.booleans())
    def delete(self, known: list[SimUser], then_flush: bool) -> None:
        """Known users leave the segment."""
        self._send(known, "DELETE", then_flush)

    @rule(strangers=st.lists(sim_users(), min_size=1, max_size=3))
    def delete_absent(self, strangers: list[SimUser]) -> None:
        """Users never added leave (DELETE-ABSENT)."""
        self._send(strangers, "DELETE", False)

    @rule()
    def flush(self) -> None:
        """The platform flushes every queue (end of a step)."""
        self.feed.flush()

    @rule(seconds=st.sampled_from((1, 30, 61, 600, 3_601)) | st.integers(1, 900))
    def advance_clock(self, seconds: int) -> None:
        """Virtual time passes (tokens age, rate windows reset, segments settle)."""
        self.host.clock.advance(seconds)

    @rule()
    def reconnect(self) -> None:
        """The feed is connected again and a new feed session opens (pending items flush)."""
        self._connect(self.feed)
        self.feed.new_session()

    # ------------------------------------------------------------------ rules: faults

    @rule()
    def expire_token(self) -> None:
        """The next upload's access token expires on arrival (401 EXPIRED_ACCESS_TOKEN)."""
        self._inject(
            FaultRule(
                name="expire-token",
                method="POST",
                path=_UPLOAD_GLOB,
                times=1,
                effect=ExpireTokenEffect(),
            )
        )

    @rule(
        calls=st.integers(1, MAX_FAULT_CALLS),
        retry_after=st.none() | st.sampled_from((1.0, 5.0, 30.0, 120.0)),
    )
    def partner_429(self, calls: int, retry_after: float | None) -> None:
        """The next ``calls`` /v1 calls answer 429, with or without Retry-After."""
        effect = ErrorEffect(
            status=429,
            code="RATE_LIMITED",
            retry_after=retry_after,
            rate_limit_headers=retry_after is not None,
        )
        self._inject(FaultRule(name="429", path="/v1/*", times=calls, effect=effect))

    @rule(calls=st.integers(1, MAX_FAULT_CALLS), status=st.sampled_from((500, 502, 503, 504)))
    def partner_5xx(self, calls: int, status: int) -> None:
        """The next ``calls`` /v1 calls answer a 5xx; nothing applies."""
        self._inject(
            FaultRule(name="5xx", path="/v1/*", times=calls, effect=ErrorEffect(status=status))
        )

    @rule(calls=st.integers(1, MAX_FAULT_CALLS))
    def ambiguous_503(self, calls: int) -> None:
        """The next ``calls`` uploads apply, then answer 503 (the ambiguous failure)."""
        self._inject(
            FaultRule(
                name="ambiguous-503",
                method="POST",
                path=_UPLOAD_GLOB,
                times=calls,
                effect=ApplyThenFailEffect(),
            )
        )

    @rule(calls=st.integers(1, MAX_FAULT_CALLS - 1))
    def not_ready(self, calls: int) -> None:
        """The feed's partner segment answers SEGMENT_NOT_READY for its next calls."""
        self._inject(
            FaultRule(
                name="not-ready",
                segment=self.life.segment_id,
                times=1,
                effect=HoldProvisioningEffect(calls=calls),
            )
        )

    @rule()
    def clear_faults(self) -> None:
        """Every injected fault is disarmed."""
        self.faults = []
        self.partner.set_scenario(self.base)

    # ------------------------------------------------------------------ the clauses

    @invariant()
    def clauses_hold(self) -> None:
        """The session clauses, as written in the registry, on this example's own evidence:
        a broken one is reported under its own id with the minimal program."""
        life = self._life
        if life is None:
            return
        record = RunRecord(
            STATEFUL,
            self.host,
            feeds={"example": life.feed},
            first_seq=life.first_seq,
            first_ledger=life.first_ledger,
            own_feeds_only=True,
        )
        evidence = Evidence(runs={STATEFUL: record})
        for clause_id in INVARIANTS:
            verdict = get_clause(clause_id).check(evidence)
            if verdict.outcome == "failed":
                raise BrokenInvariantError(clause_id, verdict.message, verdict.seqs)


def _show(members: Sequence[tuple[str, str]]) -> str:
    if not members:
        return ""
    shown = ", ".join(f"{kind}:{value[:12]}" for kind, value in members[:_SHOWN])
    more = f", +{len(members) - _SHOWN}" if len(members) > _SHOWN else ""
    return f"({shown}{more})"


def machine_for(platform: Platform) -> type[FeedLifecycle]:
    """A :class:`FeedLifecycle` bound to ``platform`` (already started); its faults are its own."""
    # the run's scenario (the user's --scenario, or the default) with the machine's own
    # transient faults armed beside its fault rules
    base = platform.partner.effective_scenario
    return type(
        "FeedLifecycle",
        (FeedLifecycle,),
        {
            "platform": platform,
            "base_scenario": base,
            "lives": 0,
            "abandoned": [],
            "__doc__": FeedLifecycle.__doc__,
        },
    )


def stateful_settings(profile: str | None = None) -> hypothesis.settings:
    """The profile's hypothesis settings (``harness.verify``) made replayable for the machine:
    no database, derandomized, one bug, steps per profile (fast 15)."""
    from harness.profiles import current_profile, hypothesis_settings

    name = profile if profile is not None else current_profile()
    return hypothesis.settings(
        hypothesis_settings(name),
        stateful_step_count=_STEPS.get(name, _STEPS["fast"]),
        database=None,
        derandomize=True,
        deadline=None,
        report_multiple_bugs=False,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
    )


@contextlib.contextmanager
def shrink_budget(seconds: float) -> Iterator[None]:
    """Let hypothesis shrink a failure for at most ``seconds`` (its own limit is 300 s), then
    report the shortest program so far; left alone on a hypothesis without that knob."""
    saved = getattr(_engine, "MAX_SHRINKING_SECONDS", None)
    if saved is None:
        yield
        return
    _engine.MAX_SHRINKING_SECONDS = seconds  # type: ignore[assignment]
    try:
        yield
    finally:
        _engine.MAX_SHRINKING_SECONDS = saved


@dataclass
class StatefulOutcome:
    """How the exploration went (the run's :class:`StatefulNotes`)."""

    passed: bool
    seed: int
    examples: int
    max_examples: int
    steps: int
    seconds: float
    invariant: str | None = None
    detail: str | None = None
    program: list[str] = field(default_factory=list)
    seqs: tuple[int, ...] = ()
    feed: Feed | None = None
    lives: int = 0
    abandoned: list[str] = field(default_factory=list)


def _program(exc: BaseException, reported: list[str]) -> list[str]:
    """The shrunk steps hypothesis attached (or printed), without the invariant checks."""
    notes = [str(note) for note in getattr(exc, "__notes__", ())]
    return [
        step
        for step in (notes or reported)
        if "state" in step and not step.startswith(("state.clauses_hold(", "Failing test"))
    ]


def _violation(exc: BaseException) -> BrokenInvariantError | None:
    if isinstance(exc, BrokenInvariantError):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _violation(inner)
        if found is not None:
            return found
    return _violation(exc.__cause__) if exc.__cause__ is not None else None


def _answer_seqs(exc: BaseException) -> tuple[int, ...]:
    """The exchange of the last answer a simulator error carries (connector unavailable)."""
    answer = getattr(exc, "answer", None)
    exchange = getattr(answer, "exchange", None)
    seq = getattr(exchange, "seq", None)
    return (seq,) if isinstance(seq, int) else ()


def explore(
    platform: Platform,
    *,
    seed: int = 0,
    profile: str | None = None,
    settings: hypothesis.settings | None = None,
    shrink_seconds: float | None = None,
) -> StatefulOutcome:
    """Run :class:`FeedLifecycle` on ``platform`` with ``seed`` (the same seed replays the
    same examples); a failure comes back shrunk (within the profile's budget), never raised."""
    from harness.profiles import current_profile

    name = profile if profile is not None else current_profile()
    machine = machine_for(platform)
    chosen = settings if settings is not None else stateful_settings(name)
    budget = shrink_budget(
        shrink_seconds if shrink_seconds is not None else _SHRINK_SECONDS.get(name, 10.0)
    )
    test = hypothesis.seed(seed)(get_state_machine_test(machine, settings=chosen))
    original = platform.partner.scenario
    reported: list[str] = []
    started = time.perf_counter()
    outcome = StatefulOutcome(True, seed, 0, chosen.max_examples, chosen.stateful_step_count, 0.0)
    try:
        with with_reporter(lambda value: reported.append(str(value))), budget:
            test()
    except Exception as exc:
        found = _violation(exc)
        outcome.passed = False
        outcome.invariant = found.invariant if found is not None else type(exc).__name__
        outcome.detail = found.detail if found is not None else f"{type(exc).__name__}: {exc}"
        outcome.seqs = found.seqs if found is not None else _answer_seqs(exc)
        outcome.program = _program(exc, reported)
    finally:
        platform.partner.set_scenario(original)
    outcome.seconds = time.perf_counter() - started
    outcome.examples = machine.examples
    outcome.feed = machine.last_feed
    outcome.lives = machine.lives
    outcome.abandoned = list(machine.abandoned)
    return outcome


# ------------------------------------------------------------------ the run and the clause


def run_stateful(record: RunRecord, seed: int) -> None:
    """The ``stateful`` run: explore the machine on the run's platform (notes: ``stateful``)."""
    outcome = explore(record.platform, seed=seed)
    assert isinstance(record.notes, StatefulNotes)
    record.notes.outcome = outcome
    if outcome.feed is not None:
        record.feeds[STATEFUL] = outcome.feed


RUN_SPECS = (
    RunSpec(
        STATEFUL,
        run_stateful,
        description=(
            "random feed lives (hypothesis state machine): updates, flushes, clock jumps, "
            "transient partner faults and reconnections, checked after every step"
        ),
        settings={"batch_flush_max_size": BATCH_FLUSH_MAX_SIZE},
        notes=StatefulNotes,
    ),
)


@clause(CLAUSE_ID, STATEMENT, group="stateful", runs=(STATEFUL,))
def check_stateful_lifecycle(evidence: Evidence) -> Verdict:
    """Fails with the shrunk program, the seed and the broken invariant."""
    record = evidence.get(STATEFUL)
    if record is None:
        return Verdict.failed(f"the {STATEFUL!r} run did not execute", run=STATEFUL)
    if record.aborted:
        return Verdict.failed(f"the {STATEFUL!r} run stopped early: {record.aborted}", run=STATEFUL)
    notes = record.notes
    outcome = notes.outcome if isinstance(notes, StatefulNotes) else None
    if outcome is None:
        return Verdict.failed(f"the {STATEFUL!r} run recorded no result", run=STATEFUL)
    if outcome.passed and not outcome.lives:
        why = "; ".join(outcome.abandoned[:3]) or "no example started a feed"
        return Verdict.skipped(f"not exercised: no random feed life got going ({why})")
    if outcome.passed:
        return Verdict.passed(
            f"{outcome.examples} random feed lives of up to {outcome.steps} steps "
            f"(seed {outcome.seed}) kept every invariant",
            run=STATEFUL,
        )
    return Verdict.failed(_broken_message(outcome), seqs=outcome.seqs, run=STATEFUL)


def _broken_message(outcome: StatefulOutcome) -> str:
    program = outcome.program
    steps = textwrap.indent("\n".join(program) or "(hypothesis printed no steps)", "    ")
    return (
        f"{outcome.invariant} broke under --seed {outcome.seed}: {outcome.detail}\n"
        f"  minimal failing program ({max(0, len(program) - 2)} step(s)):\n{steps}"
    )


def broken_in_random_lives(evidence: Evidence, clause_id: str) -> tuple[str, str, list[int]] | None:
    """``(run, message, seqs)`` when a random feed life of the evidence broke ``clause_id``
    (one of :data:`INVARIANTS`): the clause reports it under its own id, with the seed and
    the minimal failing program."""
    for record in evidence:
        notes = record.notes
        outcome = notes.outcome if isinstance(notes, StatefulNotes) else None
        if outcome is not None and not outcome.passed and outcome.invariant == clause_id:
            return record.name, _broken_message(outcome), list(outcome.seqs)
    return None
