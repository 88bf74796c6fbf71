"""The clause registry: ids, order, selection, and registration conflicts."""

from __future__ import annotations

import pytest

from harness.clauses import registry
from harness.clauses.registry import (
    CLAUSE_ORDER,
    UnknownClauseError,
    Verdict,
    all_clauses,
    select_clauses,
)


def test_every_clause_of_clauses_md_is_registered_in_its_order() -> None:
    ids = [c.id for c in all_clauses()]
    assert ids[: len(CLAUSE_ORDER)] == list(CLAUSE_ORDER)
    assert len(set(ids)) == len(ids)


def test_patterns_select_and_typos_are_refused() -> None:
    assert [c.id for c in select_clauses(["batch-e*", "PII-HASHED"])] == [
        "BATCH-EMPTY",
        "PII-HASHED",
    ]
    with pytest.raises(UnknownClauseError, match="'BATCH-EMTPY' matches no clause"):
        select_clauses(["BATCH-EMTPY"])


def _check(evidence: object) -> Verdict:
    return Verdict.passed()


def _other_check(evidence: object) -> Verdict:
    return Verdict.passed()


def test_the_same_check_registered_again_is_accepted_another_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", {})
    registry.clause("X-ONE", "s", group="wire")(_check)
    registry.clause("X-ONE", "s", group="wire")(_check)  # a module imported a second time
    with pytest.raises(ValueError, match="X-ONE is registered twice"):
        registry.clause("X-ONE", "s", group="wire")(_other_check)


def test_a_clause_of_an_unknown_group_is_refused_naming_the_groups() -> None:
    with pytest.raises(ValueError, match="unknown group 'Partner faults'; known groups: wire,"):
        registry.clause("X-GROUP", "a statement", group="Partner faults")


def test_each_group_is_the_module_that_holds_its_checks() -> None:
    for c in registry.all_clauses():
        module = c.check.__module__
        expected = "harness.clauses.stateful" if c.group == "stateful" else None
        assert module == (expected or f"harness.clauses.checks.{c.group}"), c.id
