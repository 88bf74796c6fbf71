"""The package's own rules: pydantic and the standard library only, a complete `__all__`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import contracts

PACKAGE = Path(contracts.__file__).parent
ALLOWED = {"pydantic", "contracts", *sys.stdlib_module_names}


@pytest.mark.parametrize("module", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_modules_import_only_pydantic_and_the_standard_library(module: Path) -> None:
    allowed = ALLOWED | ({"hypothesis"} if module.name == "strategies.py" else set())
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            roots = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots = {node.module.split(".")[0]}
        else:
            continue
        assert roots <= allowed, f"{module.name} imports {roots - allowed}"


def test_all_names_exist_and_are_unique() -> None:
    assert len(contracts.__all__) == len(set(contracts.__all__))
    for name in contracts.__all__:
        assert hasattr(contracts, name), name


def test_importing_contracts_does_not_import_hypothesis() -> None:
    code = "import sys, contracts; print('hypothesis' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"
