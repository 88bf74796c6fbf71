"""STATEFUL-LIFECYCLE: random feed lives under transient partner faults (a hypothesis machine).

After every step of :class:`FeedLifecycle` the batch accounting, honesty, no duplicate
success and convergence are checked; the run keeps the shrunk failing program and the seed.
"""

from __future__ import annotations

import contextlib
import textwrap
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
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
from fake_partner.ledger import Ledger, LedgerEntry
from fake_partner.scenario import Scenario
from harness.clauses.evidence import Evidence, RunRecord, RunSpec
from harness.clauses.registry import Verdict, clause
from harness.strategies import EMAIL_STYLES, SEEDS, sim_users, twin
from harness.users import MembershipModel

if TYPE_CHECKING:
    from harness.drivers import Answer, ConnectorDriver, PlatformEnv
    from harness.platform import Platform
    from harness.simulator import Feed, StepOutcome
    from harness.trace import Trace
    from harness.users import Operation, SimUser

__all__ = [
    "CLAUSE_ID",
    "MAX_FAULT_CALLS",
    "RUN_SPECS",
    "STATEFUL_RUN",
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
STATEFUL_RUN = "stateful"
STATEMENT = (
    "under random sequences of updates, flushes, clock advances and transient partner "
    "faults, accounting stays exact, success is never invented or duplicated, and "
    "membership converges once faults clear"
)
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


class _AttemptTap:
    """The feed's driver, wrapped: which partner uploads each connector call caused."""

    def __init__(self, inner: ConnectorDriver) -> None:
        self.inner = inner
        self.trace: Trace | None = inner.trace
        self.current: list[LedgerEntry | None] | None = None
        self.uploads: dict[int, list[LedgerEntry | None]] = {}

    def start(self, env: PlatformEnv) -> None:
        """The platform starts the real driver; nothing to do here."""

    def stop(self) -> None:
        """The platform stops the real driver; nothing to do here."""

    def call(self, method: str, path: str, body: bytes | None, *, timeout: float) -> Answer:
        """Call through, keeping the partner uploads seen meanwhile under the exchange seq."""
        uploads: list[LedgerEntry | None] = []
        self.current = uploads
        try:
            answer = self.inner.call(method, path, body, timeout=timeout)
        finally:
            self.current = None
        if answer.exchange is not None:
            self.uploads[answer.exchange.seq] = uploads
        return answer


def _ledger_entry(ledger: Ledger, path: str, request_id: str | None) -> LedgerEntry | None:
    """The ledger entry of the request just answered (by request id; latest drop without)."""
    for entry in reversed(ledger.entries[-64:]):
        if request_id is not None and entry.request_id == request_id:
            return entry
        if request_id is None and entry.path == path and entry.dropped:
            return entry
    return None


@dataclass
class _Life:
    """The example's feed, started on first use: its driver tap and partner segment."""

    feed: Feed
    tap: _AttemptTap
    segment_id: str
    upload_path: str


class FeedLifecycle(RuleBasedStateMachine):
    """One feed's life on :attr:`platform` (set by :func:`machine_for`): a new feed per
    example, created and connected at its first step (rejected examples cost nothing)."""

    platform: ClassVar[Platform | None] = None
    base_scenario: ClassVar[Scenario | None] = None
    last_feed: ClassVar[Feed | None] = None
    examples: ClassVar[int] = 0

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
        self.observing = False
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
        feed = self.host.new_feed(self.base.accounts[0].id)
        type(self).last_feed = feed
        tap = _AttemptTap(feed.driver)
        feed.driver = tap
        self._started(feed.create(), "SETUP")
        self.host.clock.advance(self.base.provisioning_delay)  # past provisioning: one poll
        self._started(feed.connect(), "SETUP")
        segment_id = self.host.partner_segment_id(feed.feed_id)
        life = _Life(feed, tap, segment_id, f"/v1/segments/{segment_id}/members")
        self.partner.add_observer(self._observe)
        self.observing = True
        return life

    def _started(self, outcome: StepOutcome, invariant: str) -> None:
        """Raise when creation or connection did not end ``ok``."""
        if not outcome.ok:
            seqs = [a.exchange.seq for a in outcome.answers if a.exchange is not None]
            raise BrokenInvariantError(invariant, f"the feed could not go on: {outcome}", seqs)

    def teardown(self) -> None:
        """Disarm the faults, end the feed's step (pending items flushed) and stop observing.

        The feeds a run leaves behind are judged again by the session-wide clauses
        (CONVERGENCE, BATCH-*): each must end as a complete step, not mid-queue.
        """
        self.partner.set_scenario(self.base)
        if self._life is not None and self._life.feed.state == "ACTIVE":
            # a connector that fails here is judged by those clauses, not by teardown
            with contextlib.suppress(Exception):
                self._life.feed.flush()
        if self.observing:
            self.partner.remove_observer(self._observe)
            self.observing = False

    def _observe(self, request: httpx.Request, outcome: httpx.Response | Exception) -> None:
        life = self._life
        uploads = life.tap.current if life is not None else None
        if uploads is None or life is None or request.method != "POST":
            return
        if request.url.path != life.upload_path:
            return
        request_id = (
            outcome.headers.get("x-request-id") if isinstance(outcome, httpx.Response) else None
        )
        uploads.append(_ledger_entry(self.partner.ledger, request.url.path, request_id))

    # ------------------------------------------------------------------ faults

    def _remaining(self) -> list[FaultRule]:
        """The injected rules that have calls left, with ``times`` set to what is left."""
        left: list[FaultRule] = []
        for fault, counter in zip(self.faults, self.partner.faults.counters(), strict=True):
            times = (fault.times or 0) - counter["fired"]
            if times > 0:
                left.append(fault.model_copy(update={"times": times}))
        return left

    def _inject(self, fault: FaultRule) -> None:
        """Arm ``fault`` beside what is left of the others (the feed is started first)."""
        _ = self.life
        self.faults = [*self._remaining(), fault]
        self.partner.set_scenario(self.base.model_copy(update={"faults": tuple(self.faults)}))

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
        self._started(self.feed.connect(), "CONNECTION")
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
        """Accounting, no duplicate success, honesty, convergence: in that order."""
        life = self._life
        if life is None:
            return
        self.check_accounting(life)
        self.check_no_duplicate_success(life)
        self.check_honest(life)
        self.check_convergence(life)

    def check_accounting(self, life: _Life) -> None:
        """BATCH-ACCOUNTING: every final answer's counts are >= 0 and add up to its length."""
        for batch in life.feed.batches:
            final = batch.final_attempt
            if final is None:
                continue
            ok_, err = final.sent_items_in_success, final.sent_items_in_error
            if ok_ is None or err is None or ok_ < 0 or err < 0 or ok_ + err != final.size:
                raise BrokenInvariantError(
                    "BATCH-ACCOUNTING",
                    f"batch {batch.batch_id} of {final.size} item(s): final answer "
                    f"{final.http_status} {final.status} counted sent_items_in_success={ok_} "
                    f"+ sent_items_in_error={err}; expected two counts >= 0 adding up to "
                    f"{final.size}",
                    [final.exchange_seq],
                )

    def check_no_duplicate_success(self, life: _Life) -> None:
        """RETRY-NO-DUPLICATE-SUCCESS: one final answer per batch, each counted once per session."""
        feed = life.feed
        for session_id, accounting in feed.sessions.items():
            reported = delivered = 0
            for batch in feed.batches:
                if batch.session_id != session_id:
                    continue
                finals = [a for a in batch.attempts if a.final]
                if len(finals) > 1 or (finals and finals[-1] is not batch.attempts[-1]):
                    raise BrokenInvariantError(
                        "RETRY-NO-DUPLICATE-SUCCESS",
                        f"batch {batch.batch_id} got {len(finals)} final answers "
                        f"(attempts {[a.attempt for a in finals]}); a batch ends at its first",
                        [a.exchange_seq for a in finals],
                    )
                if finals:
                    reported += finals[0].sent_items_in_success or 0
                    delivered += len(batch.items)
            if accounting.items_reported_success != reported or reported > delivered:
                raise BrokenInvariantError(
                    "RETRY-NO-DUPLICATE-SUCCESS",
                    f"session {session_id}: {accounting.items_reported_success} item(s) counted "
                    f"as success, the final answers report {reported} for {delivered} "
                    "item(s) delivered; each item counts at most once",
                )

    def check_honest(self, life: _Life) -> None:
        """BATCH-HONEST: a final answer's success equals what the partner accepted during it."""
        for batch in life.feed.batches:
            final = batch.final_attempt
            if final is None or final.exchange_seq is None:
                continue
            uploads = life.tap.uploads.get(final.exchange_seq)
            if uploads is None or any(entry is None for entry in uploads):
                continue  # cannot attribute the partner's work to this attempt
            accepted = sum(entry.accepted for entry in uploads if entry is not None)
            if final.sent_items_in_success != accepted:
                raise BrokenInvariantError(
                    "BATCH-HONEST",
                    f"batch {batch.batch_id} of {final.size} item(s), attempt {final.attempt}: "
                    f"the final answer {final.http_status} {final.status} reports "
                    f"sent_items_in_success={final.sent_items_in_success}, the partner "
                    f"accepted {accepted} operation(s) in {len(uploads)} upload(s) meanwhile",
                    [final.exchange_seq],
                )

    def check_convergence(self, life: _Life) -> None:
        """CONVERGENCE: the partner holds the model of every update whose items all left the
        queue (every update once nothing is queued). The faults are transient and shorter
        than the platform's retries: even with one armed, nothing may be lost."""
        feed = life.feed
        if any(s.delivery_items.get("FILE_DELIVERY") for s in feed.sessions.values()):
            return  # file deliveries never reach the partner in the simulator
        sent: Counter[int] = Counter(
            item.update.index for b in feed.batches for item in b.items if item.update is not None
        )
        model = MembershipModel(feed.identifying)
        queued = 0
        for update in feed.updates:
            if sent[update.index] < update.items:
                queued += 1
            else:
                model.apply(update.operation, update.user)
        expected, actual = model.members, feed.partner_membership()
        if expected == actual:
            return
        missing, extra = sorted(expected - actual), sorted(actual - expected)
        sessions = feed.sessions.values()
        lost = sum(s.items_dead_lettered for s in sessions)
        errors = sum(s.items_delivered.get("ERROR", 0) for s in sessions)
        failed = sum(
            n
            for s in sessions
            for k, n in s.updates_answered.items()
            if k not in ("ok", "no_eligible_identifier")
        )
        raise BrokenInvariantError(
            "CONVERGENCE",
            f"after {len(feed.updates) - queued} delivered update(s) ({queued} still queued) "
            f"the partner segment {life.segment_id} has {len(actual)} member(s) where the "
            f"model expects {len(expected)}: {len(missing)} missing {_show(missing)}, "
            f"{len(extra)} extra {_show(extra)} ({errors} item(s) in ERROR batches, {lost} "
            f"dead-lettered, {failed} update(s) answered other than ok)",
        )


def _show(members: Sequence[tuple[str, str]]) -> str:
    if not members:
        return ""
    shown = ", ".join(f"{kind}:{value[:12]}" for kind, value in members[:_SHOWN])
    more = f", +{len(members) - _SHOWN}" if len(members) > _SHOWN else ""
    return f"({shown}{more})"


def machine_for(platform: Platform) -> type[FeedLifecycle]:
    """A :class:`FeedLifecycle` bound to ``platform`` (already started); its faults are its own."""
    # the machine's faults are its own, all transient: no scenario faults, no daily quota
    base = platform.partner.effective_scenario.model_copy(
        update={"faults": (), "daily_quota": None}
    )
    return type(
        "FeedLifecycle",
        (FeedLifecycle,),
        {"platform": platform, "base_scenario": base, "__doc__": FeedLifecycle.__doc__},
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
    """How the exploration went; :meth:`to_notes` is what the run records."""

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

    def to_notes(self) -> dict[str, Any]:
        """Plain data for ``record.notes["stateful"]``."""
        return {
            "passed": self.passed,
            "seed": self.seed,
            "examples": self.examples,
            "max_examples": self.max_examples,
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "invariant": self.invariant,
            "detail": self.detail,
            "program": list(self.program),
            "seqs": list(self.seqs),
        }


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
    return outcome


# ------------------------------------------------------------------ the run and the clause


def run_stateful(record: RunRecord, seed: int) -> None:
    """The ``stateful`` run: explore the machine on the run's platform (notes: ``stateful``)."""
    outcome = explore(record.platform, seed=seed)
    record.notes[STATEFUL_RUN] = outcome.to_notes()
    if outcome.feed is not None:
        record.feeds[STATEFUL_RUN] = outcome.feed


RUN_SPECS = (
    RunSpec(
        STATEFUL_RUN,
        run_stateful,
        description=(
            "random feed lives (hypothesis state machine): updates, flushes, clock jumps, "
            "transient partner faults and reconnections, checked after every step"
        ),
        settings={"batch_flush_max_size": BATCH_FLUSH_MAX_SIZE},
    ),
)


@clause(CLAUSE_ID, STATEMENT, group="stateful", runs=(STATEFUL_RUN,))
def check_stateful_lifecycle(evidence: Evidence) -> Verdict:
    """Fails with the shrunk program, the seed and the broken invariant."""
    record = evidence.get(STATEFUL_RUN)
    if record is None:
        return Verdict.failed(f"the {STATEFUL_RUN!r} run did not execute", run=STATEFUL_RUN)
    if record.aborted:
        return Verdict.failed(
            f"the {STATEFUL_RUN!r} run stopped early: {record.aborted}", run=STATEFUL_RUN
        )
    notes = record.notes.get(STATEFUL_RUN)
    if not isinstance(notes, dict):
        return Verdict.failed(f"the {STATEFUL_RUN!r} run recorded no result", run=STATEFUL_RUN)
    if notes.get("passed"):
        return Verdict.passed(
            f"{notes.get('examples')} random feed lives of up to {notes.get('steps')} steps "
            f"(seed {notes.get('seed')}) kept every invariant",
            run=STATEFUL_RUN,
        )
    program = notes.get("program") or []
    steps = textwrap.indent("\n".join(program) or "(hypothesis printed no steps)", "    ")
    message = (
        f"{notes.get('invariant')} broke under --seed {notes.get('seed')}: {notes.get('detail')}\n"
        f"  minimal failing program ({max(0, len(program) - 2)} step(s)):\n{steps}"
    )
    return Verdict.failed(message, seqs=notes.get("seqs") or (), run=STATEFUL_RUN)
