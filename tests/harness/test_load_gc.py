"""During a load the collector is tuned (survivors frozen, rare young collections) and
restored after, also when loads nest or fail."""

from __future__ import annotations

import gc

import pytest

from fake_partner.collector import LOAD_GC_THRESHOLDS, load_gc


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


def test_a_partner_request_is_handled_as_a_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 10,000-operation upload allocates like a load: the partner answers every request
    under the tuned collector (served, the harness's loads do not cover it)."""
    import httpx

    import fake_partner.partner as partner_module
    from fake_partner import Partner

    seen: list[tuple[int, int, int]] = []
    real = partner_module.respond

    def observed(partner: Partner, request: httpx.Request) -> object:
        seen.append(gc.get_threshold())
        return real(partner, request)

    monkeypatch.setattr(partner_module, "respond", observed)
    before = gc.get_threshold()
    Partner().respond(httpx.Request("GET", "https://partner.test/v1/accounts"))
    assert seen == [LOAD_GC_THRESHOLDS]
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_load_that_does_not_freeze_leaves_nothing_frozen() -> None:
    before = gc.get_threshold()
    with load_gc(freeze=False):
        assert gc.get_threshold() == LOAD_GC_THRESHOLDS
        assert gc.get_freeze_count() == 0
        with load_gc():  # inside another load: changes nothing
            assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
