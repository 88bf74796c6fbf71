"""What a server reads of a raw HTTP request before it looks at it: method, target, headers,
and JSON bodies decoded strictly.

Shared by the partner, the fake gateway and the connector base; each turns an
:class:`UnreadableRequestError` into its own error format. Everything here is bounded in
time and memory and changes nothing: a refused request is refused before any state is
touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

import pydantic_core

__all__ = [
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_INTEGER_DIGITS",
    "MAX_JSON_DEPTH",
    "MAX_TARGET_BYTES",
    "UnreadableRequestError",
    "check_headers",
    "check_method",
    "check_request",
    "check_target",
    "decimal",
    "json_value",
    "renderable",
]

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects a JSON body may have."""
MAX_INTEGER_DIGITS = 4300
"""Longest JSON integer: Python's int/str conversion limit, enforced by the parser (jiter).
Values a server uses are bounded further by its models (clock seconds, scenario knobs)."""
MAX_TARGET_BYTES = 8 * 1024
"""Longest request target (path and query), as most servers and proxies allow."""
MAX_HEADERS = 100
MAX_HEADER_BYTES = 32 * 1024
"""Most header lines, and most bytes of all header names and values together."""

_METHOD = re.compile(rb"[A-Z][A-Z0-9_-]{0,31}")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VALUE = re.compile(rb"[\t\x20-\x7e]*")
_TARGET = re.compile(rb"/[\x21-\x7e]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class UnreadableRequestError(ValueError):
    """A request refused before it is read: the HTTP status, the part at fault and the fix.

    ``message`` never quotes a header value (it may be a secret), only its name.
    """

    def __init__(self, status: int, part: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.part = part
        self.message = message


def check_method(method: str | bytes) -> str:
    """The method as a string: upper-case token letters, at most 32 of them."""
    raw = method.encode("latin-1", "replace") if isinstance(method, str) else method
    if not _METHOD.fullmatch(raw):
        raise UnreadableRequestError(
            400,
            "method",
            f"method {raw[:32].decode('ascii', 'replace')!r} is not an HTTP method: use an "
            "upper-case token such as GET or POST",
        )
    return raw.decode("ascii")


def check_target(target: bytes) -> None:
    """An origin-form target (``/path?query``) of printable ASCII whose escapes are UTF-8.

    ``*`` (OPTIONS) and absolute-form targets (``http://host/path``, meant for proxies)
    are refused, as are targets over :data:`MAX_TARGET_BYTES` (414) and escapes that
    decode to invalid UTF-8 or to control characters.
    """
    if len(target) > MAX_TARGET_BYTES:
        raise UnreadableRequestError(
            414,
            "target",
            f"the request target is {len(target)} bytes; the limit is {MAX_TARGET_BYTES}: "
            "shorten the path or the query",
        )
    if not _TARGET.fullmatch(target):
        if not target.startswith(b"/"):
            shown = target[:40].decode("ascii", "replace")
            raise UnreadableRequestError(
                400,
                "target",
                f"the request target {shown!r} is not origin-form: send '/path?query' "
                "('*' and absolute 'http://host/path' targets are not served)",
            )
        offset = next(i for i, byte in enumerate(target) if not 0x21 <= byte <= 0x7E)
        raise UnreadableRequestError(
            400,
            "target",
            f"the request target has byte 0x{target[offset]:02x} at offset {offset}: "
            "percent-encode spaces, control characters and non-ASCII (UTF-8, then %XX)",
        )
    path, _, query = target.partition(b"?")
    for part, raw in (("path", path), ("query", query.replace(b"+", b" "))):
        try:
            text = unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise UnreadableRequestError(
                400,
                part,
                f"the {part}'s percent-escapes are not UTF-8: encode characters as UTF-8 "
                "bytes, then %XX each byte",
            ) from None
        if _CONTROL.search(text):
            raise UnreadableRequestError(
                400,
                part,
                f"the {part} decodes to a control character (%00-%1F or %7F): remove it",
            )


def check_headers(headers: Iterable[tuple[bytes, bytes]]) -> None:
    """At most :data:`MAX_HEADERS` headers and :data:`MAX_HEADER_BYTES` in all (431 past
    that); names are tokens; values are printable ASCII (a 400 names the header only)."""
    size = 0
    for count, (name, value) in enumerate(headers, start=1):
        size += len(name) + len(value)
        if count > MAX_HEADERS or size > MAX_HEADER_BYTES:
            raise UnreadableRequestError(
                431,
                "headers",
                f"more than {MAX_HEADERS} headers or {MAX_HEADER_BYTES} bytes of headers: "
                "send fewer or shorter headers",
            )
        if not _TOKEN.fullmatch(name):
            raise UnreadableRequestError(
                400,
                "headers",
                f"header name {name[:40].decode('ascii', 'replace')!r} is not a token: use "
                "letters, digits and -",
            )
        if not _VALUE.fullmatch(value):
            raise UnreadableRequestError(
                400,
                f"header {name.decode('ascii').lower()}",
                f"header {name.decode('ascii').lower()!r} has a non-ASCII or control byte: "
                "send header values as printable ASCII (percent- or base64-encode the rest)",
            )


def check_request(
    method: str | bytes, target: bytes, headers: Iterable[tuple[bytes, bytes]]
) -> str:
    """:func:`check_method`, :func:`check_target` and :func:`check_headers`; the method."""
    checked = check_method(method)
    check_target(target)
    check_headers(headers)
    return checked


def json_value(body: bytes, what: str = "request body") -> Any:
    """``body`` as JSON, strictly: UTF-8 only, no lone surrogate, no NaN or Infinity, every
    float finite (``1e400`` is refused, not read as infinity), integers of at most
    :data:`MAX_INTEGER_DIGITS` digits, nesting at most :data:`MAX_JSON_DEPTH` deep.
    Anything else is a 400 :class:`UnreadableRequestError`."""
    try:
        value = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as error:
        raise UnreadableRequestError(
            400,
            what,
            f"{what} is not strict JSON ({error}): send UTF-8 JSON without lone surrogates, "
            f"NaN or Infinity, at most {MAX_JSON_DEPTH} levels deep",
        ) from None
    _check_tree(value, what)
    return value


def _check_tree(value: Any, what: str) -> None:
    """Depth and finite floats, iteratively (``type() is``: this runs on every JSON body,
    so it is kept to one pass with no call per node)."""
    kind = type(value)
    if kind is not dict and kind is not list:
        _check_tree([value], what)
        return
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        if depth >= MAX_JSON_DEPTH:
            raise UnreadableRequestError(
                400,
                what,
                f"{what} nests arrays and objects more than {MAX_JSON_DEPTH} deep: flatten it",
            )
        for child in item.values() if type(item) is dict else item:
            kind = type(child)
            if kind is str:
                continue
            if kind is dict or kind is list:
                push((child, depth + 1))
            elif kind is float and child - child != 0.0:  # inf - inf is nan, never 0
                raise UnreadableRequestError(
                    400,
                    what,
                    f"{what} has a number too large for a double (like 1e400): send finite numbers",
                )


def decimal(raw: str) -> int | None:
    """``raw`` as a non-negative integer if it is 1 to 18 ASCII digits, else None.

    ``str.isdigit`` accepts ``²`` and other Unicode digits that ``int`` refuses.
    """
    if 0 < len(raw) <= 18 and raw.isascii() and raw.isdigit():
        return int(raw)
    return None


def renderable(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so UTF-8 can always encode it."""
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub("\ufffd", text)
