"""STATEFUL-LIFECYCLE: the reference connector survives random feed lives; faulty connectors
(inflated counts, success invented on a partner 5xx) are caught with a short program and seed."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings

from contracts.plugin_api import (
    BatchUpdateRequest,
    BatchUpdateResponse,
    ExternalSegmentConnectionRequest,
    ExternalSegmentConnectionResponse,
    UserSegmentUpdateRequest,
    UserSegmentUpdateResponse,
)
from harness.clauses.evidence import Evidence, RunRecord
from harness.clauses.notes import StatefulNotes
from harness.clauses.registry import get_clause
from harness.clauses.run_names import STATEFUL
from harness.clauses.stateful import (
    CLAUSE_ID,
    RUN_SPECS,
    StatefulOutcome,
    check_stateful_lifecycle,
    explore,
    machine_for,
    stateful_settings,
)
from harness.generators import make_users
from harness.platform import Platform
from harness.reference import ReferenceConnector, ReferenceContext
from harness.reference.partner_client import PartnerError
from harness.simulator import SimulatorSettings
from harness.targets import Target

SPEC = RUN_SPECS[0]


class InflatingConnector(ReferenceConnector):
    """Reports one item more as success than the partner took (breaks BATCH-ACCOUNTING)."""

    async def on_batch_update(
        self, request: BatchUpdateRequest[Any], ctx: ReferenceContext
    ) -> BatchUpdateResponse:
        answer = await super().on_batch_update(request, ctx)
        if answer.status == "OK" and answer.sent_items_in_success:
            return answer.model_copy(
                update={"sent_items_in_success": answer.sent_items_in_success + 1}
            )
        return answer


class SeedStyleConnection(ReferenceConnector):
    """Connection as the seed's own example writes it: any partner failure but a 404 is an
    ``error`` (CONNECT-TRANSIENT's business, a warning; no clause of the machine states it)."""

    async def on_external_segment_connection(
        self, request: ExternalSegmentConnectionRequest, ctx: ReferenceContext
    ) -> ExternalSegmentConnectionResponse:
        try:
            await ctx.partner.get_segment(ctx.partner_segment_id or "")
        except PartnerError as err:
            if err.status == 404:
                return ExternalSegmentConnectionResponse(
                    status="external_segment_not_ready_yet", message="not ready"
                )
            return ExternalSegmentConnectionResponse(status="error", message=str(err))
        return ExternalSegmentConnectionResponse(status="ok")


class OkOnPartnerFailureConnector(ReferenceConnector):
    """Answers OK with every item a success when the partner failed (invents success)."""

    async def on_batch_update(
        self, request: BatchUpdateRequest[Any], ctx: ReferenceContext
    ) -> BatchUpdateResponse:
        answer = await super().on_batch_update(request, ctx)
        if answer.status != "RETRY":
            return answer
        total = len(request.batch_content)
        return BatchUpdateResponse(status="OK", sent_items_in_success=total, sent_items_in_error=0)


class IgnoresDeletesConnector(ReferenceConnector):
    """Answers ``ok`` to every DELETE without delivering it (members never leave)."""

    async def on_user_segment_update(
        self, request: UserSegmentUpdateRequest, ctx: ReferenceContext
    ) -> UserSegmentUpdateResponse:
        if request.operation == "DELETE":
            return UserSegmentUpdateResponse(status="ok")
        return await super().on_user_segment_update(request, ctx)


def platform_for(connector: object | None = None) -> Platform:
    """A platform as ``execute_run`` builds it for the stateful run."""
    return Platform(
        **Target(connector=connector).platform_kwargs(),
        settings=SimulatorSettings(**dict(SPEC.settings)),
    )


def run(connector: object | None, seed: int, **options: Any) -> StatefulOutcome:
    with platform_for(connector) as platform:
        return explore(platform, seed=seed, profile="fast", **options)


def steps(outcome: StatefulOutcome) -> list[str]:
    """The program's steps without ``state = ...`` and ``state.teardown()``."""
    return [s for s in outcome.program if not s.startswith(("state =", "state.teardown"))]


def test_settings_replay_a_seed() -> None:
    chosen = stateful_settings("fast")
    assert chosen.database is None
    assert chosen.derandomize
    assert chosen.stateful_step_count == 15
    assert not chosen.report_multiple_bugs
    assert stateful_settings("thorough").stateful_step_count > 15


def test_reference_connector_passes_through_the_run_and_the_check() -> None:
    with platform_for() as platform:
        record = RunRecord(STATEFUL, platform, notes=StatefulNotes())
        SPEC.script(record, 3)
    assert isinstance(record.notes, StatefulNotes)
    outcome = record.notes.outcome
    assert outcome is not None
    assert outcome.passed, outcome
    assert outcome.seed == 3
    assert outcome.examples >= outcome.max_examples > 0
    assert record.feeds[STATEFUL] is platform.feeds[-1], "the last example's feed"
    assert sum(len(feed.batches) for feed in platform.feeds) > 10, "batches were exercised"
    assert any(len(b.attempts) > 1 for feed in platform.feeds for b in feed.batches), "retries"
    verdict = check_stateful_lifecycle(Evidence(runs={STATEFUL: record}, seed=3))
    assert verdict.outcome == "passed", verdict.message
    assert verdict.run == STATEFUL


def test_the_same_seed_replays_the_same_examples() -> None:
    def paths(seed: int) -> list[str]:
        with platform_for() as platform:
            few = settings(stateful_settings("fast"), max_examples=4)
            outcome = explore(platform, seed=seed, settings=few)
            assert outcome.passed, outcome.detail
            return [f"{e.method} {e.path}" for e in platform.trace]

    first = paths(11)
    assert first == paths(11)
    assert first != paths(12)


def test_inflated_success_is_caught_and_shrunk() -> None:
    outcome = run(InflatingConnector, seed=0, shrink_seconds=60)
    assert not outcome.passed
    assert outcome.invariant == "BATCH-ACCOUNTING", outcome.detail
    assert "2 success + 0 error = 2 for a batch of 1" in (outcome.detail or "")
    assert outcome.program[0] == "state = FeedLifecycle()"
    assert outcome.program[-1] == "state.teardown()"
    program = steps(outcome)
    assert len(program) == 1, outcome.program
    assert "state.upsert_new(" in program[0]
    assert "then_flush=True" in program[0]
    assert outcome.seqs, "the failing batch answer's exchange"

    record = RunRecord(STATEFUL, platform_for(InflatingConnector), notes=StatefulNotes(outcome))
    verdict = check_stateful_lifecycle(Evidence(runs={STATEFUL: record}, seed=0))
    assert verdict.outcome == "failed"
    assert verdict.message.startswith("BATCH-ACCOUNTING broke under --seed 0:")
    assert "minimal failing program (1 step(s))" in verdict.message
    assert "\n    (users_0,) = state.upsert_new(" in verdict.message
    assert verdict.seqs == outcome.seqs
    assert verdict.run == STATEFUL


FAULT_STEPS = ("partner_5xx", "partner_429", "not_ready", "expire_token", "ambiguous_503")


def test_success_invented_on_a_partner_failure_is_caught() -> None:
    outcome = run(OkOnPartnerFailureConnector, seed=0, shrink_seconds=3)
    assert not outcome.passed
    assert outcome.invariant == "BATCH-HONEST", outcome.detail
    assert "the partner accepted 0 operations" in (outcome.detail or "")
    program = steps(outcome)
    assert 2 <= len(program) <= 15, outcome.program
    assert any(fault in step for step in program for fault in FAULT_STEPS), program
    assert outcome.seed == 0


def test_deletes_never_delivered_break_convergence() -> None:
    outcome = run(IgnoresDeletesConnector, seed=0, shrink_seconds=3)
    assert not outcome.passed
    assert outcome.invariant == "CONVERGENCE", outcome.detail
    assert "unexpected" in (outcome.detail or ""), outcome.detail
    program = steps(outcome)
    assert any("state.delete(" in step for step in program), program
    assert any("upsert" in step for step in program), program


def test_a_connection_error_under_a_transient_fault_fails_no_invariant() -> None:
    """The machine reconnects while a 5xx or a 429 is armed; the seed-style connector answers
    error then, and the platform re-activates the feed once the faults are gone: no
    invariant breaks (CONNECT-TRANSIENT judges that answer, as a warning)."""
    with platform_for(SeedStyleConnection) as platform:
        machine = machine_for(platform)()
        machine.upsert_new(new=make_users(3, seed=1), then_flush=True)
        for arm in (
            lambda: machine.partner_5xx(calls=3, status=503),
            lambda: machine.partner_429(calls=3, retry_after=5.0),
        ):
            arm()
            before = len(platform.trace)
            machine.reconnect()
            answers = [
                e.response_json()
                for e in list(platform.trace)[before:]
                if e.path == "/v1/external_segment_connection"
            ]
            assert {"status": "error"}.items() <= answers[0].items(), "the fault was met"
            assert answers[-1]["status"] == "ok", "re-activated once the faults are gone"
            machine.upsert_new(new=make_users(2, seed=2), then_flush=True)
            machine.clauses_hold()
        machine.teardown()


def test_a_broken_invariant_is_reported_under_its_own_clause() -> None:
    with platform_for(InflatingConnector) as platform:
        record = RunRecord(STATEFUL, platform, notes=StatefulNotes())
        SPEC.script(record, 0)
    evidence = Evidence(runs={STATEFUL: record})
    verdict = get_clause("BATCH-ACCOUNTING").check(evidence)
    assert verdict.outcome == "failed"
    assert "a random feed life broke it" in verdict.message
    assert "minimal failing program" in verdict.message
    assert "--seed 0" in verdict.message
    assert get_clause("CONVERGENCE").check(evidence).outcome == "passed"


@pytest.mark.parametrize(
    ("record_notes", "aborted", "expected"),
    [
        (None, None, "recorded no result"),
        (True, "ConnectorUnavailableError: gone", "stopped early"),
    ],
)
def test_the_check_fails_without_a_usable_run(
    record_notes: bool | None, aborted: str | None, expected: str
) -> None:
    assert "did not execute" in check_stateful_lifecycle(Evidence()).message
    record = RunRecord(STATEFUL, platform_for())
    record.aborted = aborted
    if record_notes is not None:
        record.notes = StatefulNotes(
            StatefulOutcome(
                passed=record_notes, seed=0, examples=1, max_examples=1, steps=1, seconds=0.0
            )
        )
    verdict = check_stateful_lifecycle(Evidence(runs={STATEFUL: record}))
    assert verdict.outcome == "failed"
    assert expected in verdict.message


def test_the_clause_is_registered_for_the_stateful_run() -> None:
    registered = get_clause(CLAUSE_ID)
    assert registered.group == "stateful"
    assert registered.runs == (STATEFUL,)
    assert "membership converges once faults clear" in registered.statement
    assert SPEC.name == STATEFUL
    assert SPEC.settings["batch_flush_max_size"] == 5
