"""The verification engine: run the conformance runs the selected clauses need, judge each clause.

``verify(target)`` is what ``feed-harness verify`` and the pytest plugin call. It never
crashes on a bad connector or a broken check: every problem becomes a clause result,
except a connector that cannot be started or reached at all (``ConnectorStartError``,
``ConnectorLoadError``, :class:`ConnectorUnreachableError`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shlex
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.clauses.evidence import Evidence, RunRecord, RunSpec, Target
from harness.clauses.registry import Clause, Verdict, select_clauses
from harness.hypothesis_home import hypothesis_home
from harness.report import ClauseResult, Report, RunResult

if TYPE_CHECKING:
    import hypothesis

    from contracts.routes import Route
    from fake_partner import LedgerEntry
    from harness.trace import Exchange

__all__ = [
    "DEFAULT_PROFILE",
    "MAX_LEDGER_ENTRIES",
    "MAX_TRACE_ENTRIES",
    "PROFILES",
    "ConnectorUnreachableError",
    "Progress",
    "UrlTarget",
    "VerifyUsageError",
    "current_profile",
    "feed_accounting",
    "hypothesis_settings",
    "ledger_window",
    "make_target",
    "not_implemented_routes",
    "reproduce_command",
    "trace_excerpt",
    "verify",
]

PROFILES = ("fast", "ci", "thorough")
"""Verification profiles: how hard the hypothesis-based clauses search."""
DEFAULT_PROFILE = "fast"
MAX_TRACE_ENTRIES = 60
MAX_LEDGER_ENTRIES = 50
_MAX_BODY = 2000
_DEFAULT_WORKER_ID = "worker-1"

Progress = Callable[[str], None]

_PROFILE: contextvars.ContextVar[str] = contextvars.ContextVar(
    "feed_harness_profile", default=DEFAULT_PROFILE
)


class VerifyUsageError(ValueError):
    """A verification was asked for something impossible; the message names the option and fix."""


class ConnectorUnreachableError(RuntimeError):
    """The connector started but never gave a single HTTP answer."""


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class UrlTarget(Target):
    """A connector already running at ``url``, pointed at a gateway on ``gateway_port``.

    Each run serves its own gateway on that port with the worker id and token the
    connector was started with, so the connector reaches it like the real one.
    """

    gateway_port: int = 0
    worker_id: str = _DEFAULT_WORKER_ID
    authentication_token: str | None = field(default=None, repr=False)

    def platform_kwargs(self) -> dict[str, Any]:
        """``Platform(url=..., gateway_port=..., worker_id=..., authentication_token=...)``."""
        return {
            "url": self.url,
            "gateway_port": self.gateway_port,
            "worker_id": self.worker_id,
            "authentication_token": self.authentication_token,
        }


def make_target(
    connector: object | None = None,
    *,
    cmd: str | None = None,
    url: str | None = None,
    gateway_port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Target:
    """The target named by CLI-style options (at most one of connector, cmd, url).

    With ``url``, the gateway port comes from ``gateway_port`` or ``$GATEWAY_PORT`` and
    the worker id / token from ``$PLUGIN_WORKER_ID`` / ``$PLUGIN_AUTHENTICATION_TOKEN``.
    """
    given = [n for n, v in (("--connector", connector), ("--cmd", cmd), ("--url", url)) if v]
    if len(given) > 1:
        raise VerifyUsageError(f"{' and '.join(given)} given: name the connector with only one")
    if gateway_port is not None and not url:
        raise VerifyUsageError(
            "--gateway-port goes with --url only (--cmd and in-process connectors get their "
            "gateway on a free port): drop it or add --url"
        )
    if cmd is not None and cmd.strip():
        return Target(cmd=cmd, label=shlex.join(("--cmd", cmd)), cli_args=("--cmd", cmd))
    if url:
        return _url_target(url, gateway_port, os.environ if env is None else env)
    if isinstance(connector, str):
        return Target(
            connector=connector,
            label=connector,
            cli_args=("--connector", connector),
        )
    if connector is not None:
        name = getattr(connector, "__qualname__", None) or type(connector).__name__
        return Target(connector=connector, label=f"{name} (in-process)")
    return Target()


def _url_target(url: str, gateway_port: int | None, env: Mapping[str, str]) -> UrlTarget:
    if not url.startswith(("http://", "https://")):
        raise VerifyUsageError(f"--url {url!r} is not an http(s) URL: write http://127.0.0.1:PORT")
    if gateway_port is None:
        raw = env.get("GATEWAY_PORT", "")
        if not raw.isdigit():
            raise VerifyUsageError(
                "--url needs --gateway-port N (or $GATEWAY_PORT): the port the running "
                "connector's GATEWAY_PORT points at; verify serves its gateway there"
            )
        gateway_port = int(raw)
    if not 0 < gateway_port < 65536:
        raise VerifyUsageError(f"--gateway-port {gateway_port} is not a port: use 1..65535")
    token = env.get("PLUGIN_AUTHENTICATION_TOKEN", "")
    if not token:
        raise VerifyUsageError(
            "--url needs PLUGIN_AUTHENTICATION_TOKEN (and PLUGIN_WORKER_ID) in this shell, set "
            "to what the connector was started with (the export lines of `feed-harness serve`)"
        )
    worker_id = env.get("PLUGIN_WORKER_ID") or _DEFAULT_WORKER_ID
    args = ("--url", url, "--gateway-port", str(gateway_port))
    return UrlTarget(
        url=url,
        label=url,
        cli_args=args,
        gateway_port=gateway_port,
        worker_id=worker_id,
        authentication_token=token,
    )


# --------------------------------------------------------------------------- profiles


def current_profile() -> str:
    """The profile of the verification in progress (``fast`` outside one)."""
    return _PROFILE.get()


def hypothesis_settings(profile: str | None = None) -> hypothesis.settings:
    """Hypothesis settings of a profile: fast ~20 examples, ci 50 derandomized, thorough 500.

    ``None`` means :func:`current_profile`. Deadlines are off: the virtual clock, not the
    wall clock, times the partner.
    """
    import hypothesis

    name = _check_profile(profile if profile is not None else current_profile())
    common: dict[str, Any] = {
        "deadline": None,
        "database": None,
        "print_blob": False,
        "suppress_health_check": list(hypothesis.HealthCheck),
    }
    if name == "ci":
        return hypothesis.settings(max_examples=50, derandomize=True, **common)
    if name == "thorough":
        return hypothesis.settings(max_examples=500, **common)
    return hypothesis.settings(max_examples=20, **common)


def _check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise VerifyUsageError(
            f"--profile {profile!r} is not a profile: choose one of {', '.join(PROFILES)}"
        )
    return profile


@contextlib.contextmanager
def _profile(profile: str) -> Iterator[None]:
    token = _PROFILE.set(profile)
    try:
        yield
    finally:
        _PROFILE.reset(token)


# --------------------------------------------------------------------------- the engine


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
    _check_profile(profile)
    loaded = load_scenario(scenario) if scenario is not None else None
    selected = select_clauses(clauses)
    say = progress if progress is not None else _silent
    started = time.perf_counter()

    wanted = dict.fromkeys(name for c in selected for name in c.runs)
    specs = run_module.runs_for(name for name in wanted if name in run_module.RUNS)
    evidence = Evidence(seed=seed, profile=profile)
    run_errors: dict[str, str] = {}
    with _profile(profile), hypothesis_home():  # no .hypothesis/ in the user's directory
        for index, spec in enumerate(specs, 1):
            say(f"run {index}/{len(specs)}: {spec.name}")
            try:
                record = run_module.execute_run(spec, target, seed=seed, scenario=loaded)
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
        scenario=None if scenario is None else str(scenario),
        runs=[_run_result(spec, evidence, run_errors, scenario) for spec in specs],
    )


def _run_result(
    spec: RunSpec, evidence: Evidence, run_errors: Mapping[str, str], scenario: str | Path | None
) -> RunResult:
    """What the report says of a run: the scenario it played, why it stopped early."""
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
    result = ClauseResult(
        id=clause.id,
        statement=clause.statement,
        outcome=verdict.outcome,
        message=verdict.message,
        reproduce=reproduce_command(
            target, clause.id, seed=seed, scenario=scenario, profile=profile
        ),
        group=clause.group,
        severity=clause.severity,
        run=verdict.run,
        seqs=list(dict.fromkeys(verdict.seqs)),
    )
    if verdict.outcome == "failed":
        record = _record_of(verdict, clause, evidence)
        if record is not None:
            result.run = record.name
            excerpt = trace_excerpt(record, verdict.seqs)
            result.trace = [entry for entry, _ in excerpt]
            result.accounting = feed_accounting(record)
            result.ledger = ledger_window(record, [ex for _, ex in excerpt])
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
        verdict = clause.check(evidence.only(clause.runs))
    except Exception as exc:  # a check that raises is a failed clause, never a crash
        return Verdict.failed(f"the check of {clause.id} raised {type(exc).__name__}: {exc}")
    if not isinstance(verdict, Verdict):
        return Verdict.failed(
            f"the check of {clause.id} returned {type(verdict).__name__}, not a Verdict"
        )
    return verdict


def not_implemented_routes(clause: Clause, evidence: Evidence) -> dict[str, str]:
    """The clause's routes the connector does not implement, with the answer that shows it.

    A route is not implemented when every answer on it (in the clause's runs) is 404 on an
    optional route, or 400 ``not_implemented`` where the route has that status; a route
    never called is not judged, and a 404 on a mandatory route is the checks' to fail.
    """
    from contracts.routes import route

    records = [evidence.runs[n] for n in clause.runs if n in evidence.runs] or list(evidence)
    missing: dict[str, str] = {}
    for name in clause.routes:
        wire = route(name)
        answered = [
            ex
            for record in records
            for ex in record.connector_exchanges(wire.path)
            if ex.method == wire.method and ex.status is not None
        ]
        if answered and all(_not_implemented(wire, ex) for ex in answered):
            first = answered[0]
            missing[name] = f"{wire.method} {wire.path} answered {first.status} at #{first.seq}"
    return missing


def _not_implemented(wire: Route, exchange: Exchange) -> bool:
    if exchange.status == 404:
        return wire.optional
    body = exchange.response_json()
    return (
        exchange.status == 400
        and "not_implemented" in wire.status_codes
        and isinstance(body, dict)
        and body.get("status") == "not_implemented"
    )


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


# --------------------------------------------------------------------------- failure details


def trace_excerpt(
    record: RunRecord, seqs: Sequence[int], limit: int = MAX_TRACE_ENTRIES
) -> list[tuple[dict[str, Any], Exchange]]:
    """The exchanges a verdict names with those nested in them, as report dicts (≤ limit).

    The named exchanges are kept first; nested ones fill the rest, in ``seq`` order.
    """
    trace = record.trace
    by_seq = {ex.seq: ex for ex in trace}
    named = [by_seq[s] for s in sorted(set(seqs)) if s in by_seq]
    named_ids = {ex.seq for ex in named}
    nested: dict[int, Exchange] = {}
    for ex in named:
        for child in trace.children(ex):
            if child.seq not in named_ids:
                nested.setdefault(child.seq, child)
    room = max(0, limit - len(named))
    kept = named[:limit] + sorted(nested.values(), key=lambda e: e.seq)[:room]
    kept.sort(key=lambda e: e.seq)
    redactor = trace.redactor
    return [(redactor.value(_entry(ex)), ex) for ex in kept]


def _entry(ex: Exchange) -> dict[str, Any]:
    data = ex.to_jsonable(max_body=_MAX_BODY)
    data.update(path=ex.path, status=ex.status, summary=_summary(ex))
    return data


def _summary(ex: Exchange) -> str:
    """A short account: answer status, list sizes, answer counts (``OK, 3 batch_content``)."""
    parts: list[str] = []
    answer = ex.response_json()
    if isinstance(answer, dict) and isinstance(answer.get("status"), str):
        parts.append(str(answer["status"]))
    for body, counts in ((ex.request_json(), False), (answer, True)):
        if isinstance(body, list):
            parts.append(f"{len(body)} items")
        elif isinstance(body, dict):
            for key, value in body.items():
                if isinstance(value, list):
                    parts.append(f"{len(value)} {key}")
                elif counts and isinstance(value, int) and not isinstance(value, bool):
                    parts.append(f"{key}={value}")
    if ex.failure is not None:
        parts.append(ex.failure)
    text = ", ".join(parts[:6])
    return text if len(text) <= 120 else text[:119] + "…"


def feed_accounting(record: RunRecord) -> dict[str, Any] | None:
    """The run's feed accounting (current session): flat for one feed, by feed name otherwise."""
    feeds = record.feeds
    if not feeds:
        return None
    if len(feeds) == 1:
        name, feed = next(iter(feeds.items()))
        return {"feed": name, "feed_id": feed.feed_id, **feed.accounting.to_dict()}
    return {name: feed.accounting.to_dict() for name, feed in feeds.items()}


def ledger_window(
    record: RunRecord, exchanges: Sequence[Exchange], limit: int = MAX_LEDGER_ENTRIES
) -> list[dict[str, Any]]:
    """The partner ledger entries of those exchanges (≤ limit, without operations).

    Partner calls are matched by ``X-Request-Id``, dropped ones by virtual time; with no
    partner call among them, every entry of their time window; with no exchange, the
    run's last entries.
    """
    ledger = record.partner.ledger
    if not exchanges:
        return [entry.to_json(operations=False) for entry in list(ledger.entries)[-limit:]]
    start = min(ex.virtual_start for ex in exchanges)
    end = max(
        ex.virtual_end if ex.virtual_end is not None else ex.virtual_start for ex in exchanges
    )
    calls = [ex for ex in exchanges if ex.leg == "connector->partner"]
    ids = {ex.response_header("x-request-id") for ex in calls} - {None}
    unanswered = any(ex.status is None for ex in calls)

    def wanted(entry: LedgerEntry) -> bool:
        if not calls:
            return start <= entry.time <= end
        if entry.request_id in ids:
            return True
        return unanswered and entry.dropped and start <= entry.time <= end

    return [entry.to_json(operations=False) for entry in ledger.where(wanted)[:limit]]
