"""What an install gives a user: three packages, and nothing written into their directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("contracts", "fake_partner", "harness")
NOT_PACKAGES = ("tests", "bench", "conftest", "examples")


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in ``cwd``, without this process' PYTHONPATH or hypothesis home."""
    unset = ("PYTHONPATH", "HYPOTHESIS_STORAGE_DIRECTORY")
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", PACKAGES)
def test_the_three_packages_import_from_anywhere(name: str, tmp_path: Path) -> None:
    done = _python(f"import {name}; print({name}.__file__)", tmp_path)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(ROOT)


@pytest.mark.parametrize("name", NOT_PACKAGES)
def test_the_project_s_own_modules_do_not_shadow_a_user_s(name: str, tmp_path: Path) -> None:
    """The editable install exposes the packages only (hatch `dev-mode-exact`), not the
    repository root: a user's own `tests` or `bench` package is theirs."""
    done = _python(f"import {name}", tmp_path)
    assert done.returncode != 0, f"`import {name}` from {tmp_path} found {done.stdout}"
    assert "ModuleNotFoundError" in done.stderr


def test_verify_leaves_no_hypothesis_directory_in_the_user_s(tmp_path: Path) -> None:
    """Hypothesis' files go to the user cache ($XDG_CACHE_HOME/feed-harness/hypothesis),
    never into the project a verification runs in. The stateful run draws no text and no
    local constants, so hypothesis may write nothing at all; the subprocess also makes it
    write its charmap (a text draw) inside the same redirection to prove where files go."""
    work, cache = tmp_path / "project", tmp_path / "cache"
    work.mkdir()
    code = (
        "from harness.cli import main\n"
        "code = main(['verify', '--clauses', 'STATEFUL-LIFECYCLE'])\n"
        "from hypothesis import given, settings, strategies as st\n"
        "from harness.hypothesis_home import hypothesis_home\n"
        "with hypothesis_home():\n"
        "    given(st.text())(settings(max_examples=5, database=None)(lambda s: None))()\n"
        "raise SystemExit(code)"
    )
    done = _python(code, work, XDG_CACHE_HOME=str(cache))
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in work.iterdir()) == []
    stored = cache / "feed-harness" / "hypothesis"
    assert stored.is_dir()
    assert any(stored.iterdir()), "hypothesis wrote nothing: nothing proven"


def test_connector_modules_are_found_in_the_current_directory(tmp_path: Path) -> None:
    """`feed-harness verify --connector MODULE:ATTR` imports a module of the directory it
    runs in (after the installed ones): a user's file there, or, in this repository's root,
    the faulty connectors the reproduce commands name."""
    (tmp_path / "mine.py").write_text("from harness.reference import ReferenceConnector as Mine\n")
    command = Path(sys.executable).with_name("feed-harness")
    for cwd, spec, code in (
        (tmp_path, "mine:Mine", 0),
        (ROOT, "tests.conformance.faulty:ErrorOnEmptyBatch", 1),
    ):
        done = subprocess.run(
            [str(command), "verify", "--connector", spec, "--clauses", "BATCH-EMPTY"],
            cwd=cwd,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == code, done.stdout + done.stderr
