"""The trace: one order across legs, nesting by sequence, redaction when recorded."""

from __future__ import annotations

import hashlib
import json
import threading

from harness.redaction import MASK, Redactor
from harness.trace import BODY_BUDGET, BODY_CAP, TRUNCATED_PREFIX, Exchange, Trace

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


# --- bounded evidence -------------------------------------------------------------------------


def _ok(trace: Trace, body: bytes, status: int = 200, path: str = "/v1/x") -> Exchange:
    return trace.record("connector->partner", "POST", f"https://p{path}", [], body, status=status)


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def test_every_exchange_has_a_compact_record_of_its_bodies() -> None:
    trace = Trace()
    body = b'{"operations": [1, 2, 3]}'
    exchange = trace.record(
        "connector->partner", "POST", "https://p/v1/x", [], body, status=200, response_body=b"<b>"
    )
    assert (exchange.request_size, exchange.response_size) == (len(body), 3)
    assert exchange.request_digest == _digest(body)
    assert exchange.response_digest == _digest(b"<b>")
    assert exchange.request_is_json is True
    assert exchange.response_is_json is False
    assert not exchange.truncated
    assert not exchange.evicted
    assert exchange.request_body == body
    assert exchange.evidence()["request"] == {
        "size": len(body),
        "sha256": _digest(body),
        "truncated": False,
        "json": True,
        "masked": [],
    }


def test_json_null_is_json_and_an_empty_body_is_not() -> None:
    trace = Trace()
    exchange = _ok(trace, b"null")
    assert exchange.request_json() is None
    assert exchange.request_is_json is True
    assert exchange.response_is_json is False  # no body


def test_a_body_over_the_cap_keeps_a_prefix_and_a_trailer_but_is_judged_whole() -> None:
    trace = Trace(body_cap=1000)
    big = json.dumps({"message": "x" * (TRUNCATED_PREFIX + 5000)}).encode()
    exchange = trace.record(
        "platform->connector", "POST", "http://c/v1/x", [], b"{}", status=200, response_body=big
    )
    assert exchange.response_truncated
    assert not exchange.request_truncated
    assert exchange.response_size == len(big)
    assert exchange.response_digest == _digest(big)
    assert exchange.response_is_json is True  # judged on the whole body when recorded
    assert exchange.response_json() is None  # the prefix alone is no longer parsed
    assert exchange.response_body.startswith(big[:TRUNCATED_PREFIX])
    assert len(exchange.response_body) < TRUNCATED_PREFIX + 200
    trailer = exchange.response_body[TRUNCATED_PREFIX:].decode()
    assert f"{len(big)} bytes" in trailer
    assert _digest(big) in trailer
    assert MASK not in trailer  # nothing was masked
    assert trace.held_bytes == len(exchange.response_body) + 2


def test_a_secret_masked_past_the_cap_is_still_named_and_the_mask_still_found() -> None:
    redactor = Redactor()
    redactor.add_secret(SECRET, "client_secret")
    trace = Trace(redactor=redactor, body_cap=1000)
    big = b"a" * (TRUNCATED_PREFIX * 2) + f" leaked {SECRET}".encode()
    exchange = trace.record(
        "platform->connector", "GET", "http://c/v1/x", [], b"", status=200, response_body=big
    )
    assert exchange.response_truncated
    assert exchange.response_masked == ("client_secret",)
    assert "response_body" in exchange.redacted
    assert SECRET.encode() not in exchange.response_body
    # what SECRET-NO-LEAK looks for: the part is marked redacted and holds the mask
    assert MASK.encode() in exchange.response_body
    assert exchange.response_is_json is False
    # the digest is of the redacted whole body, never of the secret
    assert exchange.response_digest == _digest(big.replace(SECRET.encode(), MASK.encode()))


def test_masked_kinds_name_keys_and_learned_values() -> None:
    trace = Trace()
    trace.redactor.learn_from_token_answer(json.dumps({"access_token": ACCESS}).encode())
    exchange = trace.record(
        "connector->partner",
        "POST",
        "https://p/oauth/token",
        [],
        f"grant_type=refresh_token&refresh_token={REFRESH}".encode(),
        status=200,
        response_body=json.dumps({"note": f"a {ACCESS}", "status": "ok"}).encode(),
    )
    assert exchange.request_masked == ("refresh_token",)
    assert exchange.response_masked == ("access_token",)
    clean = _ok(trace, b'{"code": "INVALID_GRANT"}')
    assert clean.request_masked == ()


def test_beyond_the_budget_the_oldest_2xx_bodies_go_first() -> None:
    trace = Trace(body_budget=3000, keep_recent=0)
    first = _ok(trace, b"[" + b"1," * 498 + b"11]")  # 1,000 bytes
    error = _ok(trace, b"e" * 1000, status=500)
    second = _ok(trace, b"b" * 1000)
    assert trace.held_bytes == 3000
    assert not first.evicted
    third = _ok(trace, b"c" * 1000)
    assert first.evicted
    assert [error.evicted, second.evicted, third.evicted] == [False, False, False]
    assert trace.held_bytes == 3000
    # the compact record survives: size, digest, JSON or not; the bytes are gone
    assert first.request_body == b""
    assert first.request_size == 1000
    assert first.request_digest == _digest(b"[" + b"1," * 498 + b"11]")
    assert first.request_is_json is True
    assert first.request_json() is None
    assert first.evidence()["evicted"] is True
    fourth = _ok(trace, b"d" * 1000)
    assert second.evicted  # still a 2xx before the error
    assert not error.evicted
    assert error.request_body == b"e" * 1000
    assert not fourth.evicted


def test_once_only_errors_remain_the_oldest_go_but_the_recent_window_stays() -> None:
    trace = Trace(body_budget=2500, keep_recent=2)
    errors = [_ok(trace, bytes([65 + i]) * 1000, status=400 + i) for i in range(4)]
    assert [e.evicted for e in errors] == [True, True, False, False]
    assert trace.held_bytes == 2000
    window = [_ok(trace, b"w" * 1000, status=503) for _ in range(2)]
    assert not any(e.evicted for e in window)
    assert trace.held_bytes <= 2500


def test_an_open_exchange_and_a_failure_keep_their_bodies() -> None:
    trace = Trace(body_budget=1500, keep_recent=1)
    open_call = trace.begin("platform->connector", "POST", "http://c/v1/x", [], b"o" * 1000)
    failed = trace.begin("connector->partner", "POST", "https://p/v1/y", [], b"f" * 1000)
    failed.finish(200, [], b"not json")
    failed.fail("not-json", "answer is not JSON")
    _ok(trace, b"n" * 1000)
    assert not open_call.evicted
    assert open_call.request_body == b"o" * 1000
    assert not failed.evicted  # the most recent 2xx when it finished, a failure since
    assert failed.response_body == b"not json"
    assert trace.held_bytes > trace.body_budget  # nothing else could go


def test_the_most_recent_2xx_exchanges_stay_in_the_window() -> None:
    trace = Trace(body_budget=1000, keep_recent=2)
    calls = [_ok(trace, b"k" * 1000) for _ in range(5)]
    assert [e.evicted for e in calls] == [True, True, True, False, False]


def test_a_default_trace_keeps_conformance_bodies_whole() -> None:
    """The largest body a check judges (a partner upload over the 5 MiB limit) is whole,
    and a default verify's bodies (at most 10 MiB per run, measured) fit the budget."""
    trace = Trace()
    upload = json.dumps({"operations": ["x" * 100] * 60_000}).encode()  # about 6 MiB
    assert len(upload) > 5 * 1024 * 1024
    exchange = _ok(trace, upload, path="/v1/segments/1/members")
    assert not exchange.truncated
    assert exchange.request_body == upload
    assert len(exchange.request_json()["operations"]) == 60_000
    assert BODY_BUDGET >= 4 * 10 * 1024 * 1024
    assert BODY_CAP >= 5 * 1024 * 1024


def test_one_pattern_masks_secrets_that_contain_each_other_whole() -> None:
    redactor = Redactor(["abcd-1234", "abcd-1234-efgh"])
    assert redactor.text("x abcd-1234-efgh y abcd-1234 z") == f"x {MASK} y {MASK} z"
    assert redactor.body(b"abcd-1234-efgh/abcd-1234") == f"{MASK}/{MASK}".encode()
    body = b"nothing to hide"
    assert redactor.body_masked(body) == (body, ())
    assert redactor.body_masked(body)[0] is body


def test_headers_are_lower_cased_and_a_secret_in_any_value_is_masked() -> None:
    redactor = Redactor([SECRET])
    plain = [("Content-Type", "application/json"), ("X-Request-Id", "r-1")]
    assert redactor.headers(plain) == (
        ("content-type", "application/json"),
        ("x-request-id", "r-1"),
    )
    leaky = [("Content-Type", "application/json"), ("X-Echo", f"got {SECRET} here")]
    assert redactor.headers(leaky) == (
        ("content-type", "application/json"),
        ("x-echo", f"got {MASK} here"),
    )
    assert redactor.headers([("Cookie", "session=abc")]) == (("cookie", MASK),)
    assert redactor.headers([("authorization", "Bearer abc")]) == (
        ("authorization", f"Bearer {MASK}"),
    )
    trace = Trace(redactor=redactor)
    exchange = trace.record(
        "platform->connector", "GET", "http://c/v1/status", leaky, b"", status=200
    )
    assert exchange.redacted == ("request_headers",)
