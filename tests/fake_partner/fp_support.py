"""Helpers shared by the fake partner's tests (plain functions, imported by name)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import httpx

from fake_partner import Partner

BASE_URL = "https://partner.test"


def sha(text: str) -> str:
    """SHA-256 hex of ``text``: a valid EMAIL_SHA256/PHONE_SHA256 value."""
    return hashlib.sha256(text.encode()).hexdigest()


def op(action: str, *identifiers: tuple[str, str]) -> dict[str, Any]:
    """One upload operation."""
    return {"action": action, "identifiers": [{"type": t, "value": v} for t, v in identifiers]}


def adds(values: Iterable[str], type_: str = "EMAIL_SHA256") -> list[dict[str, Any]]:
    """One ADD operation per value."""
    return [op("ADD", (type_, value)) for value in values]


def removes(values: Iterable[str], type_: str = "EMAIL_SHA256") -> list[dict[str, Any]]:
    return [op("REMOVE", (type_, value)) for value in values]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refresh(client: httpx.Client, partner: Partner, refresh_token: str | None = None) -> str:
    """An access token from the seeded refresh token (asserts the grant succeeds)."""
    credentials = partner.credentials
    answer = client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token or credentials.refresh_token,
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
        },
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    assert isinstance(token, str)
    return token


def code_of(answer: httpx.Response) -> str:
    """The ``error.code`` of a partner error answer."""
    body = answer.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"status", "code", "message", "request_id", "details"}, error
    assert error["status"] == answer.status_code
    assert error["request_id"] == answer.headers["X-Request-Id"]
    code = error["code"]
    assert isinstance(code, str)
    return code


def create_segment(
    client: httpx.Client, token: str, name: str = "seg", account: str = "acc-1"
) -> str:
    answer = client.post(
        f"/v1/accounts/{account}/segments", headers=bearer(token), json={"name": name}
    )
    assert answer.status_code == 201, answer.text
    segment_id = answer.json()["id"]
    assert isinstance(segment_id, str)
    return segment_id


def ready_segment(
    client: httpx.Client, partner: Partner, token: str, name: str = "seg", account: str = "acc-1"
) -> str:
    """Create a segment and advance the clock past its provisioning delay."""
    segment_id = create_segment(client, token, name, account)
    partner.clock.advance(partner.effective_scenario.provisioning_delay)
    return segment_id


def upload(
    client: httpx.Client,
    token: str,
    segment_id: str,
    operations: list[dict[str, Any]],
    partial_failure: bool | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"operations": operations}
    if partial_failure is not None:
        body["partial_failure"] = partial_failure
    return client.post(f"/v1/segments/{segment_id}/members", headers=bearer(token), json=body)
