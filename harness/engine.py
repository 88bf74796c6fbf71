"""The verification engine: run the conformance runs the selected clauses need, judge each clause.

``verify(target)`` is what ``feed-harness verify`` and the pytest plugin call. It never
crashes on a bad connector or a broken check: every problem becomes a clause result,
except a connector that cannot be started or reached at all (``ConnectorStartError``,
``ConnectorLoadError``, :class:`ConnectorUnreachableError`).
"""

from __future__ import annotations

import collections
import math
import shlex
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.clauses.evidence import Evidence, RunRecord, RunSpec, not_implemented
from harness.clauses.registry import Clause, Verdict, select_clauses
from harness.dialects import DEFAULT_DIALECT, resolve_dialect
from harness.drivers.base import NOT_HTTP, PROBE_TAG
from harness.drivers.bounds import DEFAULT_DEADLINE, Bounds, Stall, use_bounds
from harness.errors import ConnectorUnreachableError, VerifyUsageError
from harness.excerpts import feed_accounting, ledger_window, trace_excerpt
from harness.hypothesis_home import hypothesis_home, no_local_constants
from harness.profiles import DEFAULT_PROFILE, check_profile, use_profile
from harness.report import ClauseResult, Report, RunResult
from harness.targets import Target, UrlTarget

if TYPE_CHECKING:
    from fake_partner import Scenario
    from harness.trace import Exchange

__all__ = [
    "ConnectorLostError",
    "Progress",
    "StopSignal",
    "VerificationInterrupted",
    "not_implemented_routes",
    "reproduce_command",
    "verify",
]

Progress = Callable[[str], None]


class StopSignal(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGINT) asked the verification to stop: raised by the CLI's
    handler; a ``KeyboardInterrupt`` so that nothing on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class VerificationInterrupted(KeyboardInterrupt):
    """A stop signal ended the verification; ``report`` judges the runs that had ended
    (the connector was stopped first)."""

    def __init__(self, signum: int, report: Report) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.report = report


class ConnectorLostError(ConnectorUnreachableError):
    """The connector answered, then was lost (its process exited, it could not be started
    or reached again, or it stopped answering at all); ``report`` judges what ran."""

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report = report


def verify(
    target: Target | None = None,
    *,
    clauses: Sequence[str] | None = None,
    seed: int = 0,
    scenario: str | Path | None = None,
    profile: str = DEFAULT_PROFILE,
    progress: Progress | None = None,
    call_timeout: float | None = None,
    deadline: float | None = DEFAULT_DEADLINE,
    partner: str | None = None,
) -> Report:
    """Verify ``target`` (default: the reference connector in-process) against the clauses.

    ``partner`` (``generic``, ``linkedin``, ``meta``) is the dialect the fake partner speaks
    in every run; by default the scenario's own ``partner`` key, else ``generic``. Both
    given and different is a :class:`VerifyUsageError`.

    ``call_timeout`` (real seconds per call; default: each run's setting, 10 s) and
    ``deadline`` (real seconds for everything; ``None``: none) bound the time spent on the
    connector: once it stops answering, or the deadline passes, the remaining runs are not
    run and their clauses fail saying why.

    Raises ``UnknownClauseError`` / ``ScenarioError`` / :class:`VerifyUsageError` for a
    bad request, ``ConnectorStartError`` / ``ConnectorLoadError`` /
    :class:`ConnectorUnreachableError` when the connector cannot be started or reached,
    :class:`ConnectorLostError` (with the report of what ran) when it was lost on the way,
    and :class:`VerificationInterrupted` (with that report) on a stop signal.
    """
    from fake_partner import load_scenario
    from harness.clauses import runs as run_module

    target = target if target is not None else Target()
    check_profile(profile)
    bounds = _bounds(call_timeout, deadline)
    loaded = load_scenario(scenario) if scenario is not None else None
    dialect = resolve_dialect(partner, loaded)
    selected = select_clauses(clauses)
    say = progress if progress is not None else _silent
    started = time.perf_counter()

    # every run, whatever the selection: a clause judges all the evidence where its
    # premise occurs, so its verdict alone (--clauses ID) is the one of a full verification
    specs = list(run_module.RUNS.values())
    evidence = Evidence(seed=seed, profile=profile)
    run_errors: dict[str, str] = {}
    # no .hypothesis/ here; a seed draws the same examples whatever this process imported
    with use_profile(profile), use_bounds(bounds), hypothesis_home(), no_local_constants():
        outcome = _run_all(specs, target, seed, loaded, bounds, evidence, run_errors, say, dialect)
        if outcome.signum is None:
            _raise_if_never_answered(evidence, target, outcome.stalls)
        say(f"checking {len(selected)} clause(s)")
        results = [
            _judge(clause, evidence, run_errors, target, seed, scenario, profile, dialect)
            for clause in selected
        ]
    report = Report(
        connector=target.label,
        seed=seed,
        profile=profile,
        results=results,
        seconds=time.perf_counter() - started,
        scenario=str(scenario) if scenario is not None else None,
        runs=[_run_result(spec, evidence, run_errors, scenario) for spec in specs],
        warnings=unobserved_faults(evidence, loaded) if loaded is not None else [],
        partner=dialect,
    )
    if outcome.signum is not None:
        raise VerificationInterrupted(outcome.signum, report)
    if outcome.lost is not None:
        raise ConnectorLostError(
            f"the connector ({target.label}) was lost {outcome.lost}; the runs that ended "
            "before are judged, the others were not run",
            report,
        )
    return report


def _run_result(
    spec: RunSpec, evidence: Evidence, run_errors: Mapping[str, str], scenario: str | Path | None
) -> RunResult:
    """What the report says of a run: the scenario it played (its own preset, the user's,
    or None for the default partner), why it stopped early."""
    if isinstance(spec.scenario, str):
        played: str | None = spec.scenario
    elif spec.scenario is None and scenario is not None:
        played = str(scenario)
    else:
        played = None
    record = evidence.get(spec.name)
    aborted: str | None
    if record is None:
        aborted = f"the run broke: {run_errors.get(spec.name, 'no record')}"
    else:
        aborted = record.aborted
    return RunResult(spec.name, played, aborted)


def _bounds(call_timeout: float | None, deadline: float | None) -> Bounds:
    for option, value in (("--call-timeout", call_timeout), ("--deadline", deadline)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise VerifyUsageError(f"{option} {value:g}: give a positive number of seconds")
    return Bounds(call_timeout=call_timeout, deadline=deadline)


_MAX_HANGING_RUNS = 2
"""Runs in which the connector hangs on calls (though it answers ``GET /v1/status``) before
the remaining runs are given up: one route that hangs spoils one run, not all of them."""


@dataclass
class _Outcome:
    """How the runs went, beyond their records: why they stopped, if they did."""

    stalls: list[Stall] = field(default_factory=list)
    lost: str | None = None
    """Where and how the connector was lost (exit 3, with the report)."""
    signum: int | None = None
    """The stop signal that ended the runs."""


def _run_all(
    specs: Sequence[RunSpec],
    target: Target,
    seed: int,
    scenario: Scenario | None,
    bounds: Bounds,
    evidence: Evidence,
    run_errors: dict[str, str],
    say: Progress,
    dialect: str = DEFAULT_DIALECT,
) -> _Outcome:
    """Execute the runs in order until one gives a reason to stop; the runs not run get
    that reason in ``run_errors``."""
    from harness.clauses import runs as run_module
    from harness.clauses.runs.ahead import RunsAhead
    from harness.drivers import ConnectorLoadError, ConnectorStartError
    from harness.gateway import ServeError

    # a connector process (--cmd) starts and stops around every run: the next runs'
    # platforms start while one plays, and each stops behind it (the runs still play in turn)
    ahead_or_none: AbstractContextManager[RunsAhead | None] = (
        RunsAhead(target, seed=seed, scenario=scenario, partner=dialect)
        if target.cmd is not None
        else nullcontext()
    )
    outcome = _Outcome()
    stopped: str | None = None
    with ahead_or_none as ahead:
        for index, spec in enumerate(specs, 1):
            if stopped is None and bounds.expired():
                stopped = f"{bounds.deadline_label()} passed before it could start"
            if stopped is not None:
                run_errors[spec.name] = f"not run: {stopped}"
                continue
            say(f"run {index}/{len(specs)}: {spec.name}")
            try:
                if ahead is not None:
                    record = ahead.execute(spec, specs[index:])
                else:
                    record = run_module.execute_run(
                        spec, target, seed=seed, scenario=scenario, partner=dialect
                    )
            except KeyboardInterrupt as exc:
                outcome.signum = getattr(exc, "signum", signal.SIGINT)
                stopped = (
                    f"the verification was interrupted by {signal.Signals(outcome.signum).name}"
                )
                run_errors[spec.name] = f"cut short: {stopped} during this run"
                continue
            except ConnectorLoadError:
                raise
            except ConnectorStartError as exc:
                if bounds.expired():
                    stopped = f"{bounds.deadline_label()} passed"
                    run_errors[spec.name] = f"cut short: {stopped} while the connector started"
                    continue
                if not evidence.runs:
                    raise
                first_line = str(exc).splitlines()[0]
                outcome.lost = (
                    f"before run {spec.name}: it could not be started again: {first_line}"
                )
                stopped = f"the connector was lost {outcome.lost}"
                run_errors[spec.name] = f"not run: {stopped}"
                continue
            except ServeError as exc:
                raise VerifyUsageError(_serve_problem(target, exc)) from exc
            except Exception as exc:  # a broken run script must not end the verification
                run_errors[spec.name] = f"{type(exc).__name__}: {exc}"
                continue
            stall: Stall | None = getattr(record.platform.driver, "stall", None)
            if stall is not None and stall.kind == "deadline":
                stopped = stall.reason
                run_errors[spec.name] = f"cut short: {stopped} during this run"
                continue
            evidence.runs[spec.name] = record
            if stall is not None:
                outcome.stalls.append(stall)
                if stall.kind == "lost":
                    outcome.lost = f"in run {spec.name}: {stall.reason}"
                gave_up = f"the harness gave up on the connector in run {spec.name}: {stall.reason}"
                say(gave_up)
                hanging = sum(s.kind == "hanging" for s in outcome.stalls)
                if stall.kind != "hanging" or hanging >= _MAX_HANGING_RUNS:
                    stopped = gave_up
    return outcome


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


def _raise_if_never_answered(
    evidence: Evidence, target: Target, stalls: Sequence[Stall] = ()
) -> None:
    """No call to the connector got an HTTP answer (the driver's own ``GET /v1/status``
    probes aside): it cannot be reached, unless it was only slow (then it is judged)."""
    if any(stall.kind == "slow" for stall in stalls):
        return
    exchanges = [ex for _, ex in evidence.all_connector_exchanges() if PROBE_TAG not in ex.tags]
    if not exchanges or any(ex.status is not None for ex in exchanges):
        return
    if not all(ex.failure in ("connection", "timeout") for ex in exchanges):
        return
    label = target.label
    garbage = [ex for ex in exchanges if ex.detail.startswith(NOT_HTTP)]
    if garbage:
        first = garbage[0]
        raise ConnectorUnreachableError(
            f"the connector ({label}) never gave an HTTP answer: {len(garbage)} of "
            f"{len(exchanges)} call(s) got garbage instead (first: {first.method} {first.path}: "
            f"{first.detail}); check that PLUGIN_PORT serves plain HTTP/1.1 and nothing else "
            "writes to it"
        )
    sent = [ex for ex in exchanges if not ex.detail.startswith("not sent")]
    last = (sent or exchanges)[-1]
    kinds = collections.Counter(str(ex.failure) for ex in sent)
    counted = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    skipped = len(exchanges) - len(sent)
    why = f"; then the harness gave up: {stalls[-1].reason}" if stalls else ""
    raise ConnectorUnreachableError(
        f"the connector ({label}) never answered: {len(sent)} call(s) sent ({counted}), "
        f"{skipped} not sent (last: {last.method} {last.path}: {last.detail}){why}; check "
        "that it is running and listening"
    )


def _judge(
    clause: Clause,
    evidence: Evidence,
    run_errors: Mapping[str, str],
    target: Target,
    seed: int,
    scenario: str | Path | None,
    profile: str,
    dialect: str = DEFAULT_DIALECT,
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
            target, clause.id, seed=seed, scenario=scenario, profile=profile, partner=dialect
        ),
        group=clause.group,
        severity=clause.severity,
        run=verdict.run,
        seqs=list(dict.fromkeys(verdict.seqs)),
    )
    if verdict.outcome in ("failed", "warned"):
        record = _record_of(verdict, clause, evidence)
        if record is not None:
            result.run = record.name
            excerpt = trace_excerpt(record, verdict.seqs)
            result.trace = [entry for entry, _ in excerpt]
            result.accounting = feed_accounting(record)
            result.ledger = ledger_window(record, [ex for _, ex in excerpt])
    # the time spent judging it: every clause reads every run, which the report's own
    # ``seconds`` (the whole verification) counts once
    result.seconds = time.perf_counter() - started
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
    from harness.clauses.runs.core import PROBE_TAG

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
    partner: str = DEFAULT_DIALECT,
) -> str:
    """The exact ``feed-harness verify`` command that replays one clause (``--partner``
    only for a dialect other than ``generic``)."""
    words = ["feed-harness", "verify", *target.cli_args]
    if partner != DEFAULT_DIALECT:
        words += ["--partner", partner]
    words += ["--seed", str(seed)]
    words += ["--clauses", clause_id]
    if scenario is not None:
        words += ["--scenario", str(scenario)]
    if profile != DEFAULT_PROFILE:
        words += ["--profile", profile]
    return shlex.join(words)
