"""Strict, bounded scalar types of scenario values: ``"3"`` is not an int, ``true`` is not
1, and every number is finite and within a range the partner can always compute and render.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

__all__ = ["MAX_COUNT", "MAX_SECONDS", "Count", "Flag", "Fraction", "Seconds", "Seed"]

MAX_SECONDS = 10 * 365 * 86400
"""Longest duration a scenario may set (ten years): lifetimes, delays, latencies."""
MAX_COUNT = 1_000_000_000
"""Largest count a scenario may set (limits, floors, quotas, call numbers)."""

Seconds = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=MAX_SECONDS)]
"""A duration in seconds: an int or a finite float from 0 to :data:`MAX_SECONDS`."""
Count = Annotated[int, Field(strict=True, ge=0, le=MAX_COUNT)]
"""A whole number from 0 to :data:`MAX_COUNT` (never a string, a float or a boolean)."""
Fraction = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=1)]
"""A probability or fraction from 0 to 1."""
Seed = Annotated[int, Field(strict=True, ge=-(2**63), le=2**63 - 1)]
"""A 64-bit integer seed."""
Flag = Annotated[bool, Field(strict=True)]
"""``true`` or ``false`` only."""
