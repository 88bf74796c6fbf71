"""The one registry of conformance clauses: the CLI, the pytest plugin and the reports read it.

A clause is a plain named check (Schemathesis-style): it reads the evidence of the
conformance runs (trace, accounting, partner ledger) and returns a verdict; it never
drives the connector itself.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

Outcome = Literal["passed", "failed", "skipped", "warned"]
"""``warned``: a clause of severity ``warning`` whose check failed (exit 0 unless ``--strict``)."""
Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Verdict:
    """What a check concluded, with the trace sequence numbers that show why."""

    outcome: Outcome
    message: str = ""
    seqs: tuple[int, ...] = ()
    run: str | None = None

    @classmethod
    def passed(cls, message: str = "", *, run: str | None = None) -> Verdict:
        return cls("passed", message, run=run)

    @classmethod
    def failed(cls, message: str, *, seqs: Iterable[int] = (), run: str | None = None) -> Verdict:
        return cls("failed", message, tuple(seqs), run)

    @classmethod
    def skipped(cls, message: str, *, run: str | None = None) -> Verdict:
        return cls("skipped", message, run=run)


Check = Callable[[Any], Verdict]


@dataclass(frozen=True)
class Clause:
    """A named conformance clause of ``clauses.md``.

    ``routes`` are the plugin routes (names of ``contracts.routes``) the clause needs:
    a connector without one of them gets ``skipped``. ``runs`` are the conformance runs
    whose evidence the check reads.
    """

    id: str
    statement: str
    group: str
    check: Check
    severity: Severity = "error"
    routes: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()


GROUPS: dict[str, str] = {
    "wire": "Wire",
    "creation": "Creation and connection",
    "updates": "Updates",
    "batches": "Batches and accounting",
    "faults": "Partner faults",
    "data_protection": "Data protection",
    "troubleshoot": "Troubleshoot, dynamic properties, optional routes",
    "auth": "Authentication",
    "stateful": "Random feed lives",
}
"""The groups of ``clauses.md``, in order: a clause's ``group`` is one of these ids (the
module of ``harness.clauses.checks`` that holds its check, the JUnit classname), the
value its heading."""


class UnknownClauseError(ValueError):
    """A clause id or pattern matched nothing in the registry."""


_REGISTRY: dict[str, Clause] = {}


def clause(
    id: str,
    statement: str,
    *,
    group: str,
    routes: tuple[str, ...] = (),
    runs: tuple[str, ...] = (),
    severity: Severity = "error",
) -> Callable[[Check], Check]:
    """Register the decorated function as the check of clause ``id``."""

    if group not in GROUPS:
        raise ValueError(f"clause {id}: unknown group {group!r}; known groups: {', '.join(GROUPS)}")

    def register(check: Check) -> Check:
        existing = _REGISTRY.get(id)
        # a module imported again (pytester restores sys.modules) re-registers its own check
        if existing is not None and _origin(existing.check) != _origin(check):
            raise ValueError(
                f"clause {id} is registered twice: by {_origin(existing.check)} and "
                f"{_origin(check)}; give the new clause another id"
            )
        _REGISTRY[id] = Clause(
            id=id,
            statement=statement,
            group=group,
            check=check,
            severity=severity,
            routes=routes,
            runs=runs,
        )
        return check

    return register


CLAUSE_ORDER = (
    "WIRE-SCHEMA",
    "WIRE-STATUS",
    "WIRE-DELAY-HEADER",
    "WIRE-EMPTY-BODY",
    "WIRE-LATENCY",
    "CREATE-OK",
    "CREATE-IDEMPOTENT",
    "CREATE-PERSISTS-ID",
    "CREATE-INVALID-CONFIG",
    "CONNECT-NOT-READY",
    "CONNECT-READY",
    "CONNECT-TRANSIENT",
    "UPDATE-ELIGIBLE",
    "UPDATE-GROUPING",
    "UPDATE-STATS",
    "BATCH-ACCOUNTING",
    "BATCH-HONEST",
    "BATCH-EMPTY",
    "BATCH-LIMIT",
    "CONVERGENCE",
    "RETRY-NO-DUPLICATE-SUCCESS",
    "DELETE-ABSENT",
    "TOKEN-REFRESH",
    "TOKEN-INVALID-GRANT",
    "RATE-LIMIT",
    "TRANSIENT-5XX",
    "PARTIAL-FAILURE",
    "PII-HASHED",
    "SECRET-NO-LEAK",
    "ACCOUNT-ISOLATION",
    "TROUBLESHOOT-AUDIENCE",
    "AUTH-STATUS",
    "AUTH-STATE-TAMPER",
    "AUTH-ROUNDTRIP",
    "DYNAMIC-PROPERTIES",
    "NOT-IMPLEMENTED-OK",
)
"""The order of ``clauses.md``; clauses added beyond it follow in registration order."""


def _origin(check: Check) -> str:
    return f"{check.__module__}.{getattr(check, '__qualname__', repr(check))}"


def all_clauses() -> list[Clause]:
    """Every registered clause, in the order of ``clauses.md``."""
    _load_builtin_checks()
    rank = {clause_id: i for i, clause_id in enumerate(CLAUSE_ORDER)}
    return sorted(_REGISTRY.values(), key=lambda c: rank.get(c.id, len(rank)))


def get_clause(clause_id: str) -> Clause:
    """The clause with this id; the error lists the known ids."""
    _load_builtin_checks()
    try:
        return _REGISTRY[clause_id]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise UnknownClauseError(f"unknown clause {clause_id!r}; known clauses: {known}") from None


def select_clauses(patterns: Iterable[str] | None) -> list[Clause]:
    """The clauses matching ids or shell patterns (``BATCH-*``); all of them for None.

    A pattern that matches nothing is an error naming the known ids, so a typo in
    ``--clauses`` never silently verifies less than asked.
    """
    clauses = all_clauses()
    wanted = [p.strip() for p in (patterns or []) if p.strip()]
    if not wanted:
        return clauses
    chosen: dict[str, Clause] = {}
    for pattern in wanted:
        matched = [c for c in clauses if fnmatch.fnmatchcase(c.id, pattern.upper())]
        if not matched:
            known = ", ".join(c.id for c in clauses)
            raise UnknownClauseError(
                f"--clauses: {pattern!r} matches no clause; known clauses: {known}"
            )
        for c in matched:
            chosen[c.id] = c
    return [c for c in clauses if c.id in chosen]


def _load_builtin_checks() -> None:
    """Import the modules whose decorators fill the registry (idempotent)."""
    from harness.clauses import checks  # noqa: F401
