"""Fault rules: which requests a rule matches and what it does to them.

A rule's matching state (how many calls matched, how many times it fired, its seeded
random draw) lives in :class:`FaultEngine`, rebuilt whenever the scenario changes.
"""

from __future__ import annotations

import fnmatch
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fake_partner.bounds import Count, Flag, Fraction, Seconds

SEGMENT_STATUSES = ("PROVISIONING", "BUILDING", "READY", "UPDATING", "FAILED")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SegmentStatus = Literal["PROVISIONING", "BUILDING", "READY", "UPDATING", "FAILED"]

_DEFAULT_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


def default_code(status: int) -> str:
    """The error code a fault answers with when the rule names none."""
    return _DEFAULT_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "FAULT_INJECTED")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorEffect(_Strict):
    """Answer with an error instead of handling the request (nothing applies)."""

    kind: Literal["error"] = "error"
    status: int = Field(strict=True, ge=400, le=599)
    code: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    message: str | None = None
    retry_after: Seconds | None = None
    rate_limit_headers: Flag = False
    oauth_error: str | None = None


class LatencyEffect(_Strict):
    """The partner takes ``seconds`` to answer: advances the virtual clock, then handles."""

    kind: Literal["latency"] = "latency"
    seconds: Seconds = Field(gt=0)


class DropEffect(_Strict):
    """Close the connection without an answer; ``after_apply`` handles the request first."""

    kind: Literal["drop"] = "drop"
    after_apply: Flag = False


class ApplyThenFailEffect(_Strict):
    """Handle the request (the upload applies) but answer a 5xx: the ambiguous failure."""

    kind: Literal["apply_then_fail"] = "apply_then_fail"
    status: int = Field(default=503, strict=True, ge=500, le=599)
    code: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    retry_after: Seconds | None = None


class ExpireTokenEffect(_Strict):
    """The request's access token expires now (it answers 401 EXPIRED_ACCESS_TOKEN)."""

    kind: Literal["expire_token"] = "expire_token"


class RevokeTokenEffect(_Strict):
    """The request's access token is revoked now (401 REVOKED_ACCESS_TOKEN)."""

    kind: Literal["revoke_token"] = "revoke_token"


class RevokeRefreshTokenEffect(_Strict):
    """Revoke the refresh token of the request (presented to /oauth/token, or behind its token)."""

    kind: Literal["revoke_refresh_token"] = "revoke_refresh_token"


class HoldProvisioningEffect(_Strict):
    """The request's segment (or the one it creates) stays PROVISIONING for ``calls`` more calls."""

    kind: Literal["hold_provisioning"] = "hold_provisioning"
    calls: Count = Field(ge=1)


class ForceStatusEffect(_Strict):
    """The request's segment (or the one it creates) shows ``status`` from now on; null clears."""

    kind: Literal["force_status"] = "force_status"
    status: SegmentStatus | None


class RejectItemsEffect(_Strict):
    """A seeded ``fraction`` of otherwise valid upload operations is rejected with ``code``."""

    kind: Literal["reject_items"] = "reject_items"
    fraction: Fraction = Field(gt=0)
    code: str = Field(default="IDENTIFIER_REJECTED", pattern=r"^[A-Z][A-Z0-9_]*$")


Effect = Annotated[
    ErrorEffect
    | LatencyEffect
    | DropEffect
    | ApplyThenFailEffect
    | ExpireTokenEffect
    | RevokeTokenEffect
    | RevokeRefreshTokenEffect
    | HoldProvisioningEffect
    | ForceStatusEffect
    | RejectItemsEffect,
    Field(discriminator="kind"),
]
EFFECT_KINDS = (
    "error",
    "latency",
    "drop",
    "apply_then_fail",
    "expire_token",
    "revoke_token",
    "revoke_refresh_token",
    "hold_provisioning",
    "force_status",
    "reject_items",
)


class Window(_Strict):
    """A span of the partner clock in seconds since the rules were installed.

    Rules are installed when the partner starts, is reset, or gets a new scenario.
    """

    start: Seconds = 0
    end: Seconds | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"window end {self.end} must be greater than start {self.start}")
        return self


class FaultRule(_Strict):
    """Which requests (all conditions must hold) and the effect applied to them.

    ``nth``/``every``/``after``/``times`` count the calls this rule matched by method,
    path, account, segment and window; ``probability`` is a draw seeded by the scenario.
    """

    name: str | None = None
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] | None = None
    path: str | None = None
    path_regex: str | None = None
    account: str | None = None
    segment: str | None = None
    nth: Count | None = Field(default=None, ge=1)
    every: Count | None = Field(default=None, ge=1)
    after: Count = 0
    times: Count | None = Field(default=None, ge=1)
    probability: Fraction | None = None
    window: Window | None = None
    effect: Effect

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("path_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"{value!r} is not a valid regular expression: {error}") from None
        return value

    @model_validator(mode="after")
    def _one_path_kind(self) -> FaultRule:
        if self.path is not None and self.path_regex is not None:
            raise ValueError("give either path (a glob) or path_regex, not both")
        return self

    def matches_request(
        self, method: str, path: str, account_id: str | None, segment_id: str | None, elapsed: float
    ) -> bool:
        """The static part of the match (everything but the call counters and the draw)."""
        if self.method is not None and self.method != method:
            return False
        if self.path is not None and not fnmatch.fnmatchcase(path, self.path):
            return False
        if self.path_regex is not None and re.search(self.path_regex, path) is None:
            return False
        if self.account is not None and self.account != account_id:
            return False
        if self.segment is not None and self.segment != segment_id:
            return False
        if self.window is not None:
            if elapsed < self.window.start:
                return False
            if self.window.end is not None and elapsed >= self.window.end:
                return False
        return True


@dataclass(slots=True)
class _RuleState:
    matched: int = 0
    fired: int = 0


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule that fired on a request: its position in the scenario's list and its effect."""

    index: int
    rule: FaultRule


class FaultEngine:
    """Counts the calls each rule matched and decides which rules fire on a request."""

    def __init__(self, rules: Sequence[FaultRule], seed: int, installed_at: float) -> None:
        self.rules = tuple(rules)
        self.installed_at = installed_at
        self._states = [_RuleState() for _ in self.rules]
        self._draws = [random.Random(f"{seed}:fault:{index}") for index in range(len(self.rules))]

    def fire(
        self, method: str, path: str, account_id: str | None, segment_id: str | None, now: float
    ) -> list[Firing]:
        """The rules that fire on this request, in scenario order (updates the counters)."""
        elapsed = now - self.installed_at
        fired: list[Firing] = []
        for index, rule in enumerate(self.rules):
            if not rule.matches_request(method, path, account_id, segment_id, elapsed):
                continue
            state = self._states[index]
            state.matched += 1
            call = state.matched
            if rule.nth is not None and call != rule.nth:
                continue
            if rule.every is not None and call % rule.every != 0:
                continue
            if call <= rule.after:
                continue
            if rule.times is not None and state.fired >= rule.times:
                continue
            if rule.probability is not None and self._draws[index].random() >= rule.probability:
                continue
            state.fired += 1
            fired.append(Firing(index, rule))
        return fired

    def counters(self) -> list[dict[str, int]]:
        """Per rule: calls matched and times fired (for the state snapshot)."""
        return [{"matched": state.matched, "fired": state.fired} for state in self._states]
