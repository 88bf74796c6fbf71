"""The verification engine: run the conformance runs the selected clauses need, judge each clause.

``verify(target)`` is what ``feed-harness verify`` and the pytest plugin call. It never
crashes on a bad connector or a broken check: every problem becomes a clause result,
except a connector that cannot be started or reached at all (``ConnectorStartError``,
``ConnectorLoadError``, :class:`ConnectorUnreachableError`).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.clauses.evidence import Evidence, RunRecord, not_implemented
from harness.clauses.registry import Clause, Verdict, select_clauses
from harness.errors import ConnectorUnreachableError, VerifyUsageError
from harness.excerpts import feed_accounting, ledger_window, run_seconds, trace_excerpt
from harness.profiles import DEFAULT_PROFILE, check_profile, use_profile
from harness.report import ClauseResult, Report
from harness.targets import Target, UrlTarget

if TYPE_CHECKING:
    from fake_partner import Scenario
    from harness.trace import Exchange

__all__ = ["Progress", "not_implemented_routes", "reproduce_command", "verify"]

Progress = Callable[[str], None]


def verify(
    target: Target | None = None,
    *,
    clauses: Sequence[str] | None = None,
    seed: int = 0,
    scenario: str | Path | None = None,
    profile: str = DEFAULT_PROFILE,
    progress: Progress | None = None,
) -> Report:
    """Verify ``target`` (default: the reference connector in-process) against the clauses.

    Raises ``UnknownClauseError`` / ``ScenarioError`` / :class:`VerifyUsageError` for a
    bad request, and ``ConnectorStartError`` / ``ConnectorLoadError`` /
    :class:`ConnectorUnreachableError` when the connector cannot be started or reached.
    """
    from fake_partner import load_scenario
    from harness.clauses import runs as run_module
    from harness.drivers import ConnectorLoadError, ConnectorStartError
    from harness.gateway import ServeError

    target = target if target is not None else Target()
    check_profile(profile)
    loaded = load_scenario(scenario) if scenario is not None else None
    selected = select_clauses(clauses)
    say = progress if progress is not None else _silent
    started = time.perf_counter()

    # every run, whatever the selection: a clause judges all the evidence where its
    # premise occurs, so its verdict alone (--clauses ID) is the one of a full verification
    specs = list(run_module.RUNS.values())
    evidence = Evidence(seed=seed, profile=profile)
    run_errors: dict[str, str] = {}
    with use_profile(profile):
        for index, spec in enumerate(specs, 1):
            say(f"run {index}/{len(specs)}: {spec.name}")
            try:
                record = run_module.execute_run(
                    spec,
                    target,
                    seed=seed,
                    scenario=loaded,
                    scenario_label=str(scenario) if scenario is not None else None,
                )
            except (ConnectorStartError, ConnectorLoadError):
                raise
            except ServeError as exc:
                raise VerifyUsageError(_serve_problem(target, exc)) from exc
            except Exception as exc:  # a broken run script must not end the verification
                run_errors[spec.name] = f"{type(exc).__name__}: {exc}"
                continue
            evidence.runs[spec.name] = record
        _raise_if_never_answered(evidence, target)
        say(f"checking {len(selected)} clause(s)")
        results = [
            _judge(clause, evidence, run_errors, target, seed, scenario, profile)
            for clause in selected
        ]
    return Report(
        connector=target.label,
        seed=seed,
        profile=profile,
        results=results,
        seconds=time.perf_counter() - started,
        scenario=str(scenario) if scenario is not None else None,
        runs=[
            {
                "name": spec.name,
                "scenario": run_module.played_scenario(spec, loaded, str(scenario)),
                "aborted": evidence.runs[spec.name].aborted
                if spec.name in evidence.runs
                else run_errors.get(spec.name),
            }
            for spec in specs
        ],
        warnings=unobserved_faults(evidence, loaded) if loaded is not None else [],
    )


_OBSERVED_ERRORS = {
    429: "RATE-LIMIT",
    401: "TOKEN-REFRESH",
    404: "CONNECT-NOT-READY",
}
"""Injected error statuses and the clause that judges what the connector does with them
(5xx: TRANSIENT-5XX; 400 invalid_grant on /oauth/token: TOKEN-INVALID-GRANT)."""
_OBSERVED_KINDS = {
    "drop": "TRANSIENT-5XX",
    "apply_then_fail": "TRANSIENT-5XX",
    "expire_token": "TOKEN-REFRESH",
    "revoke_refresh_token": "TOKEN-INVALID-GRANT",
    "hold_provisioning": "CONNECT-NOT-READY",
}


def unobserved_faults(evidence: Evidence, scenario: Scenario) -> list[str]:
    """The user's fault rules no clause could judge: never fired in any run that played the
    scenario, or whose effect no clause states a behaviour for (a warning, never silent)."""
    played = [record for record in evidence if record.user_scenario]
    fired: dict[int, int] = {}
    for record in played:
        counters = record.partner.faults.counters()
        for index in range(len(scenario.faults)):
            if index < len(counters):
                fired[index] = fired.get(index, 0) + counters[index]["fired"]
    warnings: list[str] = []
    for index, rule in enumerate(scenario.faults):
        name = rule.name or f"#{index + 1}"
        if not played:
            break
        if not fired.get(index):
            warnings.append(
                f"fault rule {name} never fired in the {len(played)} run(s) that played the "
                "scenario: no clause saw it (check its method, path, segment and times)"
            )
            continue
        effect = rule.effect
        kind = effect.kind
        status = getattr(effect, "status", None)
        if kind == "error" and isinstance(status, int):
            if (
                status >= 500
                or status in _OBSERVED_ERRORS
                or (status == 400 and getattr(effect, "code", None) == "invalid_grant")
            ):
                continue
            warnings.append(
                f"fault rule {name} fired (HTTP {status}) but no clause states what a connector "
                "does with that answer: its effect is shown in the trace, not judged"
            )
        elif kind not in _OBSERVED_KINDS:
            warnings.append(
                f"fault rule {name} fired ({kind}) but no clause judges that effect: it is "
                "shown in the trace, not judged"
            )
    return warnings


def _silent(_: str) -> None:
    return None


def _serve_problem(target: Target, exc: Exception) -> str:
    if isinstance(target, UrlTarget):
        return (
            f"--gateway-port {target.gateway_port}: {exc}; another process holds that port "
            "(is `feed-harness serve` still running? stop it: verify serves its own gateway there)"
        )
    return f"the harness could not serve its gateway or partner on loopback: {exc}"


def _raise_if_never_answered(evidence: Evidence, target: Target) -> None:
    """Every call to the connector failed without an HTTP answer: it cannot be reached."""
    exchanges = [ex for _, ex in evidence.all_connector_exchanges()]
    if not exchanges or any(ex.status is not None for ex in exchanges):
        return
    if all(ex.failure in ("connection", "timeout") for ex in exchanges):
        last = exchanges[-1]
        raise ConnectorUnreachableError(
            f"the connector ({target.label}) never answered: {len(exchanges)} call(s), each a "
            f"{last.failure} (last: {last.method} {last.path}: {last.detail}); check that it "
            "is running and listening"
        )


def _judge(
    clause: Clause,
    evidence: Evidence,
    run_errors: Mapping[str, str],
    target: Target,
    seed: int,
    scenario: str | Path | None,
    profile: str,
) -> ClauseResult:
    started = time.perf_counter()
    verdict = _verdict(clause, evidence, run_errors)
    warned = verdict.outcome == "failed" and clause.severity == "warning"
    result = ClauseResult(
        id=clause.id,
        statement=clause.statement,
        outcome="warned" if warned else verdict.outcome,
        message=verdict.message,
        reproduce=reproduce_command(
            target, clause.id, seed=seed, scenario=scenario, profile=profile
        ),
        group=clause.group,
        severity=clause.severity,
        run=verdict.run,
    )
    if verdict.outcome in ("failed", "warned"):
        record = _record_of(verdict, clause, evidence)
        if record is not None:
            result.run = record.name
            excerpt = trace_excerpt(record, verdict.seqs)
            result.trace = [entry for entry, _ in excerpt]
            result.accounting = feed_accounting(record)
            result.ledger = ledger_window(record, [ex for _, ex in excerpt])
    # a case's time: judging it plus the runs it read (shared runs count for each clause)
    ran = sum(run_seconds(evidence.runs[n]) for n in clause.runs if n in evidence.runs)
    result.seconds = time.perf_counter() - started + ran
    return result


def _verdict(clause: Clause, evidence: Evidence, run_errors: Mapping[str, str]) -> Verdict:
    """The clause's verdict: a missing or broken run fails it, a missing route skips it."""
    from harness.clauses import runs as run_module

    undefined = [name for name in clause.runs if name not in run_module.RUNS]
    if undefined:
        return Verdict.failed(
            f"{clause.id} needs conformance run(s) {', '.join(undefined)} that do not exist "
            f"(known: {', '.join(run_module.RUNS)}); this is a harness bug"
        )
    for name in clause.runs:
        if name in run_errors:
            return Verdict.failed(
                f"run {name} broke before the check could read it: {run_errors[name]}",
                run=name,
            )
    missing = not_implemented_routes(clause, evidence)
    if missing:
        shown = "; ".join(f"{name} ({why})" for name, why in missing.items())
        return Verdict.skipped(f"not implemented by the connector: {shown}")
    try:
        verdict = clause.check(evidence)
    except Exception as exc:  # a check that raises is a failed clause, never a crash
        return Verdict.failed(f"the check of {clause.id} raised {type(exc).__name__}: {exc}")
    if not isinstance(verdict, Verdict):
        return Verdict.failed(
            f"the check of {clause.id} returned {type(verdict).__name__}, not a Verdict"
        )
    if verdict.outcome != "failed":
        # a run that exercises the clause and stopped early leaves its premise half-seen
        for name in clause.runs:
            record = evidence.get(name)
            if record is not None and record.aborted:
                return Verdict.failed(
                    f"run {name} stopped early ({record.aborted}); checked before that: "
                    f"{verdict.message or 'nothing'}",
                    run=name,
                )
    return verdict


def not_implemented_routes(clause: Clause, evidence: Evidence) -> dict[str, str]:
    """The clause's routes the connector does not implement, with the answer that shows it.

    A route is not implemented when it was answered in some run and every answer on it,
    in every run, says so (``Route.not_implemented_by``); a route never called is not
    judged, and a 404 on a mandatory route is the checks' to fail.
    """
    from contracts.routes import route

    missing: dict[str, str] = {}
    for name in clause.routes:
        wire = route(name)
        answered = [
            ex
            for record in evidence
            for ex in record.connector_exchanges(wire.path)
            if ex.method == wire.method and ex.status is not None and not _is_probe(ex)
        ]
        if answered and all(not_implemented(ex) for ex in answered):
            first = answered[0]
            missing[name] = f"{wire.method} {wire.path} answered {first.status} at #{first.seq}"
    return missing


def _is_probe(exchange: Exchange) -> bool:
    """An empty-body probe: its answer is about the missing body, not about the route."""
    from harness.clauses.runs_core import PROBE_TAG

    return exchange.tags.get(PROBE_TAG) is not None


def _record_of(verdict: Verdict, clause: Clause, evidence: Evidence) -> RunRecord | None:
    if verdict.run is not None:
        return evidence.get(verdict.run)
    present = [evidence.runs[n] for n in clause.runs if n in evidence.runs]
    return present[0] if len(present) == 1 else None


def reproduce_command(
    target: Target,
    clause_id: str,
    *,
    seed: int,
    scenario: str | Path | None = None,
    profile: str = DEFAULT_PROFILE,
) -> str:
    """The exact ``feed-harness verify`` command that replays one clause."""
    words = ["feed-harness", "verify", *target.cli_args, "--seed", str(seed)]
    words += ["--clauses", clause_id]
    if scenario is not None:
        words += ["--scenario", str(scenario)]
    if profile != DEFAULT_PROFILE:
        words += ["--profile", profile]
    return shlex.join(words)
