"""Named presets: the common partner faults as ready-made fault rules and knob changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from fake_partner.faults import (
    ApplyThenFailEffect,
    DropEffect,
    ErrorEffect,
    ExpireTokenEffect,
    FaultRule,
    ForceStatusEffect,
    HoldProvisioningEffect,
    LatencyEffect,
    RejectItemsEffect,
    RevokeRefreshTokenEffect,
)

UPLOAD_PATH = "/v1/segments/*/members"
CREATE_PATH = "/v1/accounts/*/segments"


@dataclass(frozen=True)
class Preset:
    """A preset: one line of what it does, the rules it adds and the knobs it sets."""

    name: str
    description: str
    faults: tuple[FaultRule, ...]
    knobs: Mapping[str, Any] = field(default_factory=dict)


def _preset(name: str, description: str, *rules: FaultRule, **knobs: Any) -> Preset:
    return Preset(name, description, rules, MappingProxyType(knobs))


_ALL = (
    _preset(
        "token-expiry-mid-upload",
        "the 2nd upload's access token expires on arrival: 401 EXPIRED_ACCESS_TOKEN, "
        "nothing applies; refresh and re-send succeed",
        FaultRule(
            name="token-expiry-mid-upload",
            method="POST",
            path=UPLOAD_PATH,
            nth=2,
            effect=ExpireTokenEffect(),
        ),
    ),
    _preset(
        "rate-limit-burst",
        "/v1 calls 3 to 5 answer 429 RATE_LIMITED with Retry-After: 30 and X-RateLimit-* headers",
        FaultRule(
            name="rate-limit-burst",
            path="/v1/*",
            after=2,
            times=3,
            effect=ErrorEffect(
                status=429, code="RATE_LIMITED", retry_after=30, rate_limit_headers=True
            ),
        ),
    ),
    _preset(
        "rate-limit-no-retry-after",
        "like rate-limit-burst but with no Retry-After and no X-RateLimit-* headers, "
        "on the real limiter too (as LinkedIn)",
        FaultRule(
            name="rate-limit-no-retry-after",
            path="/v1/*",
            after=2,
            times=3,
            effect=ErrorEffect(status=429, code="RATE_LIMITED"),
        ),
        send_rate_limit_headers=False,
    ),
    _preset(
        "not-ready-for-3-polls",
        "every new segment answers 404 SEGMENT_NOT_READY to its next 3 calls, then is "
        "ready whatever the clock says",
        FaultRule(
            name="not-ready-for-3-polls",
            method="POST",
            path=CREATE_PATH,
            effect=HoldProvisioningEffect(calls=3),
        ),
    ),
    _preset(
        "flaky-5xx",
        "about 1 in 5 /v1 calls (seeded draw) answers 503 SERVICE_UNAVAILABLE; nothing applies",
        FaultRule(
            name="flaky-5xx",
            path="/v1/*",
            probability=0.2,
            effect=ErrorEffect(status=503, code="SERVICE_UNAVAILABLE"),
        ),
    ),
    _preset(
        "ambiguous-503",
        "the 1st upload is applied but answered 503 SERVICE_UNAVAILABLE (the ambiguous failure)",
        FaultRule(
            name="ambiguous-503",
            method="POST",
            path=UPLOAD_PATH,
            nth=1,
            effect=ApplyThenFailEffect(),
        ),
    ),
    _preset(
        "mixed-invalid-items",
        "uploads: about 10% of otherwise valid operations, drawn per first identifier value "
        "(stable across retries), are rejected with IDENTIFIER_REJECTED",
        FaultRule(
            name="mixed-invalid-items",
            method="POST",
            path=UPLOAD_PATH,
            effect=RejectItemsEffect(fraction=0.1),
        ),
    ),
    _preset(
        "invalid-grant",
        "every refresh token is revoked when presented: /oauth/token answers 400 invalid_grant",
        FaultRule(
            name="invalid-grant",
            method="POST",
            path="/oauth/token",
            effect=RevokeRefreshTokenEffect(),
        ),
    ),
    _preset(
        "dropped-connection",
        "the 1st upload's connection closes with no answer; nothing applies",
        FaultRule(
            name="dropped-connection",
            method="POST",
            path=UPLOAD_PATH,
            nth=1,
            effect=DropEffect(),
        ),
    ),
    _preset(
        "ambiguous-drop",
        "the 1st upload is applied, then its connection closes with no answer",
        FaultRule(
            name="ambiguous-drop",
            method="POST",
            path=UPLOAD_PATH,
            nth=1,
            effect=DropEffect(after_apply=True),
        ),
    ),
    _preset(
        "failed-segment",
        "every new segment is FAILED: it takes uploads but is never targetable",
        FaultRule(
            name="failed-segment",
            method="POST",
            path=CREATE_PATH,
            effect=ForceStatusEffect(status="FAILED"),
        ),
    ),
    _preset(
        "slow-partner",
        "every /v1 call takes 2 s of virtual time (the clock advances before the answer)",
        FaultRule(name="slow-partner", path="/v1/*", effect=LatencyEffect(seconds=2)),
    ),
)

PRESETS: Mapping[str, Preset] = MappingProxyType({preset.name: preset for preset in _ALL})
"""Every preset by name."""


def list_presets() -> dict[str, str]:
    """Preset name -> its one-line description, in a stable order."""
    return {preset.name: preset.description for preset in _ALL}
