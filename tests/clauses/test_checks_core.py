"""The core runs against the reference connector: every core clause passes on three seeds;
wrapped reference connectors that misreport prove the checks can fail."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from fake_partner import Partner
from harness.clauses.evidence import Evidence, RunRecord
from harness.clauses.notes import InvalidConfigNotes, LifecycleNotes, OversizedNotes
from harness.clauses.registry import Clause, Verdict, all_clauses
from harness.clauses.runs import RUNS, execute_run
from harness.clauses.runs.core import (
    BYTE_LIMIT,
    OVERSIZED_BATCH,
    OVERSIZED_BYTES_USERS,
    PARTNER_OPERATION_LIMIT,
    RUN_SPECS,
)
from harness.drivers import ASGIApp, Message, Receive, Scope, Send
from harness.reference import ReferenceConnector
from harness.sdk import PluginSettings
from harness.targets import Target

SEEDS = (1, 2, 3)
CORE_GROUPS = ("wire", "creation", "updates", "batches", "data_protection", "troubleshoot")
FAULT_CHECKS = ("CONNECT-TRANSIENT", "DYNAMIC-PROPERTIES", "NOT-IMPLEMENTED-OK")
"""Judged by the fault runs (tests/clauses/test_checks_faults.py), though in these groups."""
CORE: list[Clause] = [
    c for c in all_clauses() if c.group in CORE_GROUPS and c.id not in FAULT_CHECKS
]
CLIENT_SECRET = Partner().credentials.client_secret

Rewrite = Callable[[str, bytes, int, dict[str, Any]], tuple[int, dict[str, Any]]]
"""``(path, request body, status, answer) -> (status, answer)`` for JSON answers."""


def _run_all(target: Target, seed: int, names: tuple[str, ...]) -> Evidence:
    evidence = Evidence(seed=seed)
    for name in names:
        evidence.runs[name] = execute_run(RUNS[name], target, seed=seed)
    return evidence


@pytest.fixture(scope="module")
def oversized() -> RunRecord:
    """The oversized run, once: its 10,200 one-email users have the same shape whatever the
    seed (only the addresses differ), and it is the slowest run by far (~5 s)."""
    return execute_run(RUNS["oversized"], Target(), seed=SEEDS[0])


@pytest.fixture(scope="module")
def oversized_bytes() -> RunRecord:
    """The oversized-bytes run, once (its users have the same shape whatever the seed)."""
    return execute_run(RUNS["oversized-bytes"], Target(), seed=SEEDS[0])


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{s}" for s in SEEDS])
def reference(
    request: pytest.FixtureRequest, oversized: RunRecord, oversized_bytes: RunRecord
) -> Evidence:
    """The core runs against the reference connector: lifecycle and invalid-config per seed."""
    evidence = _run_all(Target(), request.param, ("lifecycle", "invalid-config"))
    evidence.runs["oversized"] = oversized
    evidence.runs["oversized-bytes"] = oversized_bytes
    return evidence


def test_core_clauses_are_registered_in_order() -> None:
    ids = [c.id for c in CORE]
    assert len(ids) == 25
    assert ids[0] == "WIRE-SCHEMA"
    assert ids[-1] == "TROUBLESHOOT-AUDIENCE"
    assert all(c.runs and set(c.runs) <= set(RUNS) for c in CORE)
    assert {r.name for r in RUN_SPECS} == {
        "lifecycle",
        "invalid-config",
        "oversized",
        "oversized-bytes",
    }


REFERENCE_NOT_EXERCISED = frozenset({"WIRE-DELAY-HEADER"})
"""The batched reference never puts a delay in a body (the SDK keeps batch delays to the
header), so nothing exercises WIRE-DELAY-HEADER: it is skipped, not passed."""


@pytest.mark.parametrize("clause", CORE, ids=[c.id for c in CORE])
def test_reference_passes(reference: Evidence, clause: Clause) -> None:
    verdict = clause.check(reference)  # a check reads all the evidence it is given
    expected = "skipped" if clause.id in REFERENCE_NOT_EXERCISED else "passed"
    assert verdict.outcome == expected, f"{clause.id}: {verdict.message}"


def test_runs_record_their_evidence(reference: Evidence) -> None:
    lifecycle, invalid = reference["lifecycle"], reference["invalid-config"]
    oversized = reference["oversized"]
    assert [r.aborted for r in (lifecycle, invalid, oversized)] == [None, None, None]
    notes = lifecycle.notes
    assert isinstance(notes, LifecycleNotes)
    assert notes.empty_body_probes is not None
    assert len(notes.empty_body_probes) == 10
    assert notes.connection_probe is not None
    assert notes.connection_probe.partner_status_before == "PROVISIONING"
    assert notes.connection is not None
    assert notes.connection.attempts >= 2
    conflict = notes.conflict
    assert conflict is not None
    assert conflict.creation is not None
    assert conflict.creation.partner_segment_id == conflict.existing_segment_id
    assert notes.transient_not_ready is not None
    assert notes.transient_not_ready.held
    assert notes.troubleshoot is not None
    assert notes.troubleshoot.snapshot is not None
    assert notes.troubleshoot.snapshot["input_count"]
    assert isinstance(invalid.notes, InvalidConfigNotes)
    assert [c.case for c in invalid.notes.cases] == [
        "missing-account",
        "no-identifying",
        "unreadable-config",
    ]
    assert isinstance(oversized.notes, OversizedNotes)
    assert oversized.notes.largest_batch == OVERSIZED_BATCH > PARTNER_OPERATION_LIMIT
    wide = reference["oversized-bytes"]
    assert wide.aborted is None
    assert isinstance(wide.notes, OversizedNotes)
    assert wide.notes.largest_batch == OVERSIZED_BYTES_USERS < PARTNER_OPERATION_LIMIT
    (batch_call,) = wide.trace.exchanges("platform->connector", "/v1/batch_update")
    assert batch_call.request_size > BYTE_LIMIT, "the batch needs splitting by size"
    uploads = wide.trace.exchanges("connector->partner", method="POST")
    assert len([u for u in uploads if u.path.endswith("/members")]) >= 2


# --------------------------------------------------------------------------- checks can fail


class Rewriting:
    """The reference connector behind an ASGI wrapper that rewrites its JSON answers."""

    def __init__(self, settings: PluginSettings, rewrite: Rewrite) -> None:
        self.app: ASGIApp = ReferenceConnector(settings)
        self.rewrite = rewrite

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = b""
        while True:
            message = await receive()
            request += message.get("body", b"")
            if not message.get("more_body"):
                break
        start: Message = {}
        chunks: list[bytes] = []

        async def replay() -> Message:
            return {"type": "http.request", "body": request, "more_body": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, replay, capture)
        status, body = int(start["status"]), b"".join(chunks)
        headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if isinstance(answer, dict):
            status, answer = self.rewrite(scope["path"], request, status, answer)
            body = json.dumps(answer).encode()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _wrapped(rewrite: Rewrite) -> Target:
    def factory(settings: PluginSettings) -> Rewriting:
        return Rewriting(settings, rewrite)

    return Target(connector=factory, label="rewritten reference")


def _verdicts(evidence: Evidence) -> dict[str, Verdict]:
    return {c.id: c.check(evidence) for c in CORE}


def _inflate(path: str, _: bytes, status: int, answer: dict[str, Any]) -> tuple[int, Any]:
    counts = answer.get("sent_items_in_success", 0) + answer.get("sent_items_in_error", 0)
    if path == "/v1/batch_update" and answer.get("status") == "OK" and counts > 0:
        answer["sent_items_in_success"] += 1
    return status, answer


def test_inflated_success_fails_accounting_and_honesty() -> None:
    evidence = _run_all(_wrapped(_inflate), 7, ("lifecycle",))
    verdicts = _verdicts(evidence)
    for clause_id in ("BATCH-ACCOUNTING", "BATCH-HONEST"):
        verdict = verdicts[clause_id]
        assert verdict.outcome == "failed", clause_id
        assert verdict.run == "lifecycle"
        assert verdict.seqs
    assert "expected the sum to be" in verdicts["BATCH-ACCOUNTING"].message
    assert "the partner accepted" in verdicts["BATCH-HONEST"].message
    assert verdicts["CONVERGENCE"].outcome == "passed"
    assert verdicts["BATCH-EMPTY"].outcome == "passed"


def _sloppy(path: str, request: bytes, status: int, answer: dict[str, Any]) -> tuple[int, Any]:
    """Several small lies, each on its own route."""
    if request in (b"", b"{}"):
        return 200, {"status": "ok"}
    if path == "/v1/external_segment_connection":
        return 200, {"status": "ok"}
    if path == "/v1/user_segment_update" and answer.get("status") == "ok":
        answer["next_msg_delay_in_ms"] = 5
        if answer.get("stats"):
            answer["stats"][0]["identifier"] = "somebody-else"
    if path == "/v1/troubleshoot":
        answer["message"] = f"client {CLIENT_SECRET}"
        if answer.get("status") == "not_implemented":
            status = 200
    return status, answer


def test_sloppy_answers_fail_their_clauses() -> None:
    evidence = _run_all(_wrapped(_sloppy), 8, ("lifecycle",))
    verdicts = _verdicts(evidence)
    broken = {
        "WIRE-EMPTY-BODY": "expected a JSON error",
        "CONNECT-NOT-READY": "expected 502",
        "WIRE-DELAY-HEADER": "without the x-mics-next-msg-delay header",
        "UPDATE-STATS": "none of the request user's",
        "SECRET-NO-LEAK": "answered a secret",
        "WIRE-STATUS": "expected 400",
        "TROUBLESHOOT-AUDIENCE": "expected 400 not_implemented",
    }
    for clause_id, words in broken.items():
        verdict = verdicts[clause_id]
        assert verdict.outcome == "failed", f"{clause_id}: {verdict.message}"
        assert words in verdict.message, f"{clause_id}: {verdict.message}"
        assert verdict.seqs, clause_id
    record: RunRecord = evidence["lifecycle"]
    assert CLIENT_SECRET not in json.dumps(record.trace.to_jsonable())
    for clause_id in ("CONVERGENCE", "BATCH-HONEST", "UPDATE-ELIGIBLE", "CREATE-OK"):
        assert verdicts[clause_id].outcome == "passed", verdicts[clause_id].message


def test_missing_evidence_fails_with_the_reason() -> None:
    verdicts = _verdicts(Evidence())
    assert verdicts["CREATE-OK"].outcome == "failed"
    assert "not executed" in verdicts["CREATE-OK"].message
    # premise-based: with no upload anywhere, BATCH-LIMIT is not exercised (never passed)
    assert verdicts["BATCH-LIMIT"].outcome == "skipped"
    assert "not exercised" in verdicts["BATCH-LIMIT"].message
