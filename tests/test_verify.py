"""The verification engine (``harness.verify``) on a small registry of test clauses and runs.

``install_stub_registry`` swaps the clause registry and the run table for a few test
clauses (pass, fail, raise, skip, broken run) over short runs of the reference connector,
so the engine is tested apart from the real clauses; ``test_cli`` and
``test_pytest_plugin`` reuse it.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import pytest

from fake_partner import ScenarioError
from harness.clauses import registry
from harness.clauses.evidence import Evidence, RunRecord, RunSpec
from harness.clauses.notes import RunNotes
from harness.clauses.registry import UnknownClauseError, Verdict
from harness.drivers import ConnectorLoadError, Receive, Scope, Send
from harness.engine import _raise_if_never_answered
from harness.generators import make_users
from harness.platform import Platform
from harness.reference import ReferenceConnector
from harness.sdk.settings import PluginSettings
from harness.targets import Target
from harness.verify import (
    MAX_LEDGER_ENTRIES,
    MAX_TRACE_ENTRIES,
    ConnectorUnreachableError,
    UrlTarget,
    VerifyUsageError,
    current_profile,
    hypothesis_settings,
    make_target,
    reproduce_command,
    verify,
)

SECRETS: list[str] = []
"""The secrets of the last ``life`` run (to prove none reaches a report)."""
STUB_IDS = ("T-PASS", "T-FAIL", "T-RAISES", "T-ROUTE", "T-BATCH", "T-BROKEN-RUN", "T-NO-RUN")


# --------------------------------------------------------------------------- the stub registry


@dataclass
class LifeNotes(RunNotes):
    create_seq: int | None = None
    profile: str | None = None
    seed: int | None = None


def _life(record: RunRecord, seed: int) -> None:
    """Create, connect, upsert a few users, flush; notes the creation seq and the profile."""
    feed = record.platform.new_feed()
    record.feeds["main"] = feed
    created = feed.create()
    notes = record.notes
    assert isinstance(notes, LifeNotes)
    notes.create_seq = created.answers[0].exchange.seq  # type: ignore[union-attr]
    notes.profile = current_profile()
    notes.seed = seed
    credentials = record.partner.credentials
    SECRETS.extend([record.gateway.token, credentials.client_secret, credentials.refresh_token])
    feed.connect()
    feed.upsert(make_users(6, seed=seed))
    feed.flush()


def _probe(record: RunRecord, seed: int) -> None:
    """Create a feed and troubleshoot it once."""
    feed = record.platform.new_feed()
    record.feeds["probe"] = feed
    feed.create()
    feed.troubleshoot()


def _broken(record: RunRecord, seed: int) -> None:
    raise RuntimeError("the run script has a bug")


STUB_RUNS = (
    RunSpec("life", _life, description="a short feed life", notes=LifeNotes),
    RunSpec("probe", _probe, description="one troubleshoot"),
    RunSpec("broken", _broken, description="a script that raises"),
)


def _register_stub_clauses() -> None:
    clause = registry.clause

    @clause("T-PASS", "the creation answers 200", group="wire", runs=("life",))
    def _pass(evidence: Evidence) -> Verdict:
        record = evidence["life"]
        created = record.connector_exchanges("/v1/external_segment_creation")
        if created and created[0].status == 200:
            return Verdict.passed(run="life")
        return Verdict.failed("creation did not answer 200", run="life")

    @clause("T-FAIL", "always fails, naming the creation", group="wire", runs=("life",))
    def _fail(evidence: Evidence) -> Verdict:
        record = evidence["life"]
        assert isinstance(record.notes, LifeNotes)
        seqs = [record.notes.create_seq or 0]
        return Verdict.failed("made to fail", seqs=seqs, run="life")

    @clause("T-RAISES", "a check with a bug", group="wire", runs=("life",))
    def _raises(evidence: Evidence) -> Verdict:
        missing: dict[str, str] = {}
        return Verdict.passed(missing["no such note"])

    @clause(
        "T-ROUTE", "troubleshoot answers", group="wire", routes=("troubleshoot",), runs=("probe",)
    )
    def _route(evidence: Evidence) -> Verdict:
        return Verdict.passed("troubleshoot answered")

    @clause("T-BATCH", "batches answer", group="wire", routes=("batch_update",), runs=("life",))
    def _batch(evidence: Evidence) -> Verdict:
        return Verdict.passed("batch_update answered")

    @clause("T-BROKEN-RUN", "needs a broken run", group="wire", runs=("broken",))
    def _broken_run(evidence: Evidence) -> Verdict:
        return Verdict.passed()

    @clause("T-NO-RUN", "needs no run", group="wire")
    def _no_run(evidence: Evidence) -> Verdict:
        return Verdict.passed(f"{len(evidence.runs)} runs, profile {evidence.profile}")


def install_stub_registry(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace the clause registry and run table by the stubs; returns a list of run names
    executed (appended as each run starts)."""
    runs = importlib.import_module("harness.clauses.runs")
    executed: list[str] = []

    def counted(spec: RunSpec) -> RunSpec:
        def script(record: RunRecord, seed: int) -> None:
            executed.append(spec.name)
            spec.script(record, seed)

        return dataclasses.replace(spec, script=script)

    monkeypatch.setattr(runs, "RUNS", {spec.name: counted(spec) for spec in STUB_RUNS})
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "_load_builtin_checks", lambda: None)
    _register_stub_clauses()
    return executed


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return install_stub_registry(monkeypatch)


class Without:
    """The reference connector, except ``path`` answers ``status`` ``body`` (a missing route)."""

    path = "/v1/troubleshoot"
    status = 404
    body = b'{"error": "Not Found"}'

    def __init__(self, settings: PluginSettings) -> None:
        self.inner = ReferenceConnector(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path:
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": self.status, "headers": headers})
            await send({"type": "http.response.body", "body": self.body})
            return
        await self.inner(scope, receive, send)


class NoTroubleshoot(Without):
    """``/v1/troubleshoot`` (a mandatory route) is absent: 404."""


class NotImplementedTroubleshoot(Without):
    """``/v1/troubleshoot`` answers 400 ``not_implemented``."""

    status = 400
    body = b'{"status": "not_implemented"}'


class NoBatchUpdate(Without):
    """``/v1/batch_update`` (an optional route) is absent: 404."""

    path = "/v1/batch_update"


# --------------------------------------------------------------------------- the engine


def _outcomes(report: Any) -> dict[str, str]:
    return {r.id: r.outcome for r in report.results}


def test_each_clause_gets_its_outcome_and_nothing_crashes(stub: list[str]) -> None:
    report = verify()
    assert _outcomes(report) == {
        "T-PASS": "passed",
        "T-FAIL": "failed",
        "T-RAISES": "failed",
        "T-ROUTE": "passed",
        "T-BATCH": "passed",
        "T-BROKEN-RUN": "failed",
        "T-NO-RUN": "passed",
    }
    by_id = {r.id: r for r in report.results}
    assert "raised KeyError" in by_id["T-RAISES"].message
    assert "run broken broke" in by_id["T-BROKEN-RUN"].message
    assert "the run script has a bug" in by_id["T-BROKEN-RUN"].message
    assert report.connector == "reference connector"
    assert (report.seed, report.profile) == (0, "fast")
    assert report.failed
    assert stub == ["life", "probe", "broken"], "each run once, in definition order"


def test_a_failure_carries_its_trace_excerpt_accounting_and_ledger(stub: list[str]) -> None:
    report = verify(clauses=["T-FAIL"], seed=3)
    (result,) = report.results
    assert result.run == "life"
    assert result.reproduce == "feed-harness verify --seed 3 --clauses T-FAIL"
    assert 1 < len(result.trace) <= MAX_TRACE_ENTRIES
    first = result.trace[0]
    assert first["path"] == "/v1/external_segment_creation"
    assert first["leg"] == "platform->connector"
    assert first["status"] == 200
    assert first["summary"].startswith("ok")
    for key in ("seq", "leg", "method", "path", "status", "failure", "summary"):
        assert all(key in entry for entry in result.trace)
    legs = {entry["leg"] for entry in result.trace[1:]}
    assert legs <= {"connector->gateway", "connector->partner"}
    assert "connector->partner" in legs, "the creation's partner calls are nested in it"
    assert all(entry["seq"] > first["seq"] for entry in result.trace[1:])
    assert result.accounting is not None
    assert result.accounting["feed"] == "main"
    assert result.accounting["users_sent"] == 6
    assert 0 < len(result.ledger) <= MAX_LEDGER_ENTRIES
    assert [e["route"] for e in result.ledger] == [
        "POST /oauth/token",
        "POST /v1/accounts/{account_id}/segments",
    ], "exactly the partner calls of the creation"
    assert "operations" not in result.ledger[0]


def test_the_failure_details_never_carry_a_secret(stub: list[str]) -> None:
    SECRETS.clear()
    report = verify(clauses=["T-FAIL"])
    (result,) = report.results
    text = json.dumps([result.trace, result.ledger, result.accounting])
    assert len(SECRETS) == 3
    for secret in SECRETS:
        assert secret not in text


def test_every_selection_runs_every_run_and_each_check_reads_them_all(stub: list[str]) -> None:
    """A clause judges all the evidence: selecting it alone executes the same runs as a full
    verification (so the printed replay command gives the same verdict)."""
    messages: list[str] = []
    report = verify(clauses=["T-P*", "t-no-run"], progress=messages.append)
    assert [r.id for r in report.results] == ["T-PASS", "T-NO-RUN"]
    assert stub == ["life", "probe", "broken"]
    assert messages == [
        "run 1/3: life",
        "run 2/3: probe",
        "run 3/3: broken",
        "checking 2 clause(s)",
    ]
    assert report.results[1].message == "2 runs, profile fast", "the broken run left nothing"
    assert not report.failed


def test_the_profile_and_seed_reach_the_runs_and_the_evidence(stub: list[str]) -> None:
    report = verify(clauses=["T-NO-RUN"], profile="thorough", seed=9)
    assert report.results[0].message == "2 runs, profile thorough"
    assert report.profile == "thorough"
    assert report.results[0].reproduce.endswith("--seed 9 --clauses T-NO-RUN --profile thorough")
    assert current_profile() == "fast", "the profile is reset after the verification"


def test_hypothesis_settings_per_profile() -> None:
    fast, ci, thorough = (hypothesis_settings(p) for p in ("fast", "ci", "thorough"))
    assert fast.max_examples == 20
    assert (ci.max_examples, ci.derandomize) == (50, True)
    assert thorough.max_examples == 500
    assert fast.deadline is None
    assert isinstance(hypothesis_settings(), hypothesis.settings)
    with pytest.raises(VerifyUsageError, match=r"--profile 'slow'.*fast, ci, thorough"):
        hypothesis_settings("slow")


@pytest.mark.parametrize(
    ("connector", "clause", "route"),
    [
        (NotImplementedTroubleshoot, "T-ROUTE", "troubleshoot"),
        (NoBatchUpdate, "T-BATCH", "batch_update"),
    ],
)
def test_a_route_the_connector_lacks_skips_its_clauses(
    stub: list[str], connector: type, clause: str, route: str
) -> None:
    report = verify(make_target(connector), clauses=[clause, "T-PASS"])
    assert _outcomes(report) == {"T-PASS": "passed", clause: "skipped"}
    message = next(r.message for r in report.results if r.id == clause)
    assert f"not implemented by the connector: {route}" in message
    assert f"/v1/{route} answered" in message
    assert _outcomes(verify(clauses=[clause])) == {clause: "passed"}


def test_a_404_on_a_mandatory_route_is_not_a_skip(stub: list[str]) -> None:
    report = verify(make_target(NoTroubleshoot), clauses=["T-ROUTE"])
    assert _outcomes(report) == {"T-ROUTE": "passed"}, "the check judges it, not the engine"


def test_bad_requests_raise_before_any_run(stub: list[str], tmp_path: Path) -> None:
    with pytest.raises(UnknownClauseError, match=r"'NOPE-\*' matches no clause.*T-PASS"):
        verify(clauses=["NOPE-*"])
    with pytest.raises(VerifyUsageError, match="--profile"):
        verify(profile="slow")
    bad = tmp_path / "bad.toml"
    bad.write_text("[limits]\nmax_operations_per_requestt = 3\n")
    with pytest.raises(ScenarioError, match="max_operations_per_requestt"):
        verify(scenario=bad)
    assert stub == []


def test_a_connector_that_cannot_load_is_raised(stub: list[str]) -> None:
    with pytest.raises(ConnectorLoadError, match="no module named 'no_such_module'"):
        verify(make_target("no_such_module:Connector"), clauses=["T-PASS"])


def test_a_connector_that_never_answers_is_unreachable() -> None:
    record = RunRecord("life", Platform())
    trace = record.trace
    for _ in range(2):
        trace.begin("platform->connector", "POST", "http://c/v1/init").fail("connection", "refused")
    evidence = Evidence(runs={"life": record})
    with pytest.raises(ConnectorUnreachableError, match="never answered: 2 call"):
        _raise_if_never_answered(evidence, Target())
    trace.begin("platform->connector", "GET", "http://c/v1/status").finish(200, (), b"{}")
    _raise_if_never_answered(evidence, Target())


# --------------------------------------------------------------------------- targets


def test_targets_from_options() -> None:
    assert make_target() == Target()
    spec = make_target("pkg.mod:Connector")
    assert (spec.connector, spec.cli_args) == (
        "pkg.mod:Connector",
        ("--connector", "pkg.mod:Connector"),
    )
    cmd = make_target(cmd="node dist/index.js")
    assert cmd.platform_kwargs() == {"cmd": "node dist/index.js"}
    assert cmd.label == "--cmd 'node dist/index.js'"
    assert make_target(NoTroubleshoot).label == "NoTroubleshoot (in-process)"


def test_url_targets_need_the_gateway_port_and_token() -> None:
    env = {"PLUGIN_WORKER_ID": "w-2", "PLUGIN_AUTHENTICATION_TOKEN": "tok-123"}
    target = make_target(url="http://127.0.0.1:9", gateway_port=8123, env=env)
    assert isinstance(target, UrlTarget)
    assert target.platform_kwargs() == {
        "url": "http://127.0.0.1:9",
        "gateway_port": 8123,
        "worker_id": "w-2",
        "authentication_token": "tok-123",
    }
    assert "tok-123" not in repr(target)
    assert target.cli_args == ("--url", "http://127.0.0.1:9", "--gateway-port", "8123")
    from_env = make_target(url="http://127.0.0.1:9", env={**env, "GATEWAY_PORT": "8124"})
    assert isinstance(from_env, UrlTarget)
    assert from_env.gateway_port == 8124
    with pytest.raises(VerifyUsageError, match="--url needs --gateway-port"):
        make_target(url="http://127.0.0.1:9", env=env)
    with pytest.raises(VerifyUsageError, match="PLUGIN_AUTHENTICATION_TOKEN"):
        make_target(url="http://127.0.0.1:9", gateway_port=8123, env={})
    with pytest.raises(VerifyUsageError, match="not an http"):
        make_target(url="127.0.0.1:9", gateway_port=8123, env=env)
    with pytest.raises(VerifyUsageError, match="--gateway-port goes with --url"):
        make_target(cmd="x", gateway_port=8123)
    with pytest.raises(VerifyUsageError, match="--connector and --cmd"):
        make_target("a:b", cmd="x")


def test_reproduce_commands_quote_what_they_must() -> None:
    target = make_target(cmd="node dist/index.js")
    command = reproduce_command(
        target, "BATCH-LIMIT", seed=4, scenario="my scenario.toml", profile="ci"
    )
    assert command == (
        "feed-harness verify --cmd 'node dist/index.js' --seed 4 --clauses BATCH-LIMIT "
        "--scenario 'my scenario.toml' --profile ci"
    )
