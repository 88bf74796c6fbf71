"""The arithmetic of a segment's processed snapshot: match rate, audience size, targetable.

Pure functions, so tests and the harness compute the same numbers the partner shows.
Rounding is half-up (``Decimal.ROUND_HALF_UP``), the way other languages round by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

TARGETABLE_STATUSES = frozenset({"READY", "UPDATING"})


def match_rate(input_count: int, matched_count: int) -> float:
    """matched / input rounded half-up to 4 decimals; 0 when input is 0."""
    if input_count == 0:
        return 0.0
    ratio = Decimal(matched_count) / Decimal(input_count)
    return float(ratio.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def round_significant(number: int, digits: int = 2) -> int:
    """``number`` rounded half-up to ``digits`` significant digits (1234 -> 1200, 1250 -> 1300)."""
    if number == 0:
        return 0
    exponent = len(str(abs(number))) - digits
    if exponent <= 0:
        return number
    step = Decimal(10) ** exponent
    return int((Decimal(number) / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step)


def audience_size(matched_count: int, privacy_floor: int) -> int | None:
    """matched rounded to 2 significant digits, or ``None`` below the privacy floor."""
    if matched_count < privacy_floor:
        return None
    return round_significant(matched_count, 2)


def is_targetable(status: str, matched_count: int | None, targetable_floor: int) -> bool:
    """READY or UPDATING with at least ``targetable_floor`` matched members."""
    return (
        status in TARGETABLE_STATUSES
        and matched_count is not None
        and matched_count >= targetable_floor
    )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The counts taken when processing last completed."""

    input_count: int
    matched_count: int
    taken_at: float

    def numbers(self, privacy_floor: int) -> dict[str, int | float | None]:
        """The four wire fields this snapshot gives."""
        return {
            "input_count": self.input_count,
            "matched_count": self.matched_count,
            "match_rate": match_rate(self.input_count, self.matched_count),
            "audience_size": audience_size(self.matched_count, privacy_floor),
        }
