"""The respx mounting: requests reach the partner, and respx's per-request look-up of the
side effect's signature does not recompute it."""

from __future__ import annotations

import inspect
from typing import Any

import httpx
import pytest
import respx
from fp_support import BASE_URL, bearer

from fake_partner import Partner
from fake_partner.mock import mount, side_effect


@pytest.fixture
def signature_computations(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every signature ``inspect`` computes from a function's code (not a stored one)."""
    computed: list[Any] = []
    original = inspect._signature_from_function  # type: ignore[attr-defined]

    def counting(*args: Any, **kwargs: Any) -> Any:
        computed.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(inspect, "_signature_from_function", counting)
    return computed


def test_side_effect_takes_only_the_request_and_keeps_its_signature() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    effect = side_effect(handle)
    assert inspect.getfullargspec(effect).args == ["request"]  # respx passes no `route`
    request = httpx.Request("GET", "https://partner.test/v1/accounts")
    assert effect(request).status_code == 204
    assert seen == [request]


def test_partner_requests_do_not_recompute_the_side_effect_signature(
    signature_computations: list[Any],
) -> None:
    partner = Partner()
    token = partner.seed_access_token(["acc-1"])
    router = respx.MockRouter(assert_all_called=False)
    route = mount(partner, router, BASE_URL)
    with router, httpx.Client(base_url=BASE_URL, headers=bearer(token)) as client:
        signature_computations.clear()
        for _ in range(3):
            assert client.get("/v1/accounts").status_code == 200
        assert route.call_count == 3  # the router forgets its calls when it stops
    assert signature_computations == []
