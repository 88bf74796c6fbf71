"""The pure parts: virtual clock, identifier rules, the match function, snapshot arithmetic."""

from __future__ import annotations

import hashlib
import threading

import pytest
from fp_support import sha

from fake_partner import (
    ClockError,
    ErrorCode,
    VirtualClock,
    audience_size,
    expected_matched,
    identifier_problem,
    is_targetable,
    isoformat,
    match_rate,
    match_score,
    matches,
    round_significant,
)


def test_clock_starts_at_2026_and_moves_only_when_told() -> None:
    clock = VirtualClock()
    assert clock.isoformat() == "2026-01-01T00:00:00.000Z"
    start = clock.now()
    assert clock.now() == start
    assert clock.advance(1.5) == start + 1.5
    assert isoformat(clock.now()) == "2026-01-01T00:00:01.500Z"
    assert clock.advance_to(start) == start + 1.5  # never goes back


@pytest.mark.parametrize("seconds", [-1.0, float("inf"), float("nan")])
def test_clock_refuses_to_go_back_or_to_infinity(seconds: float) -> None:
    clock = VirtualClock()
    with pytest.raises(ClockError, match="seconds"):
        clock.advance(seconds)
    assert clock.isoformat() == "2026-01-01T00:00:00.000Z"


def test_clock_is_thread_safe() -> None:
    clock = VirtualClock(start=0)

    def tick() -> None:
        for _ in range(2000):
            clock.advance(1)

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.now() == 8000


@pytest.mark.parametrize(
    ("type_", "value", "code"),
    [
        ("EMAIL_SHA256", "someone@example.com", ErrorCode.PII_NOT_HASHED),
        ("PARTNER_USER_ID", "a@b", ErrorCode.PII_NOT_HASHED),
        ("EMAIL", "someone@example.com", ErrorCode.PII_NOT_HASHED),
        ("EMAIL_SHA256", sha("x").upper(), ErrorCode.INVALID_SHA256_FORMAT),
        ("PHONE_SHA256", "+33612345678", ErrorCode.INVALID_SHA256_FORMAT),
        ("EMAIL_SHA256", sha("x")[:63], ErrorCode.INVALID_SHA256_FORMAT),
        ("MAID", "not-a-uuid", ErrorCode.INVALID_MAID),
        ("MAID", "123e4567e89b12d3a456426614174000", ErrorCode.INVALID_MAID),
        ("PARTNER_USER_ID", "", ErrorCode.INVALID_PARTNER_USER_ID),
        ("PARTNER_USER_ID", "x" * 257, ErrorCode.INVALID_PARTNER_USER_ID),
        ("PARTNER_USER_ID", "tab\there", ErrorCode.INVALID_PARTNER_USER_ID),
        ("EMAIL", "plain", ErrorCode.UNSUPPORTED_IDENTIFIER_TYPE),
    ],
)
def test_invalid_identifiers_have_their_code(type_: str, value: str, code: str) -> None:
    problem = identifier_problem(type_, value)
    assert problem is not None
    assert problem[0] == code
    if "@" in value:
        assert value not in problem[1]  # the message never repeats raw PII


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("EMAIL_SHA256", sha("x")),
        ("PHONE_SHA256", sha("+33612345678")),
        ("MAID", "123e4567-e89b-12d3-a456-426614174000"),
        ("MAID", "123E4567-E89B-12D3-A456-426614174000"),
        ("PARTNER_USER_ID", "u"),
        ("PARTNER_USER_ID", "x" * 256),
    ],
)
def test_valid_identifiers(type_: str, value: str) -> None:
    assert identifier_problem(type_, value) is None


def test_match_score_is_the_documented_formula() -> None:
    for seed, value in [(0, "a"), (42, sha("user-1")), (-3, "é")]:
        digest = hashlib.sha256(f"{seed}:{value}".encode()).digest()
        assert match_score(value, seed) == int.from_bytes(digest[:8], "big") / 2**64


def test_match_rate_follows_probability_and_seed() -> None:
    values = [sha(f"user-{i}") for i in range(4000)]
    assert expected_matched(values, 0.0, 1) == 0
    assert expected_matched(values, 1.0, 1) == 4000
    matched = expected_matched(values, 0.6, 1)
    assert 0.57 * 4000 < matched < 0.63 * 4000
    assert expected_matched(values, 0.6, 2) != matched  # another seed, another draw
    low = {v for v in values if matches(v, 0.3, 1)}
    high = {v for v in values if matches(v, 0.6, 1)}
    assert low < high  # a higher probability only adds matches


def test_match_rate_rounds_half_up_to_4_decimals() -> None:
    assert match_rate(0, 0) == 0
    assert match_rate(3, 1) == 0.3333
    assert match_rate(3, 2) == 0.6667
    assert match_rate(20000, 1) == 0.0001  # 0.00005 rounds up, not to even
    assert match_rate(5, 5) == 1.0


def test_audience_size_two_significant_digits_and_privacy_floor() -> None:
    assert round_significant(1234) == 1200
    assert round_significant(1250) == 1300
    assert round_significant(155) == 160
    assert round_significant(99) == 99
    assert round_significant(987_654) == 990_000
    assert audience_size(99, 100) is None
    assert audience_size(100, 100) == 100
    assert audience_size(1234, 100) == 1200
    assert audience_size(5, 0) == 5


def test_targetable_needs_ready_or_updating_and_100_matched() -> None:
    assert is_targetable("READY", 100, 100)
    assert is_targetable("UPDATING", 150, 100)
    assert not is_targetable("READY", 99, 100)
    assert not is_targetable("READY", None, 100)
    assert not is_targetable("FAILED", 1000, 100)
    assert not is_targetable("BUILDING", 1000, 100)
