"""The trace: one order across legs, nesting by sequence, redaction when recorded."""

from __future__ import annotations

import json
import threading

from harness.redaction import MASK, Redactor
from harness.trace import Trace

SECRET = "s3cr3t-client-secret"
REFRESH = "refresh-token-abcdef"
ACCESS = "access-token-xyz-123"


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        return self.t


def test_seq_is_taken_at_start_so_outbound_calls_nest_inside_their_cause() -> None:
    clock = _Clock()
    trace = Trace(clock.now)
    outer = trace.begin("platform->connector", "POST", "http://c/v1/user_segment_update")
    inner = trace.begin("connector->partner", "POST", "https://partner.test/v1/segments/1/members")
    clock.t = 130.0
    inner.finish(200, [("content-type", "application/json")], b'{"accepted": 1}')
    gateway = trace.record(
        "connector->gateway", "GET", "http://gw/v1/x", [], b"", status=200, response_body=b"{}"
    )
    outer.finish(200, [], b'{"status": "ok"}')
    later = trace.begin("platform->connector", "POST", "http://c/v1/batch_update")

    assert [e.seq for e in trace] == [1, 2, 4, 7]
    assert (inner.end_seq, gateway.end_seq, outer.end_seq) == (3, 5, 6)
    assert trace.children(outer) == [inner, gateway]
    assert trace.children(inner) == []
    assert later not in trace.children(outer)
    assert inner.virtual_start == 100.0
    assert inner.virtual_end == 130.0
    assert inner.real_seconds is not None
    assert inner.real_seconds >= 0
    assert not later.done


def test_filters_by_leg_path_method_and_prefix() -> None:
    trace = Trace()
    trace.record("platform->connector", "POST", "http://c/v1/troubleshoot", [], b"{}", status=200)
    trace.record("connector->partner", "GET", "https://p/v1/segments/9?x=1", [], b"", status=200)
    trace.record("connector->partner", "POST", "https://p/oauth/token", [], b"", status=200)

    assert len(trace.exchanges(leg="connector->partner")) == 2
    assert [e.path for e in trace.exchanges(path="/v1/segments/9")] == ["/v1/segments/9"]
    assert len(trace.exchanges(method="post")) == 2
    assert len(trace.exchanges(path_prefix="/v1/")) == 2
    assert trace.exchanges(leg="connector->gateway") == []


def test_bodies_parse_lazily_and_failures_are_kept() -> None:
    trace = Trace()
    exchange = trace.begin("platform->connector", "POST", "http://c/v1/x", [], b'{"a": 1}')
    assert exchange.request_json() == {"a": 1}
    exchange.finish(200, [("Content-Type", "text/html")], b"<html>")
    exchange.fail("not-json", "answer is not JSON")
    assert exchange.response_json() is None
    assert exchange.response_header("content-type") == "text/html"
    assert exchange.failure == "not-json"
    assert exchange.to_jsonable()["response"]["body"] == "<html>"


def test_secrets_are_redacted_when_recorded_and_never_reach_the_report() -> None:
    redactor = Redactor([SECRET, REFRESH])
    trace = Trace(redactor=redactor)
    token_call = trace.begin(
        "connector->partner",
        "POST",
        "https://partner.test/oauth/token",
        [("Authorization", "Basic d29ya2VyOnRva2Vu"), ("content-type", "x-www-form")],
        f"grant_type=refresh_token&refresh_token={REFRESH}&client_secret={SECRET}".encode(),
    )
    answer = json.dumps({"access_token": ACCESS, "expires_in": 3600}).encode()
    redactor.learn_from_token_answer(answer)
    token_call.finish(200, [], answer)
    trace.record(
        "connector->partner",
        "POST",
        f"https://partner.test/v1/x?access_token={ACCESS}",
        [("authorization", f"Bearer {ACCESS}")],
        json.dumps({"note": f"token is {ACCESS}", "password": "hunter22"}).encode(),
        status=401,
        response_body=b'{"error": {"code": "EXPIRED_ACCESS_TOKEN"}}',
    )
    trace.record(
        "platform->connector",
        "POST",
        "http://c/v1/authentication",
        [],
        b'{"params": {"code": "auth-code-1", "state": "st"}}',
        status=200,
        response_body=json.dumps({"status": "ok", "message": f"leaked {SECRET}"}).encode(),
    )

    report = json.dumps(trace.to_jsonable())
    for secret in (SECRET, REFRESH, ACCESS, "d29ya2VyOnRva2Vu", "hunter22", "auth-code-1"):
        assert secret not in report
        assert all(secret.encode() not in e.request_body for e in trace)
        assert all(secret.encode() not in e.response_body for e in trace)
    first, second, third = trace.exchanges()
    assert first.request_header("authorization") == f"Basic {MASK}"
    assert second.request_header("authorization") == f"Bearer {MASK}"
    assert second.response_json() == {"error": {"code": "EXPIRED_ACCESS_TOKEN"}}
    assert third.request_json() == {"params": {"code": MASK, "state": "st"}}
    # the Authorization header alone is no leak; the token answer is masked by key
    assert first.redacted == ("request_body", "response_body")
    assert second.redacted == ("url", "request_body")
    assert third.redacted == ("request_body", "response_body")
    assert "state" in report


def test_secret_learned_after_recording_is_still_masked_in_the_report() -> None:
    trace = Trace()
    trace.record("connector->partner", "GET", "http://p/x", [], b"late-secret-value", status=200)
    trace.redactor.add_secret("late-secret-value")
    assert "late-secret-value" not in json.dumps(trace.to_jsonable())


def test_concurrent_recording_gives_unique_ordered_seqs() -> None:
    trace = Trace()

    def work() -> None:
        for _ in range(200):
            trace.begin("connector->gateway", "GET", "http://gw/x").finish(200, [], b"")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seqs = [e.seq for e in trace]
    assert len(seqs) == 800
    assert seqs == sorted(seqs)
    assert len({e.end_seq for e in trace} | set(seqs)) == 1600


def test_an_error_code_in_json_is_kept_an_oauth_code_is_masked() -> None:
    redactor = Redactor()
    error = b'{"status":"error","message":"re-authenticate","code":"invalid_grant"}'
    assert redactor.body(error) == error
    oauth = b'{"grant_type":"authorization_code","code":"c-123","redirect_uri":"https://x"}'
    assert b"c-123" not in redactor.body(oauth)
    assert b"c-123" not in redactor.body(b"grant_type=authorization_code&code=c-123")
    assert "c-123" not in redactor.url("https://x/cb?code=c-123&state=s")
