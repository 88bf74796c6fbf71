"""During a load the collector is tuned (survivors frozen, rare young collections) and
restored after, also when loads nest or fail."""

from __future__ import annotations

import gc

import pytest

from harness.simulator import LOAD_GC_THRESHOLDS, load_gc


def test_a_load_freezes_survivors_and_restores_the_collector_after() -> None:
    before = gc.get_threshold()
    survivor = [object()]
    with load_gc():
        assert gc.get_threshold() == LOAD_GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
        with load_gc():  # nested (a flush inside a load): still tuned after it ends
            pass
        assert gc.get_threshold() == LOAD_GC_THRESHOLDS
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert survivor


def test_a_failing_load_restores_the_collector() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), load_gc():
        raise RuntimeError("connector gone")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cyclic_garbage_made_during_a_load_is_still_collected() -> None:
    class Node:
        other: object = None

    with load_gc():
        a, b = Node(), Node()
        a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2
