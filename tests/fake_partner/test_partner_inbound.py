"""``fake_partner.inbound``: what every server reads of a raw request, unit by unit."""

from __future__ import annotations

import pytest

from fake_partner.inbound import (
    MAX_HEADERS,
    MAX_JSON_DEPTH,
    MAX_TARGET_BYTES,
    UnreadableRequestError,
    check_headers,
    check_method,
    check_target,
    decimal,
    json_value,
    renderable,
)


@pytest.mark.parametrize(
    "body",
    [
        b'"\\ud800"',
        b'"\\udc00"',
        b'["\\ud800x"]',
        b"\xff",
        b'"\xed\xa0\x80"',
        b"NaN",
        b"[Infinity]",
        b"1e400",
        b'{"a": -1e309}',
        b"9" * 4301,
        b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
        b"[" * 10_000 + b"]" * 10_000,
        b"{",
    ],
)
def test_json_value_refuses_what_cannot_be_rendered_back(body: bytes) -> None:
    with pytest.raises(UnreadableRequestError) as caught:
        json_value(body, "the body")
    assert caught.value.status == 400
    assert caught.value.message.startswith("the body ")


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (b'"\\ud83d\\ude00"', "\U0001f600"),
        (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, None),
        (b"1e300", 1e300),
        (b"9" * 4300, int("9" * 4300)),
        (b'{"a": [1, 2.5, true, null]}', {"a": [1, 2.5, True, None]}),
    ],
    ids=["surrogate-pair", "max-depth", "1e300", "4300-digits", "plain"],
)
def test_json_value_reads_strict_json(body: bytes, value: object) -> None:
    parsed = json_value(body)
    if value is not None:
        assert parsed == value


@pytest.mark.parametrize(
    ("target", "status"),
    [
        (b"*", 400),
        (b"http://h/x", 400),
        (b"", 400),
        (b"/a b", 400),
        (b"/caf\xc3\xa9", 400),
        (b"/%ED%A0%80", 400),
        (b"/x?q=%ff", 400),
        (b"/x?q=%0a", 400),
        (b"/%7f", 400),
        (b"/" + b"a" * MAX_TARGET_BYTES, 414),
    ],
)
def test_check_target_refuses(target: bytes, status: int) -> None:
    with pytest.raises(UnreadableRequestError) as caught:
        check_target(target)
    assert caught.value.status == status


@pytest.mark.parametrize(
    "target", [b"/", b"/v1/a%C3%A9?x=%C3%A9+b&y=", b"/a/%2F/b", b"/" + b"a" * 8000]
)
def test_check_target_accepts_origin_form_utf8(target: bytes) -> None:
    check_target(target)


def test_check_headers_names_the_header_but_never_its_value() -> None:
    with pytest.raises(UnreadableRequestError) as caught:
        check_headers([(b"Authorization", b"Basic \xe9secret")])
    assert "'authorization'" in caught.value.message
    assert "secret" not in caught.value.message
    with pytest.raises(UnreadableRequestError) as many:
        check_headers([(b"x", b"v")] * (MAX_HEADERS + 1))
    assert many.value.status == 431
    with pytest.raises(UnreadableRequestError):
        check_headers([(b"bad name", b"v")])
    check_headers([(b"accept", b"*/*"), (b"x-tab", b"a\tb")])


@pytest.mark.parametrize("method", ["get", "G T", "", "A" * 40, "\u00e9"])
def test_check_method_refuses_non_tokens(method: str) -> None:
    with pytest.raises(UnreadableRequestError):
        check_method(method)


def test_decimal_takes_ascii_digits_only() -> None:
    assert decimal("42") == 42
    for raw in ("\u00b2", "\u0663", "-1", "", "1" * 19, "1.0", " 1"):
        assert decimal(raw) is None


def test_renderable_replaces_lone_surrogates_only() -> None:
    assert renderable("caf\u00e9") == "caf\u00e9"
    assert renderable("a\ud800b").encode() == "a\ufffdb".encode()
