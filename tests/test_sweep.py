"""``verify --seeds``: a whole verification per seed, serial or in worker processes.

Each verification executes every run whatever ``--clauses`` says, so the sweeps here are
two seeds of ``BATCH-*``: the reference connector passes on both, and
``tests.conformance.seed_dependent`` fails BATCH-ACCOUNTING on seed 1 only (flaky).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from harness.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from harness.errors import VerifyUsageError
from harness.sweep import SEEDS_FORMS, Sweep, parse_seeds, sweep
from harness.targets import make_target

ROOT = Path(__file__).resolve().parents[1]
SEED_DEPENDENT = "tests.conformance.seed_dependent:MiscountsOnSomeSeeds"


@pytest.mark.parametrize(
    ("text", "seeds"),
    [
        ("0..49", list(range(50))),
        ("3..3", [3]),
        (" 2 .. 4 ", [2, 3, 4]),
        ("0,3,7", [0, 3, 7]),
        ("7,3,7", [7, 3]),
        ("5", [5]),
    ],
)
def test_seed_forms(text: str, seeds: list[int]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "0..", "..4", "5..2", "1,,2", "-1", "0-9", "1.5"])
def test_a_bad_seed_form_is_refused_naming_the_forms(text: str) -> None:
    with pytest.raises(VerifyUsageError) as refused:
        parse_seeds(text)
    assert "--seeds" in str(refused.value)
    assert SEEDS_FORMS in str(refused.value)


def test_a_bad_seed_form_exits_2_naming_the_option_and_the_forms(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["verify", "--seeds", "0-9"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("usage: feed-harness verify ")
    assert "--seeds '0-9'" in err
    assert "0..49" in err
    assert "0,3,7" in err


def test_seed_and_seeds_together_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["verify", "--seed", "1", "--seeds", "0..1"])
    assert exited.value.code == EXIT_USAGE
    assert "not allowed with argument" in capsys.readouterr().err


def test_jobs_without_seeds_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """``-j`` sets a sweep's workers; alone it would be silently ignored."""
    assert main(["verify", "-j", "2"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "-j 2 without --seeds" in err
    assert "--seeds 0..9" in err


@pytest.mark.parametrize("jobs", ["0", "-2", "x"])
def test_jobs_must_be_a_positive_number(capsys: pytest.CaptureFixture[str], jobs: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["verify", "--seeds", "0..1", "-j", jobs])
    assert exited.value.code == EXIT_USAGE
    assert "is not a number of workers" in capsys.readouterr().err


def test_url_sweeps_refuse_parallel_workers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One running connector and its gateway port cannot serve two verifications at once:
    refused before anything is contacted (nothing listens at that URL)."""
    monkeypatch.setenv("PLUGIN_AUTHENTICATION_TOKEN", "t0k3n")
    args = ["verify", "--url", "http://127.0.0.1:9", "--gateway-port", "9", "--seeds", "0..1"]
    assert main([*args, "-j", "2"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "-j 2 with --url" in err
    assert "use -j 1" in err


def test_an_unknown_clause_is_refused_before_any_worker_starts() -> None:
    from harness.clauses.registry import UnknownClauseError

    with pytest.raises(UnknownClauseError):
        sweep(make_target(), [0, 1], jobs=2, clauses=["NO-SUCH-CLAUSE"])


def test_an_unknown_partner_is_refused_before_any_worker_starts() -> None:
    with pytest.raises(VerifyUsageError, match="not a partner dialect"):
        sweep(make_target(), [0, 1], jobs=2, partner="nowhere")


def test_a_sweep_speaks_the_partner_it_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--seeds`` with ``--partner``: every seed's verification is against that dialect
    (the sweep once dropped it: the LinkedIn reference then failed 11 clauses against the
    generic partner on every seed)."""
    path = tmp_path / "verdict.json"
    connector = "harness.reference:LinkedInReferenceConnector"
    args = ["--seeds", "0", "-j", "1", "--partner", "linkedin", "--connector", connector]
    code = main(["verify", *args, "--clauses", "CREATE-*", "--json", str(path)])
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert document["partner"] == "linkedin"
    assert all(c["outcome"] == "passed" for c in document["clauses"]), document["clauses"]


def _cli_sweep(tmp_path: Path, jobs: str) -> tuple[int, dict[str, Any], str]:
    """``feed-harness verify --seeds 0..1 -j JOBS --profile ci`` in a process of its own,
    as a user runs it. ``ci``: the stateful run's hypothesis search is derandomized, so one
    seed's verification is the same in any process; under ``fast`` it searches at random,
    and two runs of the same seed can differ whatever ``-j`` is."""
    path = tmp_path / f"verdict-j{jobs}.json"
    command = [
        sys.executable,
        "-m",
        "harness",
        "verify",
        "--connector",
        SEED_DEPENDENT,
        "--seeds",
        "0..1",
        "-j",
        jobs,
        "--clauses",
        "BATCH-*",
        "--profile",
        "ci",
        "--json",
        str(path),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    return done.returncode, json.loads(path.read_text(encoding="utf-8")), done.stdout


def test_a_seed_dependent_fault_is_flaky_and_serial_and_parallel_sweeps_agree(
    tmp_path: Path,
) -> None:
    serial_code, serial, serial_out = _cli_sweep(tmp_path, "1")
    parallel_code, parallel, parallel_out = _cli_sweep(tmp_path, "2")

    assert serial_code == parallel_code == EXIT_FAILED, serial_out
    sweep_section = serial["seeds"]
    failing = {c["id"]: c["failed_on"] for c in sweep_section["clauses"] if c["failed_on"]}
    assert failing == {"BATCH-ACCOUNTING": [1], "BATCH-HONEST": [1]}
    assert all(c["flaky"] == bool(c["failed_on"]) for c in sweep_section["clauses"])
    assert [run["exit_code"] for run in sweep_section["runs"]] == [0, 1]
    assert serial["seed"] == 1  # the file's verification: the first seed that failed
    assert "BATCH-ACCOUNTING  flaky: fails on seeds 1 (1/2)" in serial_out
    assert serial_out.rstrip().endswith("2 clause(s) failed on some seed (2 flaky)")

    assert (sweep_section.pop("jobs"), parallel["seeds"].pop("jobs")) == (1, 2)
    assert sweep_section == parallel["seeds"]

    def judged(document: dict[str, Any]) -> list[tuple[str, str, str]]:
        return [(c["id"], c["outcome"], c["message"]) for c in document["clauses"]]

    assert judged(serial) == judged(parallel)
    assert serial_out.replace("-j 1", "-j 2").splitlines()[-4:] == parallel_out.splitlines()[-4:]


def test_sweep_counts_failing_seeds_per_clause() -> None:
    """The bookkeeping of ``Sweep`` on made-up reports: fails on every seed, on some
    (flaky), on none, and a seed whose connector could not be reached."""
    from harness.report import ClauseResult, Report
    from harness.sweep import SeedRun

    def report(seed: int, failed: set[str]) -> Report:
        results = [
            ClauseResult(id=i, statement="", outcome="failed" if i in failed else "passed")
            for i in ("A", "B", "C")
        ]
        return Report(connector="c", seed=seed, results=results)

    result = Sweep(
        [0, 1, 2, 3],
        2,
        [
            SeedRun(0, report(0, {"A", "B"}), 1),
            SeedRun(1, report(1, {"A"}), 1),
            SeedRun(2, report(2, {"A"}), 1),
            SeedRun(3, None, 3, "the connector could not be started or reached: boom"),
        ],
    )
    assert result.failing_seeds == {"A": [0, 1, 2], "B": [0]}
    assert [result.flaky(c) for c in "ABC"] == [False, True, False]
    assert result.judged_seeds("A") == [0, 1, 2]
    assert result.exit_code == 3
    representative = result.representative()
    assert representative is not None
    assert representative.seed == 0
    lines = result.lines()
    assert lines[0] == "A  fails on every seed (0, 1, 2; 3/3)"
    assert lines[1] == "B  flaky: fails on seeds 0 (1/3)"
    assert lines[2] == "seed 3: the connector could not be started or reached: boom"
    assert lines[3] == "seed sweep: 4 of 4 seed(s), -j 2: 2 clause(s) failed on some seed (1 flaky)"
    unreachable = Sweep([0], 1, [SeedRun(0, None, 3, "the connector could not be started")])
    assert unreachable.exit_code == 3
    assert unreachable.representative() is None
    assert unreachable.lines()[-1] == "seed sweep: 1 of 1 seed(s), -j 1: no seed could be verified"


def test_the_reference_connector_passes_a_parallel_sweep_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "verdict.json"
    code = main(
        ["verify", "--seeds", "0..1", "-j", "2", "--clauses", "BATCH-*", "--json", str(path)]
    )
    out, err = capsys.readouterr()
    assert code == EXIT_OK, out
    assert "every clause passed on every seed" in out
    done = [re.fullmatch(r"seed (\d) \((\d)/2\) done: 0 failed", line) for line in err.splitlines()]
    finished = sorted((m.group(1), m.group(2)) for m in done if m is not None)
    assert {seed for seed, _ in finished} == {"0", "1"}  # in whatever order they ended
    assert sorted(count for _, count in finished) == ["1", "2"]
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    schema = json.loads((ROOT / "docs" / "verdict.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)
    assert document["seeds"]["seeds"] == [0, 1]
    assert all(not c["failed_on"] and not c["flaky"] for c in document["seeds"]["clauses"])


def test_a_flaky_sweep_exits_1_and_its_json_names_the_seeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "verdict.json"
    args = ["verify", "--connector", SEED_DEPENDENT, "--seeds", "0,1", "-j", "1"]
    code = main([*args, "--clauses", "BATCH-ACCOUNTING", "--json", str(path)])
    out, err = capsys.readouterr()
    assert code == EXIT_FAILED
    assert "BATCH-ACCOUNTING  flaky: fails on seeds 1 (1/2)" in out
    assert "seed 0 (1/2) done: 0 failed" in err
    assert "seed 1 (2/2) done: 1 failed" in err
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    schema = json.loads((ROOT / "docs" / "verdict.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)
    assert document["seed"] == 1  # the file's verification: the first seed that failed
    assert document["seeds"]["clauses"] == [
        {"id": "BATCH-ACCOUNTING", "failed_on": [1], "judged_on": [0, 1], "flaky": True}
    ]
    assert [run["exit_code"] for run in document["seeds"]["runs"]] == [0, 1]


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_a_stop_signal_stops_a_parallel_sweep_and_its_workers(tmp_path: Path) -> None:
    """SIGTERM to ``verify --seeds -j 2``: the workers are stopped too (their queued seeds
    are not started) and the command exits 128+15 without waiting for the seeds."""
    command = [
        sys.executable,
        "-m",
        "harness",
        "verify",
        "--seeds",
        "0..5",
        "-j",
        "2",
        "--clauses",
        "BATCH-*",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    workers: list[str] = []
    while process.poll() is None and len(workers) < 2:  # until both workers exist
        pids = children.read_text().split() if children.exists() else []
        workers = [pid for pid in pids if b"spawn_main" in _cmdline(pid)]  # not the tracker
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "interrupted" in err
    assert "(6/6) done" not in err  # the seeds queued to the workers were not all run
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(
            f"/proc/{pid}/status"
        ).read_text(errors="replace")
