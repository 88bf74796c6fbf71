"""``docs/verdict.schema.json`` describes what ``feed-harness verify --json`` writes.

Real verdicts are validated: the reference connector's full verification, and a faulty
connector's with a ``--scenario`` (failures carry ``run`` and ``seqs``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from harness import __version__
from harness.cli import EXIT_FAILED, EXIT_OK, main

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "docs" / "verdict.schema.json"
FLAKY = ROOT / "examples" / "flaky-partner.toml"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(document)
    return document


def _verdict(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "verdict.json"
    code = main(["verify", *args, "--json", str(path)])
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return code, document


def test_the_reference_verdict_validates(
    tmp_path: Path, schema: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = _verdict(tmp_path)
    assert code == EXIT_OK, capsys.readouterr().out
    jsonschema.validate(document, schema)
    assert document["harness_version"] == __version__
    assert document["scenario"] is None
    names = [run["name"] for run in document["runs"]]
    assert len(names) == len(set(names)) > 5
    assert all(run["aborted"] is None for run in document["runs"])
    presets = {run["name"]: run["scenario"] for run in document["runs"]}
    assert presets["preset:rate-limit-burst"] == "rate-limit-burst"
    assert presets["lifecycle"] is None
    assert {c["run"] for c in document["clauses"]} - {None} <= set(names)
    assert sum(c["seconds"] for c in document["clauses"]) <= document["seconds"]


def test_a_linkedin_verdict_validates_and_names_its_dialect(
    tmp_path: Path, schema: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    connector = "harness.reference:LinkedInReferenceConnector"
    code, document = _verdict(tmp_path, "--partner", "linkedin", "--connector", connector)
    assert code in (EXIT_OK, EXIT_FAILED), capsys.readouterr().err
    jsonschema.validate(document, schema)
    assert document["partner"] == "linkedin"
    assert all("--partner linkedin" in c["reproduce"] for c in document["clauses"])


def test_a_failing_verdict_validates_and_names_its_exchanges(
    tmp_path: Path, schema: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = _verdict(
        tmp_path,
        "--connector",
        "tests.conformance.faulty:ErrorOnEmptyBatch",
        "--clauses",
        "BATCH-EMPTY,TOKEN-REFRESH",
        "--scenario",
        str(FLAKY),
    )
    assert code == EXIT_FAILED, capsys.readouterr().out
    jsonschema.validate(document, schema)
    assert document["scenario"] == str(FLAKY)
    runs = {run["name"]: run["scenario"] for run in document["runs"]}
    # every run executes; the user's scenario reaches those without a scenario of their own
    assert runs["lifecycle"] == runs["stateful"] == runs["auth"] == str(FLAKY)
    assert runs["preset:token-expiry-mid-upload"] == "token-expiry-mid-upload"
    assert runs["oversized"] is None, "the partner's own limits, whatever --scenario says"
    (failed,) = [c for c in document["clauses"] if c["id"] == "BATCH-EMPTY"]
    assert failed["outcome"] == "failed"
    assert failed["run"] == "lifecycle"
    assert failed["seqs"], "a failure names the exchanges that show it"
    assert document["summary"]["failed"] == 1


def test_the_schema_refuses_what_the_writer_never_writes(schema: dict[str, Any]) -> None:
    """The schema is strict: an unknown outcome or an undocumented field is invalid."""
    clause = {
        "id": "BATCH-EMPTY",
        "outcome": "passed",
        "severity": "error",
        "group": "batches",
        "message": "",
        "reproduce": "feed-harness verify --seed 0 --clauses BATCH-EMPTY",
        "statement": "an empty batch answers OK",
        "run": None,
        "seqs": [],
        "seconds": 0.0,
    }
    document = {
        "harness_version": "0.1.0",
        "connector": "reference connector",
        "seed": 0,
        "profile": "fast",
        "partner": "generic",
        "scenario": None,
        "seconds": 1.0,
        "runs": [{"name": "lifecycle", "scenario": None, "aborted": None}],
        "clauses": [clause],
        "summary": {"passed": 1, "failed": 0, "skipped": 0, "warned": 0},
        "warnings": [],
    }
    jsonschema.validate(document, schema)
    for changed in ({**clause, "outcome": "maybe"}, {**clause, "extra": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**document, "clauses": [changed]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**document, "partner": "google"}, schema)
    warned = {**clause, "outcome": "warned", "severity": "warning"}
    jsonschema.validate({**document, "clauses": [warned]}, schema)
