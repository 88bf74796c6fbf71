"""The platform->connector leg's HTTP/1.1 client (llhttp through httptools), against raw
loopback servers that answer exactly the bytes each test scripts."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from harness.drivers.http1 import Http1Client, HttpFailureError, Reply

Handler = Callable[[socket.socket, bytes], bool]
"""Answers one request (its raw head and body) on the connection; False closes it."""

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += conn.recv(65536)
    return head + b"\r\n\r\n" + rest


@contextmanager
def server(handler: Handler) -> Iterator[tuple[str, list[bytes], list[int]]]:
    """A server on 127.0.0.1: yields its URL, the requests it read, and one entry per
    connection it accepted."""
    listener = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []
    connections: list[int] = []
    done = threading.Event()

    def serve_one(conn: socket.socket) -> None:
        with conn:
            while not done.is_set():
                try:
                    request = _read_request(conn)
                except OSError:
                    return
                if request is None:
                    return
                requests.append(request)
                if not handler(conn, request):
                    return

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            connections.append(1)
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", requests, connections
    finally:
        done.set()
        listener.close()


def answer(raw: bytes, keep_open: bool = True) -> Handler:
    def handle(conn: socket.socket, _: bytes) -> bool:
        try:
            conn.sendall(raw)
        except OSError:  # the client stopped reading: what a test may want
            return False
        return keep_open

    return handle


def never_answer(hold: threading.Event) -> Handler:
    """Reads the request and answers nothing until ``hold`` is set (at most 5 s)."""

    def handle(conn: socket.socket, _: bytes) -> bool:
        hold.wait(5)
        return False

    return handle


def call(client: Http1Client, path: str = "/v1/x", body: bytes = b"{}", **limits: float) -> Reply:
    options = {"timeout": 2.0, "keep": 1024, "most": 4096, **limits}
    return client.request(
        "POST",
        path,
        body,
        [("content-type", "application/json")],
        timeout=options["timeout"],
        keep=int(options["keep"]),
        most=int(options["most"]),
    )


def test_calls_share_one_keep_alive_connection_and_send_their_body() -> None:
    with server(answer(OK)) as (url, requests, connections):
        client = Http1Client(url, user_agent="feed-harness/test")
        replies = [call(client, body=b'{"n":%d}' % n) for n in range(3)]
        client.close()
    assert [r.status for r in replies] == [200, 200, 200]
    assert [r.body for r in replies] == [b"{}"] * 3
    assert len(connections) == 1
    head, _, body = requests[2].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/x HTTP/1.1\r\n")
    assert b"content-length: 7" in head
    assert b"accept-encoding: identity" in head
    assert body == b'{"n":2}'


def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    with server(answer(OK, keep_open=False)) as (url, _, connections):
        client = Http1Client(url, user_agent="t")
        first = call(client)
        time.sleep(0.05)  # the server has closed its side by now
        second = call(client)
        client.close()
    assert first.status == second.status == 200
    assert len(connections) == 2


def test_connection_close_answers_are_read_to_their_end() -> None:
    raw = b'HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{"a": 1}'
    with server(answer(raw, keep_open=False)) as (url, _, _):
        client = Http1Client(url, user_agent="t")
        reply = call(client)
        client.close()
    assert reply.body == b'{"a": 1}'


def test_a_path_prefix_in_the_base_url_is_kept() -> None:
    with server(answer(OK)) as (url, requests, _):
        client = Http1Client(url + "/plugin/", user_agent="t")
        call(client, path="/v1/status")
        client.close()
    assert requests[0].startswith(b"POST /plugin/v1/status HTTP/1.1")


def test_bytes_that_are_not_http_are_named_not_http() -> None:
    with server(answer(b"\x00\xff SSH-2.0-OpenSSH garbage\r\n\r\n", keep_open=False)) as (
        url,
        _,
        _,
    ):
        client = Http1Client(url, user_agent="t")
        with pytest.raises(HttpFailureError) as caught:
            call(client)
    assert caught.value.kind == "not-http"
    assert "the answer began b'\\x00\\xff SSH-2.0-OpenSSH" in caught.value.detail


def test_a_connection_closed_without_an_answer_is_a_connection_failure() -> None:
    with server(lambda conn, _: False) as (url, _, _):
        client = Http1Client(url, user_agent="t")
        with pytest.raises(HttpFailureError) as caught:
            call(client)
    assert caught.value.kind == "connection"
    assert "without an answer" in caught.value.detail


def test_an_answer_cut_short_is_a_connection_failure_not_garbage() -> None:
    raw = b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"partial'
    with server(answer(raw, keep_open=False)) as (url, _, _):
        client = Http1Client(url, user_agent="t")
        with pytest.raises(HttpFailureError) as caught:
            call(client)
    assert caught.value.kind == "connection"
    assert "during the answer" in caught.value.detail


def test_a_refused_connection_is_a_connection_failure() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    client = Http1Client(f"http://127.0.0.1:{port}", user_agent="t")
    with pytest.raises(HttpFailureError) as caught:
        call(client)
    assert caught.value.kind == "connection"
    assert "ConnectionRefusedError" in caught.value.detail


def test_no_answer_in_time_is_a_timeout() -> None:
    hold = threading.Event()
    with server(never_answer(hold)) as (url, _, _):
        client = Http1Client(url, user_agent="t")
        started = time.monotonic()
        with pytest.raises(HttpFailureError) as caught:
            call(client, timeout=0.3)
        took = time.monotonic() - started
        hold.set()
    assert caught.value.kind == "timeout"
    assert "no answer within 0.3 s" in caught.value.detail
    assert took < 2.0


def test_a_head_trickled_a_byte_at_a_time_is_cut_off_at_the_deadline() -> None:
    """A per-read timeout would wait as long as each byte comes in time; the deadline is
    for the whole answer."""
    stop = threading.Event()

    def trickle(conn: socket.socket, _: bytes) -> bool:
        for byte in b"HTTP/1.1 200 OK\r\nx-slow: " + b"a" * 1000:
            if stop.wait(0.05):
                return False
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                return False
        return False

    with server(trickle) as (url, _, _):
        client = Http1Client(url, user_agent="t")
        started = time.monotonic()
        with pytest.raises(HttpFailureError) as caught:
            call(client, timeout=0.5)
        took = time.monotonic() - started
        stop.set()
    assert caught.value.kind == "timeout"
    assert took < 2.0


def test_a_body_still_coming_at_the_deadline_is_late_with_its_status() -> None:
    stop = threading.Event()

    def slow_body(conn: socket.socket, _: bytes) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
        while not stop.wait(0.05):
            try:
                conn.sendall(b"x")
            except OSError:
                return False
        return False

    with server(slow_body) as (url, _, _):
        client = Http1Client(url, user_agent="t")
        reply = call(client, timeout=0.4)
        stop.set()
    assert reply.late is True
    assert reply.status == 200
    assert 0 < reply.total < 1000


def test_a_large_announced_body_is_not_read_past_what_is_kept() -> None:
    size = 5 * 1024 * 1024
    raw = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size + b"x" * size
    with server(answer(raw, keep_open=False)) as (url, _, _):
        client = Http1Client(url, user_agent="t")
        reply = call(client, keep=1000, most=16_000)
        client.close()
    assert reply.body == b"x" * 1000
    assert reply.total == size  # announced, not read


def test_a_large_chunked_body_is_counted_up_to_most_then_dropped() -> None:
    piece = b"y" * 4096
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(64)) + b"0\r\n\r\n"
    raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunks
    with server(answer(raw, keep_open=False)) as (url, _, _):
        client = Http1Client(url, user_agent="t")
        reply = call(client, keep=1000, most=20_000)
        client.close()
    assert reply.body == b"y" * 1000
    assert 20_000 < reply.total < 64 * 4096
    assert reply.late is False


def test_interrupt_ends_a_call_under_way_from_another_thread() -> None:
    hold = threading.Event()
    with server(never_answer(hold)) as (url, _, _):
        client = Http1Client(url, user_agent="t")
        threading.Timer(0.2, client.interrupt).start()
        started = time.monotonic()
        with pytest.raises(HttpFailureError) as caught:
            call(client, timeout=5.0)
        took = time.monotonic() - started
        hold.set()
    assert caught.value.kind == "connection"
    assert took < 2.0


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:1", "http://", "127.0.0.1:8080"])
def test_a_base_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="is not an http"):
        Http1Client(url, user_agent="t")


def test_a_1xx_answer_is_read_past_to_the_real_one() -> None:
    raw = b"HTTP/1.1 100 Continue\r\nx-early: 1\r\n\r\n" + OK
    with server(answer(raw)) as (url, _, connections):
        client = Http1Client(url, user_agent="t")
        replies = [call(client), call(client)]
        client.close()
    assert [(r.status, r.body) for r in replies] == [(200, b"{}")] * 2
    assert ("x-early", "1") not in replies[0].headers
    assert len(connections) == 1


def test_headers_are_lower_case_names_and_trimmed_values_in_order() -> None:
    raw = b"HTTP/1.1 204 No Content\r\nX-Trace:  a1 \r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n"
    with server(answer(raw)) as (url, _, connections):
        client = Http1Client(url, user_agent="t")
        first, second = call(client), call(client)
        client.close()
    assert first.status == 204
    assert first.body == b""
    assert first.headers == [("x-trace", "a1"), ("set-cookie", "a=1"), ("set-cookie", "b=2")]
    assert second.status == 204
    assert len(connections) == 1  # a 204 has no body: the connection carries the next call


def test_bytes_after_the_answer_make_the_next_call_use_a_new_connection() -> None:
    with server(answer(OK + b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")) as (
        url,
        _,
        connections,
    ):
        client = Http1Client(url, user_agent="t")
        first, second = call(client), call(client)
        client.close()
    assert first.body == second.body == b"{}"
    assert len(connections) == 2


def test_an_http_1_0_answer_is_not_kept_alive() -> None:
    raw = b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n{}"
    with server(answer(raw)) as (url, _, connections):
        client = Http1Client(url, user_agent="t")
        call(client)
        call(client)
        client.close()
    assert len(connections) == 2


def test_a_head_without_end_is_not_http_past_its_limit() -> None:
    raw = b"HTTP/1.1 200 OK\r\n" + b"x-pad: " + b"a" * (200 * 1024)
    with server(answer(raw, keep_open=False)) as (url, _, _):
        client = Http1Client(url, user_agent="t")
        with pytest.raises(HttpFailureError) as caught:
            call(client)
    assert caught.value.kind == "not-http"
    assert "head" in caught.value.detail


def test_a_status_line_that_is_not_http_names_what_is_wrong() -> None:
    with server(answer(b"HTTP/1.1 abc OK\r\n\r\n", keep_open=False)) as (url, _, _):
        client = Http1Client(url, user_agent="t")
        with pytest.raises(HttpFailureError) as caught:
            call(client)
    assert caught.value.kind == "not-http"
    assert caught.value.detail  # llhttp's reason, in words
    assert not caught.value.detail.startswith("HPE_")


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/v1/a b", []),
        ("GET", "/v1/\r\nx: y", []),
        ("G ET", "/v1/x", []),
        ("HEAD", "/v1/x", []),
        ("GET", "/v1/x", [("x-a", "1\r\nx-b: 2")]),
        ("GET", "/v1/x", [("x a", "1")]),
    ],
)
def test_a_request_http_cannot_carry_is_refused_before_anything_is_sent(
    method: str, path: str, headers: list[tuple[str, str]]
) -> None:
    with server(answer(OK)) as (url, requests, connections):
        client = Http1Client(url, user_agent="t")
        with pytest.raises(ValueError, match="cannot send"):
            client.request(method, path, b"", headers, timeout=1.0, keep=10, most=10)
        client.close()
    assert requests == []
    assert connections == []
