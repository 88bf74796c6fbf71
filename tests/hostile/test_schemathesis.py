"""Schemathesis against the served apps, each judged by its own OpenAPI document.

- The plugin contract's document (``contracts.openapi``) on the served batched reference
  connector (its gateway and partner served on loopback too): requests are drawn from the
  document, feed and destination ids pointed at the ones the gateway serves.
- The partner's own document (``GET /openapi.json``) on the served partner, with a bearer
  token that reaches its accounts and path ids pointed at a ready segment half the time.

Checks: no server error, every answer matches its documented status and schema, and no
valid request refused. Where the contract itself maps a valid request to 4xx or 5xx (a
connector's ``no_eligible_identifier`` 400, ``not_implemented`` 400, connection's
``external_segment_not_ready_yet`` 502, a batch's ``RETRY`` 503) the check reads the
body's status, not the code; random OAuth credentials are refused by design (400
``invalid_grant``), so the token and authorize routes skip only the acceptance check.
Positive data only, ``MAX_EXAMPLES`` per operation (6, or 60 under
``HYPOTHESIS_PROFILE=thorough``): about 20 s for both documents.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from contracts.openapi import openapi_document
from contracts.routes import ROUTES, SDK_ERROR_CODE, route_for_path
from fake_partner import Partner, serve
from fake_partner.openapi import openapi_document as partner_document
from harness.gateway import FeedSetup, Gateway, serve_asgi, serve_gateway
from harness.reference import ReferenceConnector
from harness.sdk import PluginSettings

MAX_EXAMPLES = 60 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 6
FEED = "feed-1"
DESTINATION = "dest-1"
_CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"mode": "positive"},
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)
_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)

CONNECTOR_SCHEMA = schemathesis.openapi.from_dict(openapi_document(), config=_CONFIG)
PARTNER_SCHEMA = schemathesis.openapi.from_dict(partner_document(), config=_CONFIG)


# --- the served reference connector ---------------------------------------------------------


@pytest.fixture(scope="module")
def connector_url() -> Iterator[str]:
    partner = Partner({"provisioning_delay": 0, "rate_limit_per_minute": 1_000_000})
    secrets = partner.credentials
    gateway = Gateway()
    gateway.add_feed(FeedSetup(FEED, properties={"partner_account_id": "acc-1"}))
    gateway.set_credentials(DESTINATION, "OAUTH2", {"refresh_token": secrets.refresh_token})
    with serve(partner) as served_partner, serve_gateway(gateway) as served_gateway:
        gateway.set_configuration_file(
            "technical_config",
            {"partner_endpoint": served_partner.base_url, "partner_api_version": "v1"},
        )
        gateway.set_configuration_file(
            "credentials",
            {
                "client_id": secrets.client_id,
                "client_secret": secrets.client_secret,
                "refresh_token": secrets.refresh_token,
            },
        )
        settings_ = PluginSettings(
            gateway_host=served_gateway.host,
            gateway_port=served_gateway.port,
            worker_id=gateway.worker_id,
            authentication_token=gateway.token,
        )
        with serve_asgi(ReferenceConnector(settings_)) as served:
            yield served.base_url


_TAGS = (
    ("user_point_id", "USER_POINT"),
    ("user_account_id", "USER_ACCOUNT"),
    ("hash", "USER_EMAIL"),
    ("vector_id", "USER_AGENT"),
)


@CONNECTOR_SCHEMA.hook
def map_body(context: schemathesis.HookContext, body: Any) -> Any:
    """Point a drawn request at the feed and destination the gateway serves.

    Also tags untagged ``user_identifiers`` items: the contract's document lists ``type``
    as optional (it has a default), but the models' discriminated union requires it, so
    the document accepts items the contract's models refuse (reported, not ours to fix).
    """
    if isinstance(body, dict):
        if "feed_id" in body:
            body["feed_id"] = FEED
        if "feed_destination_id" in body:
            body["feed_destination_id"] = DESTINATION
        if isinstance(body.get("context"), dict):
            body["context"]["feed_id"] = FEED
        for item in body.get("user_identifiers") or ():
            if isinstance(item, dict) and "type" not in item:
                item["type"] = next((tag for key, tag in _TAGS if key in item), "USER_DEVICE_POINT")
    return body


def _body(response: schemathesis.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def no_server_error_outside_the_contract(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A 5xx only as the contract answers: a JSON body whose ``status`` the route maps to
    that code (502 not ready, 503 RETRY, 500 error), or the SDK's 500 ``status: error``
    of a feed route's handler. Never a crash (non-JSON, unmapped status, other code)."""
    if response.status_code < 500:
        return None
    body = _body(response)
    status = body.get("status") if isinstance(body, dict) else None
    target = route_for_path(case.method, case.path)
    where = f"{case.method} {case.path} answered {response.status_code}"
    assert target is not None, where
    assert isinstance(status, str), f"{where} without a JSON status: {response.content[:300]!r}"
    feed_route = target.method == "POST" and target.request_model is not None
    if status == "error" and feed_route:
        expected = SDK_ERROR_CODE
    else:
        assert status in target.status_codes, f"{where} with unmapped status {status!r}"
        expected = target.code_for(status)
    assert response.status_code == expected, f"{where}: status {status!r} maps to {expected}"
    return None


def no_valid_request_refused_by_the_base(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A feed route's 4xx to a valid request carries a contract status (e.g.
    ``no_eligible_identifier``, ``not_implemented``), never the base's refusal."""
    target = route_for_path(case.method, case.path)
    if target is None or target.request_model is None or target.method != "POST":
        return None  # base routes: their 4xx are documented answers (PUT log_level, no level)
    if 400 <= response.status_code < 500:
        body = _body(response)
        status = body.get("status") if isinstance(body, dict) else None
        assert status not in (None, "error"), (
            f"{case.method} {case.path} refused a valid request: {response.content[:300]!r}"
        )
    return None


@CONNECTOR_SCHEMA.parametrize()
@_SETTINGS
def test_reference_connector_meets_the_plugin_contract_openapi(
    case: schemathesis.Case, connector_url: str
) -> None:
    case.call_and_validate(
        base_url=connector_url,
        excluded_checks=[schemathesis.checks.not_a_server_error, positive_data_acceptance],
        additional_checks=[
            no_server_error_outside_the_contract,
            no_valid_request_refused_by_the_base,
        ],
        timeout=30,
    )


# --- the served partner -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def partner_world() -> Iterator[tuple[str, str, str]]:
    partner = Partner({"provisioning_delay": 0, "rate_limit_per_minute": 1_000_000})
    token = partner.seed_access_token(["acc-1", "acc-2"])
    with serve(partner) as served:
        with httpx.Client(base_url=served.base_url) as client:
            created = client.post(
                "/v1/accounts/acc-1/segments",
                json={"name": "ready"},
                headers={"Authorization": f"Bearer {token}"},
            )
        yield served.base_url, token, created.json()["id"]


_READY: dict[str, str] = {}


@PARTNER_SCHEMA.hook
def map_path_parameters(context: schemathesis.HookContext, path: Any) -> Any:
    """Half the drawn ids become ones that exist (a ready segment, account acc-1)."""
    if isinstance(path, dict) and _READY:
        if "segment_id" in path and hash(path["segment_id"]) % 2:
            path["segment_id"] = _READY["segment_id"]
        if "account_id" in path and hash(path["account_id"]) % 2:
            path["account_id"] = "acc-1"
    return path


_OAUTH = ("/oauth/token", "/oauth/authorize")


@PARTNER_SCHEMA.parametrize()
@_SETTINGS
def test_partner_meets_its_own_openapi(
    case: schemathesis.Case, partner_world: tuple[str, str, str]
) -> None:
    base_url, token, segment_id = partner_world
    _READY["segment_id"] = segment_id
    excluded = [positive_data_acceptance] if case.path in _OAUTH else []
    case.call_and_validate(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        excluded_checks=excluded,
        timeout=30,
    )


def test_the_served_partner_publishes_the_document_it_is_tested_against(
    partner_world: tuple[str, str, str],
) -> None:
    base_url, _token, _segment = partner_world
    answer = httpx.get(base_url + "/openapi.json")
    assert answer.status_code == 200
    assert answer.json() == partner_document()
    assert {(r.method, r.path) for r in ROUTES} <= {
        (method.upper(), path)
        for path, item in CONNECTOR_SCHEMA.raw_schema["paths"].items()
        for method in item
    }
