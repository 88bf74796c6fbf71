"""How a check's findings become one message: the first ones, a count, and what is pinned."""

from __future__ import annotations

from harness.clauses.checks._shared import _Findings


def test_the_first_findings_then_a_count_then_the_pinned_ones() -> None:
    findings = _Findings()
    for n in range(8):
        findings.add("lifecycle", f"finding {n}", [n + 1])
    findings.add("stateful", "a random feed life broke it: the program", [99], pinned=True)
    verdict = findings.verdict("unused")
    assert verdict.outcome == "failed"
    assert verdict.message.startswith("9 violations: [lifecycle] finding 0; ")
    assert "finding 4; and 3 more; [stateful] a random feed life broke it" in verdict.message
    assert "finding 5" not in verdict.message
    assert verdict.run == "lifecycle"
    assert 99 not in verdict.seqs, "seqs number the first failing run's trace only"


def test_plurals() -> None:
    one, many = _Findings(), _Findings()
    one.add("r", "x")
    many.add("r", "x")
    many.add("r", "y")
    assert one.verdict("", what="mismatch").message.startswith("1 mismatch: ")
    assert many.verdict("", what="mismatch").message.startswith("2 mismatches: ")
    assert many.verdict("").message.startswith("2 violations: ")
