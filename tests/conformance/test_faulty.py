"""Every clause of ``clauses.md`` is proven: a faulty connector breaking it is reported
``failed`` under that id **and only** the clauses its docstring lists (``breaks: ID`` and
``also breaks: ...``), and the reference connector passes every clause.

A proof is a full verification (every run, every clause: a clause judges all the
evidence), so the proofs are marked ``faulty`` and run as a step of their own in
``.ci/run`` (``pytest -m faulty``), outside the README's quick test command. The two
faults that hang get the ``lifecycle`` run with a 1 s call timeout (the checks read the
run's own setting).
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from harness import catalogue
from harness.clauses import runs as run_module
from harness.clauses.registry import CLAUSE_ORDER, all_clauses, select_clauses
from harness.cli import main
from harness.reference import (
    ClassicReferenceConnector,
    FileDeliveryReferenceConnector,
    LinkedInReferenceConnector,
    MetaReferenceConnector,
    ReferenceConnector,
)
from harness.report import ClauseResult
from harness.targets import Target
from harness.verify import verify
from tests.conformance import faulty

PROOFS: tuple[tuple[str, type[object]], ...] = (
    ("WIRE-SCHEMA", faulty.WrongSchemaAnswer),
    ("WIRE-STATUS", faulty.RetryAs500),
    ("WIRE-DELAY-HEADER", faulty.DropsDelayHeader),
    ("WIRE-DELAY-HEADER", faulty.DelayHeaderMismatch),
    ("WIRE-EMPTY-BODY", faulty.CrashesOnEmptyBody),
    ("WIRE-EMPTY-BODY", faulty.HangsOnEmptyBody),
    ("WIRE-LATENCY", faulty.SlowFirstBatch),
    ("CREATE-OK", faulty.SpareSegment),
    ("CREATE-OK", faulty.ErrorOnValidConfig),
    ("CREATE-IDEMPOTENT", faulty.NewSegmentOnRetry),
    ("CREATE-PERSISTS-ID", faulty.ForgetsSegmentId),
    ("CREATE-INVALID-CONFIG", faulty.OkDespiteInvalidConfig),
    ("CREATE-INVALID-CONFIG", faulty.CreatesDespiteInvalidConfig),
    ("CONNECT-NOT-READY", faulty.ConnectsBeforeReady),
    ("CONNECT-NOT-READY", faulty.ErrorWhenNotReady),
    ("CONNECT-READY", faulty.ReadyOnePollLate),
    ("CONNECT-READY", faulty.NeverReady),
    ("UPDATE-ELIGIBLE", faulty.DropsEligibleIdentifier),
    ("UPDATE-ELIGIBLE", faulty.ErrorWithoutEligibleIdentifier),
    ("UPDATE-GROUPING", faulty.NoGroupingKey),
    ("UPDATE-STATS", faulty.ForeignStats),
    ("BATCH-ACCOUNTING", faulty.CountsDoNotAddUp),
    ("BATCH-HONEST", faulty.SkipsAbsentRemovals),
    ("BATCH-HONEST", faulty.LosesItemsSilently),
    ("BATCH-EMPTY", faulty.ErrorOnEmptyBatch),
    ("BATCH-LIMIT", faulty.NoSplitting),
    ("BATCH-LIMIT", faulty.IgnoresByteLimit),
    ("CONVERGENCE", faulty.ObjectsOnlyBatchContent),
    ("CONVERGENCE", faulty.RemovesAsAdds),
    ("RETRY-NO-DUPLICATE-SUCCESS", faulty.DuplicatesItems),
    ("DELETE-ABSENT", faulty.ErrorOnAbsentDelete),
    ("TOKEN-REFRESH", faulty.NeverRefreshes),
    ("TOKEN-REFRESH", faulty.RefreshesEveryCall),
    ("TOKEN-INVALID-GRANT", faulty.RetriesRefusedGrant),
    ("RATE-LIMIT", faulty.IgnoresRetryAfter),
    ("TRANSIENT-5XX", faulty.ErrorOn5xx),
    ("PARTIAL-FAILURE", faulty.PartialFailureAllError),
    ("PARTIAL-FAILURE", faulty.InventsSuccess),
    ("PII-HASHED", faulty.SendsRawEmail),
    ("SECRET-NO-LEAK", faulty.LeaksRefreshToken),
    ("SECRET-NO-LEAK", faulty.LogsAccessToken),
    ("ACCOUNT-ISOLATION", faulty.TouchesForeignAccount),
    ("TROUBLESHOOT-AUDIENCE", faulty.MadeUpAudience),
    ("AUTH-STATUS", faulty.NoLoginUrl),
    ("AUTH-STATE-TAMPER", faulty.AcceptsForgedState),
    ("AUTH-ROUNDTRIP", faulty.LogoutDoesNothing),
    ("DYNAMIC-PROPERTIES", faulty.DuplicateEnumValues),
    ("NOT-IMPLEMENTED-OK", faulty.OptionalRouteAnswers500),
    ("STATEFUL-LIFECYCLE", faulty.CountsDoNotAddUp),
    ("CONNECT-TRANSIENT", faulty.ConnectErrorOnTransient),
    ("RATE-LIMIT", faulty.RetriesConnectionAtOnce),
    ("PARTIAL-FAILURE", faulty.MiscountsSplitBatches),
    ("AUTH-STATE-TAMPER", faulty.AcceptsAlteredState),
    ("TOKEN-REFRESH", faulty.RefreshesEveryCallAfter401),
)
"""(clause id, the faulty connector that breaks it)."""

SCENARIO_PROOFS = frozenset({faulty.IgnoresConfiguredLimit})
"""Faults only a user's scenario exposes (``test_scenario_judged.py`` proves them)."""

HANGING = frozenset({faulty.HangsOnEmptyBody, faulty.SlowFirstBatch})
"""Faults that wait past the call timeout: verified with a 1 s timeout."""
SHORT_CALL_TIMEOUT = 1.0
REFERENCE_SEEDS = (7,)
"""A full ``verify`` per seed; ``tests/clauses`` already runs seeds 0 to 2 run by run."""


_COUNT = re.compile(r"\A\d+ ")


def example_starts(message: str, example: str) -> bool:
    """Whether a catalogue example is the start of ``message``. The leading count of
    findings is not compared: the random feed lives (the stateful run) shrink for a bounded
    real time, so how many findings they add varies between runs of the same seed."""
    prefix = _COUNT.sub("", example.removesuffix("…").rstrip("; "))
    return _COUNT.sub("", message).startswith(prefix)


def target_of(fault: type[object]) -> Target:
    """The faulty connector as ``--connector tests.conformance.faulty:<Name>`` names it."""
    spec = f"{faulty.__name__}:{fault.__name__}"
    return Target(connector=fault, label=spec, cli_args=("--connector", spec))


def result_of(clause_id: str, results: list[ClauseResult]) -> ClauseResult:
    [result] = [r for r in results if r.id == clause_id]
    return result


@pytest.fixture
def short_call_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``lifecycle`` run with a 1 s per-call timeout (real seconds)."""
    spec = run_module.RUNS["lifecycle"]
    settings = {**spec.settings, "call_timeout": SHORT_CALL_TIMEOUT}
    monkeypatch.setitem(run_module.RUNS, spec.name, dataclasses.replace(spec, settings=settings))


def test_every_clause_has_a_proof_and_every_fault_is_used() -> None:
    proven = {clause_id for clause_id, _ in PROOFS}
    assert set(CLAUSE_ORDER) <= proven
    assert proven <= {c.id for c in all_clauses()}
    used = {fault for _, fault in PROOFS} | SCENARIO_PROOFS
    assert used == set(faulty.ALL_FAULTS)
    for clause_id, fault in PROOFS:
        assert clause_id in (fault.__doc__ or ""), f"{fault.__name__} does not name {clause_id}"


_WORD = re.compile(r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*(?:-\*)?")


def listed_clauses(fault: type[object]) -> set[str]:
    """The clauses a fault's docstring says it breaks: the id after ``breaks:`` and every
    id (or pattern such as ``BATCH-*``) in its ``also breaks:`` paragraph."""
    doc = fault.__doc__ or ""
    head = re.search(r"breaks:\s*([A-Z][A-Z0-9-]+)", doc)
    listed = {head.group(1)} if head else set()
    also = re.search(r"also breaks:(.*?)(?:\n\s*\n|\Z)", doc, re.S)
    if also:
        for word in _WORD.findall(also.group(1)):
            if word.endswith("*"):
                listed |= {c.id for c in select_clauses([word])}
            else:
                listed |= {c.id for c in all_clauses() if c.id == word}
    return listed


def test_listed_clauses_reads_breaks_and_also_breaks() -> None:
    assert listed_clauses(faulty.NoSplitting) == {"BATCH-LIMIT"}
    assert listed_clauses(faulty.WrongSchemaAnswer) == {"WIRE-SCHEMA"}
    assert listed_clauses(faulty.ForgetsSegmentId) >= {"CREATE-PERSISTS-ID", "CONVERGENCE"}


PROVEN = tuple(dict.fromkeys(fault for _, fault in PROOFS))
"""Each faulty connector once (some prove two clauses)."""


@pytest.mark.faulty
@pytest.mark.parametrize("fault", PROVEN, ids=[fault.__name__ for fault in PROVEN])
def test_the_fault_fails_its_clauses_and_only_them(
    fault: type[object], request: pytest.FixtureRequest
) -> None:
    if fault in HANGING:
        request.getfixturevalue("short_call_timeout")
    report = verify(target_of(fault))
    # a warning clause that a fault breaks is reported warned (CONNECT-TRANSIENT)
    failed = {r.id for r in report.results if r.outcome in ("failed", "warned")}
    own = {clause_id for clause_id, proven in PROOFS if proven is fault}
    listed = listed_clauses(fault)
    messages = {r.id: r.message[:300] for r in report.results if r.id in failed}
    assert own <= failed, f"{fault.__name__} does not fail {own - failed}: {messages}"
    assert failed <= listed, (
        f"{fault.__name__} fails {sorted(failed - listed)} that its docstring does not list: "
        f"{ {k: messages[k] for k in failed - listed} }"
    )
    for clause_id in own:
        result = result_of(clause_id, report.results)
        assert f"--connector tests.conformance.faulty:{fault.__name__}" in result.reproduce
        example = catalogue.EXAMPLES.get(clause_id)
        if example is not None and example.fault == fault.__name__:
            # docs/clauses.md shows it as the start of this very message: keep it true
            assert example_starts(result.message, example.message), (
                f"harness/catalogue.py's example of {clause_id} is stale: {result.message[:400]}"
            )


@pytest.mark.parametrize("seed", REFERENCE_SEEDS)
def test_the_reference_connector_passes_every_clause(seed: int) -> None:
    report = verify(seed=seed)
    assert set(CLAUSE_ORDER) <= {r.id for r in report.results}
    not_passed = {r.id: r.outcome for r in report.results if r.outcome != "passed"}
    # the batched reference never puts a delay in a body: nothing exercises that clause
    assert not_passed == {"WIRE-DELAY-HEADER": "skipped"}


DIALECT_SKIPS = {
    # LinkedIn's segment read shows PROCESSING before and after provisioning: no connection
    # can observe a provisioning segment
    "linkedin": {"WIRE-DELAY-HEADER", "CONNECT-NOT-READY"},
    # Meta has no refresh grant (a token that expires is dead for good: TOKEN-INVALID-GRANT
    # judges that instead) and no provisioning
    "meta": {"WIRE-DELAY-HEADER", "CONNECT-NOT-READY", "TOKEN-REFRESH"},
}
DIALECT_REFERENCES = {"linkedin": LinkedInReferenceConnector, "meta": MetaReferenceConnector}


@pytest.mark.slow
@pytest.mark.parametrize("partner", sorted(DIALECT_REFERENCES))
def test_the_dialect_references_pass_every_clause(partner: str) -> None:
    """Each dialect's reference passes every clause against its dialect; the clauses it
    cannot meet there are skipped, saying why (and none else)."""
    connector = DIALECT_REFERENCES[partner]
    report = verify(Target(connector=connector, label=connector.__name__), partner=partner)
    assert set(CLAUSE_ORDER) <= {r.id for r in report.results}
    not_passed = {r.id: r.outcome for r in report.results if r.outcome != "passed"}
    assert not_passed == dict.fromkeys(DIALECT_SKIPS[partner], "skipped"), {
        r.id: r.message[:300] for r in report.results if r.outcome != "passed"
    }


SEED_SWEEP = tuple(range(50))
REFERENCES: tuple[tuple[type[object], str | None], ...] = (
    (ReferenceConnector, None),
    (ClassicReferenceConnector, None),
    (FileDeliveryReferenceConnector, None),
    (LinkedInReferenceConnector, "linkedin"),
    (MetaReferenceConnector, "meta"),
)


@pytest.mark.seeds
@pytest.mark.parametrize(
    ("connector", "partner"), REFERENCES, ids=[c.__name__ for c, _ in REFERENCES]
)
@pytest.mark.parametrize("seed", SEED_SWEEP)
def test_the_reference_connectors_pass_on_every_seed(
    connector: type[object], partner: str | None, seed: int
) -> None:
    """The sweep of the judging-engine and dialect issues (opt-in: ``pytest -m seeds``, 250
    verifications): no reference fails or warns a clause on seeds 0..49, the dialect ones
    against their own dialect."""
    target = Target(connector=connector, label=connector.__name__)
    report = verify(target, seed=seed, partner=partner)
    bad = {r.id: r.message[:200] for r in report.results if r.outcome in ("failed", "warned")}
    assert not bad, f"{connector.__name__} seed {seed}: {bad}"


def test_cli_verify_names_the_broken_clause(capsys: pytest.CaptureFixture[str]) -> None:
    spec = f"{faulty.__name__}:{faulty.ErrorOnEmptyBatch.__name__}"
    clauses = "BATCH-EMPTY,BATCH-ACCOUNTING,BATCH-HONEST"
    code = main(["verify", "--connector", spec, "--clauses", clauses])
    out = capsys.readouterr().out
    assert code == 1, out
    outcomes = dict(line.split()[:2] for line in out.splitlines() if line.startswith("BATCH-"))
    assert outcomes == {
        "BATCH-EMPTY": "failed",
        "BATCH-ACCOUNTING": "passed",
        "BATCH-HONEST": "passed",
    }
    assert f"feed-harness verify --connector {spec} --seed 0 --clauses BATCH-EMPTY" in out
