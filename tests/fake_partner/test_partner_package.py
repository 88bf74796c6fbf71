"""The ``fake_partner`` package: the dependency rule, and its lazily imported names."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import fake_partner

PACKAGE = Path(fake_partner.__file__).resolve().parent
MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_contracts_or_harness(module: Path) -> None:
    """The fake partner knows nothing of mediarithmics (the architecture's dependency rule),
    also under ``TYPE_CHECKING`` and inside functions."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    assert not [name for name in found if name.split(".")[0] in ("contracts", "harness")]


def test_every_public_name_is_the_one_its_module_defines() -> None:
    assert sorted(fake_partner._ORIGIN) == sorted(fake_partner.__all__)
    for name in fake_partner.__all__:
        value = getattr(fake_partner, name)
        origin = importlib.import_module(f"fake_partner.{fake_partner._ORIGIN[name]}")
        assert value is getattr(origin, name), name
    assert set(fake_partner.__all__) <= set(dir(fake_partner))
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = fake_partner.no_such_name  # type: ignore[attr-defined]


def test_importing_one_piece_does_not_import_the_whole_partner() -> None:
    """What a connector process pays: the strict JSON reader alone, not the partner."""
    code = (
        "import sys, fake_partner.inbound; "
        "print(sorted(m for m in sys.modules if m.startswith('fake_partner')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert ast.literal_eval(out) == ["fake_partner", "fake_partner.inbound"]
