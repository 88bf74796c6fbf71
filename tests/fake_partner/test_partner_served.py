"""The partner served on loopback: the same rules over a real socket, admin, drops, threads."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from fp_support import adds, bearer, code_of, refresh, sha

from fake_partner import ConnectionDroppedError, Partner, Scenario, ServedPartner, serve


@pytest.fixture
def served() -> Iterator[ServedPartner]:
    with serve(Partner(Scenario(presets=("ambiguous-drop",)))) as running:
        yield running


def test_full_flow_over_loopback(served: ServedPartner) -> None:
    assert served.base_url.startswith("http://127.0.0.1:")
    assert served.port > 0
    seen: list[int] = []
    served.partner.add_observer(
        lambda request, outcome: seen.append(
            outcome.status_code if isinstance(outcome, httpx.Response) else -1
        )
    )
    with httpx.Client(base_url=served.base_url) as client:
        token = refresh(client, served.partner)
        created = client.post(
            "/v1/accounts/acc-1/segments", headers=bearer(token), json={"name": "s"}
        )
        assert created.status_code == 201
        segment = created.json()["id"]
        not_ready = client.get(f"/v1/segments/{segment}", headers=bearer(token))
        assert code_of(not_ready) == "SEGMENT_NOT_READY"
        advanced = client.post(
            "/_admin/clock/advance", json={"seconds": 60}, headers=served.admin_headers()
        )
        assert advanced.status_code == 200
        values = [sha(f"u{i}") for i in range(300)]
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            client.post(
                f"/v1/segments/{segment}/members",
                headers=bearer(token),
                json={"operations": adds(values)},
            )
        again = client.post(
            f"/v1/segments/{segment}/members",
            headers=bearer(token),
            json={"operations": adds(values)},
        )
        assert again.json()["accepted"] == 300
        client.post("/_admin/clock/advance", json={"seconds": 30}, headers=served.admin_headers())
        shown = client.get(f"/v1/segments/{segment}", headers=bearer(token)).json()
        assert shown["status"] == "READY"
        assert shown["input_count"] == 300
        state = client.get("/_admin/state", headers=served.admin_headers()).json()
        assert state["segments"][0]["live_input_count"] == 300
        ledger = client.get("/_admin/ledger", headers=served.admin_headers()).json()["entries"]
        assert [e["status"] for e in ledger] == [200, 201, 404, None, 200, 200]
        assert ledger[3]["dropped"] is True
        assert ledger[3]["applied"] is True
        assert client.delete(f"/v1/segments/{segment}", headers=bearer(token)).status_code == 204
    assert seen == [200, 201, 404, -1, 200, 200, 204]


def test_admin_refuses_without_token_over_http(served: ServedPartner) -> None:
    with httpx.Client(base_url=served.base_url) as client:
        for path in ("/_admin/state", "/_admin/ledger", "/_admin/scenario"):
            answer = client.get(path)
            assert answer.status_code == 401
            assert code_of(answer) == "ADMIN_TOKEN_REQUIRED"
        assert client.post("/_admin/reset").status_code == 401
        assert (
            client.post("/_admin/reset", headers={"X-Admin-Token": served.admin_token}).status_code
            == 200
        )


def test_oversized_and_malformed_bodies_over_http() -> None:
    partner = Partner()
    token = partner.seed_access_token(["acc-1"])
    with (
        serve(partner) as running,
        httpx.Client(base_url=running.base_url, headers=bearer(token)) as client,
    ):
        segment = client.post("/v1/accounts/acc-1/segments", json={"name": "s"}).json()["id"]
        partner.clock.advance(60)
        big = json.dumps({"operations": adds([sha("a")]), "pad": "x" * (5 * 1024 * 1024)})
        too_large = client.post(f"/v1/segments/{segment}/members", content=big.encode())
        assert too_large.status_code == 413
        assert code_of(too_large) == "PAYLOAD_TOO_LARGE"
        broken = client.post(f"/v1/segments/{segment}/members", content=b"{oops")
        assert code_of(broken) == "INVALID_REQUEST"
        assert client.get("/v1/accounts").status_code == 200
    assert partner.members(segment) == frozenset()


def test_concurrent_uploads_lose_and_double_nothing() -> None:
    partner = Partner(Scenario(provisioning_delay=0, rate_limit_per_minute=100_000))
    token = partner.seed_access_token(["acc-1"])
    threads_count, requests_each, ops_each = 6, 15, 40
    errors: list[BaseException] = []
    with (
        serve(partner) as running,
        httpx.Client(base_url=running.base_url, headers=bearer(token)) as setup,
    ):
        shared = setup.post("/v1/accounts/acc-1/segments", json={"name": "shared"}).json()["id"]

        def work(worker: int) -> None:
            try:
                with httpx.Client(base_url=running.base_url, headers=bearer(token)) as client:
                    for request in range(requests_each):
                        values = [f"w{worker}-r{request}-{i}" for i in range(ops_each)]
                        values[0] = f"common-{request}"  # the same id from every thread
                        body = {"operations": adds(values, "PARTNER_USER_ID")}
                        answer = client.post(f"/v1/segments/{shared}/members", json=body)
                        assert answer.status_code == 200, answer.text
                        assert answer.json()["accepted"] == ops_each
            except BaseException as error:  # reported by the main thread
                errors.append(error)

        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads_count)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(60)
    assert errors == []
    uploads = partner.ledger.uploads(shared)
    assert len(uploads) == threads_count * requests_each
    assert len(partner.ledger) == threads_count * requests_each + 1
    assert sorted(e.sequence for e in partner.ledger.entries) == list(
        range(1, threads_count * requests_each + 2)
    )
    assert partner.ledger.accepted_per_segment() == {
        shared: threads_count * requests_each * ops_each
    }
    expected = {("PARTNER_USER_ID", f"common-{r}") for r in range(requests_each)} | {
        ("PARTNER_USER_ID", f"w{w}-r{r}-{i}")
        for w in range(threads_count)
        for r in range(requests_each)
        for i in range(1, ops_each)
    }
    assert partner.members(shared) == expected
    assert partner.segment(shared)["live_input_count"] == len(expected)


def test_asgi_app_without_our_server_fails_loudly_on_drop() -> None:
    partner = Partner(Scenario(presets=("dropped-connection",), provisioning_delay=0))
    token = partner.seed_access_token(["acc-1"])

    async def run() -> tuple[int, type[BaseException] | None]:
        transport = httpx.ASGITransport(app=partner.asgi_app())
        async with httpx.AsyncClient(
            transport=transport, base_url="http://partner.local", headers=bearer(token)
        ) as client:
            created = await client.post("/v1/accounts/acc-1/segments", json={"name": "s"})
            segment = created.json()["id"]
            try:
                await client.post(
                    f"/v1/segments/{segment}/members", json={"operations": adds([sha("a")])}
                )
            except ConnectionDroppedError as error:
                return created.status_code, type(error)
            return created.status_code, None

    assert asyncio.run(run()) == (201, ConnectionDroppedError)
    assert partner.ledger.entries[-1].dropped


def test_stop_soon_begins_the_shutdown_and_the_block_still_waits_for_it() -> None:
    """``stop_soon()`` (what a platform with several servers calls on all of them first)
    makes the server stop taking connections without the block having ended; the block's
    end then returns with the server gone."""
    with serve(Partner(Scenario())) as running, httpx.Client(base_url=running.base_url) as client:
        assert client.get("/v1/health").status_code < 500
        running.stop_soon()
        refused = False
        for _ in range(400):  # at most ~20 s: uvicorn's shutdown takes a few ticks
            try:
                httpx.get(f"{running.base_url}/v1/health", timeout=1)
            except httpx.TransportError:
                refused = True
                break
            threading.Event().wait(0.05)
        assert refused, "the server still took connections after stop_soon()"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{running.base_url}/v1/health", timeout=1)
