"""Property-based fuzzing of the three served apps: any method, target, header and body bytes.

Each example sends one hostile request to the app (straight through ASGI) and asserts: no
5xx (but the plugin contract's own 500 ``Missing request body``), a JSON error in the
server's format for every 4xx, and no change of state by a refused request (at most its
own ledger or call record, and that one renderable). The ``fast`` profile runs 8 x its
``max_examples`` per server (200); ``HYPOTHESIS_PROFILE=thorough`` runs 8,000.
"""

from __future__ import annotations

from hostile_support import (
    RawRequest,
    connector_server,
    dialect_server,
    gateway_server,
    hostile_requests,
    partner_server,
)
from hypothesis import HealthCheck, given, settings

EXAMPLES = settings.default.max_examples * 8
_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PARTNER, _ = partner_server()
GATEWAY, _ = gateway_server()
LINKEDIN, _ = dialect_server("linkedin")
META, _ = dialect_server("meta")


@_SETTINGS
@given(request=hostile_requests(PARTNER.shape))
def test_partner_survives_any_request(request: RawRequest) -> None:
    PARTNER.attack(request)


@_SETTINGS
@given(request=hostile_requests(LINKEDIN.shape))
def test_linkedin_partner_survives_any_request(request: RawRequest) -> None:
    LINKEDIN.attack(request)


@_SETTINGS
@given(request=hostile_requests(META.shape))
def test_meta_partner_survives_any_request(request: RawRequest) -> None:
    META.attack(request)


@_SETTINGS
@given(request=hostile_requests(GATEWAY.shape))
def test_gateway_survives_any_request(request: RawRequest) -> None:
    GATEWAY.attack(request)


def test_connector_base_survives_any_request() -> None:
    with connector_server() as (server, _connector, _partner, _gateway):

        @_SETTINGS
        @given(request=hostile_requests(server.shape))
        def attack(request: RawRequest) -> None:
            server.attack(request)

        attack()
