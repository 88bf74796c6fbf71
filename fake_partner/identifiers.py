"""Identifier validation and the deterministic match function.

Whether an identifier matches is a pure function of its value, the scenario's
``match_probability`` and its ``seed``, so any test (in any language) can compute the
expected match rate: SHA-256 of ``f"{seed}:{value}"`` (UTF-8), first 8 bytes read as a
big-endian unsigned integer, divided by 2**64; the identifier matches when that score is
strictly below ``match_probability``.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from typing import Any

from fake_partner.errors import ErrorCode

EMAIL_SHA256 = "EMAIL_SHA256"
PHONE_SHA256 = "PHONE_SHA256"
MAID = "MAID"
PARTNER_USER_ID = "PARTNER_USER_ID"
IDENTIFIER_TYPES: tuple[str, ...] = (EMAIL_SHA256, PHONE_SHA256, MAID, PARTNER_USER_ID)
SHA256_TYPES = frozenset({EMAIL_SHA256, PHONE_SHA256})
PARTNER_USER_ID_MAX_LENGTH = 256

_SHA256 = re.compile(r"[0-9a-f]{64}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TWO_POW_64 = float(2**64)


def identifier_problem(type_: str, value: str) -> tuple[str, str] | None:
    """``(code, message)`` when the identifier is refused, ``None`` when valid.

    The message never repeats the value: a refused value may be raw PII.
    """
    if "@" in value:
        return (
            ErrorCode.PII_NOT_HASHED,
            "value contains '@' (raw PII); send the SHA-256 of the normalised email "
            "as 64 lowercase hex characters",
        )
    if type_ in SHA256_TYPES:
        if _SHA256.fullmatch(value) is None:
            return (
                ErrorCode.INVALID_SHA256_FORMAT,
                f"{type_} value is not 64 lowercase hex characters (length {len(value)}); "
                "send hashlib.sha256(normalised).hexdigest()",
            )
        return None
    if type_ == MAID:
        if _UUID.fullmatch(value) is None:
            return (
                ErrorCode.INVALID_MAID,
                "MAID value is not a UUID (8-4-4-4-12 hex digits)",
            )
        return None
    if type_ == PARTNER_USER_ID:
        if not 1 <= len(value) <= PARTNER_USER_ID_MAX_LENGTH or not value.isprintable():
            return (
                ErrorCode.INVALID_PARTNER_USER_ID,
                f"PARTNER_USER_ID must be 1 to {PARTNER_USER_ID_MAX_LENGTH} printable "
                f"characters (got length {len(value)})",
            )
        return None
    return (
        ErrorCode.UNSUPPORTED_IDENTIFIER_TYPE,
        f"type {type_[:40]!r} is not one of: {', '.join(IDENTIFIER_TYPES)}",
    )


def is_valid_identifier(type_: str, value: str) -> bool:
    """True when the partner accepts this identifier."""
    return identifier_problem(type_, value) is None


@functools.lru_cache(maxsize=64)
def _seeded(seed: int) -> Any:
    """SHA-256 already fed with ``f"{seed}:"``; copying it saves hashing the prefix each time."""
    return hashlib.sha256(f"{seed}:".encode())


def match_score(value: str, seed: int) -> float:
    """The identifier's score in [0, 1): a pure function of value and seed."""
    hasher = _seeded(seed).copy()
    hasher.update(value.encode())
    return int.from_bytes(hasher.digest()[:8], "big") / _TWO_POW_64


def matches(value: str, match_probability: float, seed: int) -> bool:
    """Whether the partner matches this identifier value to one of its users."""
    return match_score(value, seed) < match_probability


def expected_matched(values: Iterable[str], match_probability: float, seed: int) -> int:
    """How many of ``values`` match: what ``matched_count`` will be for that membership."""
    return sum(1 for value in values if matches(value, match_probability, seed))


def item_rejected(value: str, fraction: float, seed: int) -> bool:
    """The seeded per-value draw of the ``rejected_items`` fault (``mixed-invalid-items``).

    Uses SHA-256 of ``f"{seed}:reject:{value}"`` like :func:`match_score`, so the same
    value is rejected on every retry (a permanent per-item error).
    """
    return match_score(f"reject:{value}", seed) < fraction
