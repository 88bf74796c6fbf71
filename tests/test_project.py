"""The project's own promises: the README's commands, CI, the command line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from harness.cli import EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    """The commands of the README's set-up section, one per code block."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set up and run", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_readme_has_the_two_setup_commands() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    main_job, tests = commands
    assert main_job.endswith("feed-harness verify")
    assert "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in ci_lines


def test_cli_without_command_is_a_usage_error(capsys: object) -> None:
    assert main([]) == EXIT_USAGE


def test_python_dash_m_harness_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert done.stdout.startswith("feed-harness ")


def test_ci_runs_the_node_example_after_the_readme_command() -> None:
    """The opt-in Node test (marker `node`) runs in CI as its own step, on a fresh install."""
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    tests = ci_lines.index(_readme_commands()[1])
    npm = next(i for i, line in enumerate(ci_lines) if "npm ci" in line)
    assert "examples/node-connector" in ci_lines[npm]
    node = ci_lines.index(".venv/bin/python -m pytest -m node -q -n auto")
    assert tests < npm < node


def test_ci_runs_the_faulty_proofs_after_the_readme_command() -> None:
    """Every clause's proof (marker `faulty`) runs in CI as a step of its own."""
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    readme_command = next(line for line in ci_lines if line.endswith("pytest -q -n auto"))
    faulty = ci_lines.index(".venv/bin/python -m pytest -m 'faulty or slow' -q -n auto")
    assert ci_lines.index(readme_command) < faulty
