"""A feed's whole life through the reference connector, the fake gateway and the fake partner.

create -> connect (not ready, then ready) -> initial load -> live UPSERT/DELETE ->
troubleshoot, in-process under every partner preset, then over loopback through a
connector process; and connectors that hang or crash are reported within the timeout.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass

import httpx
import pytest

from fake_partner import Partner, list_presets, serve
from harness.drivers import (
    CommandDriver,
    ConnectorStartError,
    PlatformEnv,
    Receive,
    Scope,
    Send,
    free_port,
)
from harness.generators import make_users
from harness.platform import GATEWAY_URL, PARTNER_URL, Platform
from harness.simulator import Feed, SimulatorSettings
from harness.users import SimUser

SETTINGS = SimulatorSettings(max_creation_attempts=3)
CONVERGING = sorted(set(list_presets()) - {"mixed-invalid-items", "invalid-grant"})


@dataclass
class Run:
    """What one lifecycle sent: the updates in order."""

    updates: list[tuple[str, SimUser]]


def run_lifecycle(
    platform: Platform, n_users: int = 240, *, ready_at_once: bool = False
) -> tuple[Feed, Run]:
    """create -> connect -> initial load -> live changes -> troubleshoot, asserting each step."""
    feed = platform.new_feed(partner_account_id="acc-1")
    created = feed.create()
    assert created.ok, str(created)
    connected = feed.connect()
    assert connected.ok, str(connected)
    if not ready_at_once:
        assert connected.attempts >= 2, "a new partner segment is not ready at once"
    assert [a.status for a in connected.answers[:-1]] == [502] * (connected.attempts - 1)
    users = make_users(n_users, seed=11, shared_emails=0.05)
    run = Run([])
    feed.upsert(users)
    feed.flush()
    run.updates += [("UPSERT", u) for u in users]
    leaving, returning = users[:30], users[200:210]
    feed.delete(leaving)
    feed.upsert(returning)
    feed.flush()
    run.updates += [("DELETE", u) for u in leaving] + [("UPSERT", u) for u in returning]
    return feed, run


def assert_accounting_exact(feed: Feed, run: Run, *, errors: int = 0) -> None:
    """The session's totals, recomputed from the users sent."""
    eligible = sum(1 for _, u in run.updates if u.eligible_partner_identifiers(feed.identifying))
    accounting = feed.accounting
    assert accounting.users_sent == len(run.updates)
    assert accounting.operations == Counter(op for op, _ in run.updates)
    assert accounting.updates_answered == {
        "ok": eligible,
        "no_eligible_identifier": len(run.updates) - eligible,
    }
    assert accounting.update_retries == 0
    assert accounting.delivery_items == {"BATCH_DELIVERY": eligible}
    assert accounting.items_delivered == {"OK": eligible}
    assert accounting.items_reported_success == eligible - errors
    assert accounting.items_reported_error == errors
    assert accounting.items_dead_lettered == 0
    assert feed.pending == 0
    assert sum(len(b.items) for b in feed.batches) == eligible


def assert_troubleshoot_shows_the_partner_segment(platform: Platform, feed: Feed) -> None:
    platform.clock.advance(120)  # let the partner process the uploads
    for _ in range(3):  # a flaky partner may fail one call: the user asks again
        answer = feed.troubleshoot()
        if answer.status == 200:
            break
    assert (answer.status, answer.body_status) == (200, "ok"), answer.describe()
    audience = answer.json["data"]["destination_audience"]
    segment = platform.partner.segment(platform.partner_segment_id(feed.feed_id))
    assert audience["id"] == segment["id"]
    assert audience["input_count"] == segment["input_count"] == len(feed.partner_membership())
    assert answer.json["data"]["match_rate"] == segment["match_rate"]


def assert_no_secret_in_trace(platform: Platform) -> None:
    report = json.dumps(platform.trace.to_jsonable())
    credentials = platform.partner.credentials
    for secret in (credentials.client_secret, credentials.refresh_token, platform.gateway.token):
        assert secret not in report
    token_answers = platform.trace.exchanges(leg="connector->partner", path="/oauth/token")
    assert token_answers
    assert all(e.response_json()["access_token"] == "***" for e in token_answers if e.status == 200)


@pytest.mark.parametrize("scenario", [None, *CONVERGING])
def test_lifecycle_converges_under_transient_faults(scenario: str | None) -> None:
    with Platform(scenario=scenario, settings=SETTINGS) as platform:
        feed, run = run_lifecycle(platform, ready_at_once=scenario == "failed-segment")
        assert feed.partner_membership() == feed.expected_membership()
        assert_accounting_exact(feed, run)
        assert_troubleshoot_shows_the_partner_segment(platform, feed)
        assert_no_secret_in_trace(platform)
        legs = Counter(e.leg for e in platform.trace)
        assert set(legs) == {"platform->connector", "connector->gateway", "connector->partner"}
        creation = platform.trace.exchanges(path="/v1/external_segment_creation")[0]
        assert {e.leg for e in platform.trace.children(creation)} == {
            "connector->gateway",
            "connector->partner",
        }


def test_per_item_rejections_are_accounted_as_errors() -> None:
    with Platform(scenario="mixed-invalid-items", settings=SETTINGS) as platform:
        feed, run = run_lifecycle(platform)
        segment_id = platform.partner_segment_id(feed.feed_id)
        rejected = [
            op
            for e in platform.partner.ledger.uploads(segment_id)
            for op in e.operations
            if op.code is not None
        ]
        assert rejected
        assert_accounting_exact(feed, run, errors=len(rejected))
        missing = feed.expected_membership() - feed.partner_membership()
        rejected_ids = {identifier for op in rejected for identifier in op.identifiers}
        assert missing
        assert missing <= rejected_ids


def test_refused_refresh_token_ends_the_run_at_creation_with_the_reason() -> None:
    with Platform(scenario="invalid-grant") as platform:
        feed = platform.new_feed()
        outcome = feed.create()
        assert not outcome.ok
        assert outcome.http_status == 500
        assert "re-authentication" in (outcome.message or "")
        assert feed.state == "FAILED"
        assert platform.partner.segment_ids() == []


# --------------------------------------------------------------------------- over loopback


def _connector_command() -> list[str]:
    """The reference connector as a process, served by the CLI like an SDK plugin."""
    return [sys.executable, "-m", "harness", "serve-connector"]


@pytest.mark.parametrize("scenario", [None, "token-expiry-mid-upload"])
def test_lifecycle_through_a_connector_process(scenario: str | None) -> None:
    with Platform(cmd=_connector_command(), scenario=scenario, settings=SETTINGS) as platform:
        assert platform.served
        assert platform.partner_url.startswith("http://127.0.0.1:")
        feed, run = run_lifecycle(platform, n_users=120)
        assert feed.partner_membership() == feed.expected_membership()
        assert_accounting_exact(feed, run)
        assert_troubleshoot_shows_the_partner_segment(platform, feed)
        assert_no_secret_in_trace(platform)


def test_lifecycle_with_a_connector_started_elsewhere_at_a_url() -> None:
    gateway_port, token = free_port(), "url-mode-token-123"
    elsewhere = CommandDriver(_connector_command())
    elsewhere.start(PlatformEnv("127.0.0.1", gateway_port, "worker-9", token))
    try:
        with Platform(
            url=elsewhere.base_url,
            gateway_port=gateway_port,
            worker_id="worker-9",
            authentication_token=token,
            settings=SETTINGS,
        ) as platform:
            feed, run = run_lifecycle(platform, n_users=60)
            assert feed.partner_membership() == feed.expected_membership()
            assert_accounting_exact(feed, run)
    finally:
        elsewhere.stop()


def test_a_connector_process_that_dies_is_reported_as_a_crash() -> None:
    with Platform(cmd=_connector_command(), settings=SETTINGS) as platform:
        feed = platform.new_feed()
        assert feed.create().ok
        process = platform.driver.process  # type: ignore[union-attr]
        process.kill()
        process.wait(5)
        outcome = feed.connect()
        assert not outcome.ok
        assert outcome.status in ("crash", "connection")


def test_a_connector_process_that_never_starts_is_reported_with_its_output() -> None:
    command = [
        sys.executable,
        "-c",
        "print('cannot reach the licence server'); raise SystemExit(4)",
    ]
    started = time.perf_counter()
    with pytest.raises(ConnectorStartError) as caught, Platform(cmd=command):
        pass
    assert time.perf_counter() - started < 10
    assert "cannot reach the licence server" in str(caught.value)
    assert "exited with code 4" in str(caught.value)


# --------------------------------------------------------------------------- bad connectors


async def hanging_connector(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await asyncio.Event().wait()


async def crashing_connector(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        raise RuntimeError("NullPointerException in onExternalSegmentCreation")


@pytest.mark.parametrize(
    ("connector", "status"), [(hanging_connector, "timeout"), (crashing_connector, "crash")]
)
def test_hanging_and_crashing_connectors_are_reported_within_the_timeout(
    connector: object, status: str
) -> None:
    settings = SimulatorSettings(call_timeout=0.5)
    with Platform(connector=connector, settings=settings) as platform:
        feed = platform.new_feed()
        started = time.perf_counter()
        outcome = feed.create()
        assert time.perf_counter() - started < 5  # bounded by call_timeout, never a hang
        assert not outcome.ok
        assert outcome.status == status
        assert feed.state == "FAILED"
        (exchange,) = platform.trace.exchanges(leg="platform->connector")
        assert exchange.failure == status


# --------------------------------------------------------------------------- respx scope


def test_in_process_routing_touches_only_the_partner_and_the_gateway() -> None:
    other = Partner()
    with Platform() as platform, serve(other) as served, httpx.Client(trust_env=False) as client:
        mocked = client.get(f"{PARTNER_URL}/v1/accounts")
        assert mocked.status_code == 401
        assert platform.trace.exchanges(leg="connector->partner", path="/v1/accounts")
        real = client.get(f"{served.base_url}/v1/accounts")  # passes through to a real socket
        assert real.status_code == 401
        assert len(other.ledger) == 1
        assert len(platform.partner.ledger) == 1
        gateway = client.get(f"{GATEWAY_URL}/v1/audience_segment_external_feeds/1")
        assert gateway.status_code == 401  # no basic auth
        assert asyncio.run(_asgi_get(other, "/v1/accounts")) == 401  # ASGITransport: not patched
        assert len(other.ledger) == 2
        assert len(platform.partner.ledger) == 1


async def _asgi_get(partner: Partner, path: str) -> int:
    transport = httpx.ASGITransport(app=partner.asgi_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://asgi") as client:
        return (await client.get(path)).status_code


def test_the_connector_is_told_the_partners_real_operation_limit() -> None:
    """technical_config carries the scenario's operation limit, so the reference connector
    splits there and the partner accepts every upload."""
    from fake_partner import Limits, Scenario

    with Platform(scenario=Scenario(limits=Limits(max_operations=150))) as platform:
        config = json.loads(platform.gateway.configuration_file("technical_config") or b"{}")
        assert config["max_operations_per_request"] == 150
        feed = platform.new_feed()
        assert feed.create().ok
        assert feed.connect().ok
        feed.upsert(make_users(400, seed=1))
        feed.flush()
        uploads = [e for e in platform.partner.ledger.entries if e.path.endswith("/members")]
        assert len(uploads) >= 3
        assert all(e.status == 200 and len(e.operations) <= 150 for e in uploads)
        assert feed.partner_membership() == feed.expected_membership()
