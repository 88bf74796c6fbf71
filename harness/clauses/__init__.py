"""The conformance clauses of ``clauses.md`` as named checks in one registry."""

from harness.clauses.registry import (
    Clause,
    Outcome,
    UnknownClauseError,
    Verdict,
    all_clauses,
    clause,
    get_clause,
    select_clauses,
)

__all__ = [
    "Clause",
    "Outcome",
    "UnknownClauseError",
    "Verdict",
    "all_clauses",
    "clause",
    "get_clause",
    "select_clauses",
]
