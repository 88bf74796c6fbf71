"""A seed draws the same examples whatever modules the process has loaded.

Hypothesis may draw the literals of the "local" modules in ``sys.modules``; a verification
must not, or a ``-j`` worker and a replay command would see other examples than the run
they reproduce. These tests load a local module full of literals between two draws.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from harness.hypothesis_home import no_local_constants

MARKERS = [f"zq-local-marker-{i}" for i in range(60)] + [987654321 + i for i in range(60)]


def _draws() -> list[object]:
    seen: list[object] = []

    @seed(12345)
    @settings(max_examples=300, database=None, derandomize=False, deadline=None)
    @given(st.one_of(st.text(max_size=20), st.integers()))
    def collect(value: object) -> None:
        seen.append(value)

    collect()
    return seen


@pytest.fixture
def local_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module outside site-packages and outside any test directory: hypothesis counts it
    as local code and would collect its literals."""
    folder = tmp_path / "somewhere"
    folder.mkdir()
    name = "feed_harness_constants_probe"
    body = "\n".join(f"VALUE_{i} = {value!r}" for i, value in enumerate(MARKERS))
    (folder / f"{name}.py").write_text(body + "\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(folder))
    yield name
    sys.modules.pop(name, None)


def test_draws_do_not_change_when_a_local_module_is_loaded(local_module: str) -> None:
    with no_local_constants():
        before = _draws()
        importlib.import_module(local_module)
        after = _draws()
    assert before == after
    assert not set(MARKERS) & {v for v in after if isinstance(v, str | int)}


def test_without_the_guard_hypothesis_draws_the_local_literals(local_module: str) -> None:
    """The premise of the guard: hypothesis does draw them (if a future hypothesis stops,
    this fails and the guard can go)."""
    importlib.import_module(local_module)
    drawn = _draws()
    assert set(MARKERS) & {v for v in drawn if isinstance(v, str | int)}


def test_the_guard_restores_hypothesis_afterwards() -> None:
    from hypothesis.internal.conjecture import providers

    pool, cache = providers._get_local_constants, providers.CONSTANTS_CACHE
    with no_local_constants():
        assert providers.CONSTANTS_CACHE is not cache
    assert (providers._get_local_constants, providers.CONSTANTS_CACHE) == (pool, cache)
