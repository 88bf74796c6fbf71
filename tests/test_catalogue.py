"""``feed-harness clauses`` and ``docs/clauses.md``: every registered clause, documented.

The examples of ``harness/catalogue.py`` are copied from real verifications of the faulty
connectors of ``tests/conformance/faulty.py``; one is replayed here (the proofs step
replays every fault) so the copy cannot drift from what the checks write.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import __version__, catalogue
from harness.clauses import runs as run_module
from harness.clauses.registry import all_clauses
from harness.cli import EXIT_OK, EXIT_USAGE, main
from harness.verify import verify
from tests.conformance import faulty
from tests.conformance.test_faulty import PROOFS, target_of

ROOT = Path(__file__).resolve().parents[1]
CLAUSES_MD = ROOT / "docs" / "clauses.md"
PENDING = frozenset({"CONNECT-TRANSIENT"})
"""Clauses documented ahead of their registration (being added on another branch)."""


def test_every_registered_clause_has_an_example() -> None:
    missing = [c.id for c in all_clauses() if c.id not in catalogue.EXAMPLES]
    assert not missing, (
        f"clauses without an example violation message in harness/catalogue.py: {missing}"
    )
    registered = {c.id for c in all_clauses()}
    assert set(catalogue.EXAMPLES) - registered <= PENDING


def test_a_clause_without_an_example_is_named_with_the_fix() -> None:
    with pytest.raises(catalogue.MissingExampleError, match=r"NO-SUCH-CLAUSE.*EXAMPLES"):
        catalogue.example_of("NO-SUCH-CLAUSE")


def test_examples_name_real_faults_of_their_clause() -> None:
    """An example's fault is one of the faulty connectors proven to break that clause."""
    proofs = {(clause_id, fault.__name__) for clause_id, fault in PROOFS}
    for clause_id, example in catalogue.EXAMPLES.items():
        if example.fault:
            assert hasattr(faulty, example.fault), example.fault
            assert (clause_id, example.fault) in proofs, (clause_id, example.fault)


@pytest.mark.parametrize(
    ("clause_id", "fault"),
    # one full verification (every run): the proofs step replays every fault anyway
    [("AUTH-STATUS", faulty.NoLoginUrl)],
)
def test_an_example_is_what_its_fault_gets(clause_id: str, fault: type[object]) -> None:
    example = catalogue.EXAMPLES[clause_id]
    assert example.fault == fault.__name__
    (result,) = verify(target_of(fault), clauses=[clause_id]).results
    assert result.outcome == "failed"
    assert result.message.startswith(example.message.removesuffix("…").rstrip("; ")), result.message


def test_docs_clauses_md_is_the_generated_catalogue() -> None:
    """docs/clauses.md is what `feed-harness clauses --format md` prints: regenerate it with
    `feed-harness clauses --format md --output docs/clauses.md` after changing a clause."""
    assert CLAUSES_MD.read_text(encoding="utf-8") == catalogue.render_markdown(), (
        "docs/clauses.md is stale: run `feed-harness clauses --format md --output docs/clauses.md`"
    )


def test_markdown_names_every_clause_and_run() -> None:
    text = catalogue.render_markdown()
    for c in all_clauses():
        assert f"\n### {c.id}\n" in text
        assert catalogue.EXAMPLES[c.id].message in text
    for name in run_module.RUNS:
        assert f"| `{name}` |" in text


def test_cli_json_lists_every_clause(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["clauses", "--format", "json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["harness_version"] == __version__
    assert [c["id"] for c in data["clauses"]] == [c.id for c in all_clauses()]
    by_id = {c.id: c for c in all_clauses()}
    for entry in data["clauses"]:
        clause = by_id[entry["id"]]
        assert entry["statement"] == clause.statement
        assert entry["severity"] == clause.severity
        assert entry["runs"] == list(clause.runs)
        assert entry["runs"], f"{clause.id} names no run"
        assert set(entry["runs"]) <= {run["name"] for run in data["runs"]}
        assert entry["example"]["message"]


def test_cli_text_is_one_line_per_clause(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["clauses"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    ids = [c.id for c in all_clauses()]
    assert [line.split()[0] for line in lines[: len(ids)]] == ids


def test_cli_writes_the_markdown_file(tmp_path: Path) -> None:
    out = tmp_path / "clauses.md"
    assert main(["clauses", "--format", "md", "--output", str(out)]) == EXIT_OK
    assert out.read_text(encoding="utf-8") == catalogue.render_markdown()


def test_cli_unwritable_output_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing" / "clauses.md"
    assert main(["clauses", "--output", str(target)]) == EXIT_USAGE
    assert "cannot write it" in capsys.readouterr().err
