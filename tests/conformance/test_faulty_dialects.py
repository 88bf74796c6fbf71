"""The dialect faults: each faulty LinkedIn or Meta connector, verified against its own
face, fails its clause and only the clauses its docstring lists (as ``test_faulty.py``
proves the generic ones)."""

from __future__ import annotations

import pytest

from harness.targets import Target
from harness.verify import verify
from tests.conformance import faulty_dialects
from tests.conformance.test_faulty import listed_clauses

FAULTS = faulty_dialects.ALL_DIALECT_FAULTS


def _own(fault: type[object]) -> str:
    head = (fault.__doc__ or "").split("—", 1)[0]
    return head.removeprefix("breaks:").strip()


def test_every_dialect_fault_names_its_clause_and_its_dialect() -> None:
    for fault in FAULTS:
        assert _own(fault) in listed_clauses(fault), fault.__name__
        assert faulty_dialects.DIALECT_OF[fault] in ("linkedin", "meta")
    assert {_own(f) for f in FAULTS} == {
        "RATE-LIMIT",
        "TOKEN-INVALID-GRANT",
        "PARTIAL-FAILURE",
        "PII-HASHED",
    }


@pytest.mark.faulty
@pytest.mark.parametrize("fault", FAULTS, ids=[f.__name__ for f in FAULTS])
def test_the_dialect_fault_fails_its_clause_and_only_those_listed(fault: type[object]) -> None:
    partner = faulty_dialects.DIALECT_OF[fault]
    spec = f"{faulty_dialects.__name__}:{fault.__name__}"
    target = Target(connector=fault, label=spec, cli_args=("--connector", spec))
    report = verify(target, partner=partner)
    failed = {r.id for r in report.results if r.outcome in ("failed", "warned")}
    messages = {r.id: r.message[:300] for r in report.results if r.id in failed}
    own, listed = _own(fault), listed_clauses(fault)
    assert own in failed, f"{fault.__name__} does not fail {own}: {messages}"
    assert failed <= listed, (
        f"{fault.__name__} fails {sorted(failed - listed)} that its docstring does not list: "
        f"{ {k: messages[k] for k in failed - listed} }"
    )
    [result] = [r for r in report.results if r.id == own]
    assert f"--partner {partner}" in result.reproduce
    assert f"--connector {spec}" in result.reproduce
