"""Which partner dialect a run speaks: ``--partner`` / ``partner=``, else the scenario's
own ``partner`` key, else ``generic`` (``docs/partner-dialects.md``)."""

from __future__ import annotations

from fake_partner import DIALECTS, Scenario
from harness.errors import VerifyUsageError

__all__ = [
    "DEFAULT_DIALECT",
    "DIALECTS",
    "UNTAKEN_RESOURCES",
    "core_segment_id",
    "partner_identifying",
    "resolve_dialect",
]

DEFAULT_DIALECT = DIALECTS[0]
"""``generic``: the Partner Audience API v1 of ``partner-api.md``."""


def resolve_dialect(
    partner: str | None, scenario: Scenario | None, *, option: str = "--partner"
) -> str:
    """The dialect to speak: ``partner`` when given, else the scenario's ``partner`` key
    (when it sets one), else ``generic``. A ``VerifyUsageError`` for an unknown name, or
    when both are given and differ (no silent pick)."""
    if partner is not None and partner not in DIALECTS:
        raise VerifyUsageError(
            f"{option} {partner!r} is not a partner dialect: choose one of {', '.join(DIALECTS)}"
        )
    given = scenario is not None and "partner" in scenario.model_fields_set
    own = scenario.partner if scenario is not None and given else None
    if partner is not None and own is not None and partner != own:
        raise VerifyUsageError(
            f"{option} {partner} but the scenario says partner = {own!r}: give the same "
            f"dialect in both, or drop one of them"
        )
    return partner or own or DEFAULT_DIALECT


def core_segment_id(dialect: str, segment_id: str) -> str:
    """The fake partner's core id (``seg-000007``: the ledger's ``segment_id``, what
    ``Partner.members`` takes) of a segment id as ``dialect`` writes it (LinkedIn's
    ``1000007``, Meta's ``23850000000000007``); a core id is returned as it is."""
    if segment_id.startswith("seg-"):
        return segment_id
    if dialect == "linkedin":
        from fake_partner.faces.linkedin import core_id

        return core_id(segment_id)
    if dialect == "meta":
        from fake_partner.faces.meta import core_id as meta_core_id

        return meta_core_id(segment_id)
    return segment_id


UNTAKEN_RESOURCES: dict[str, frozenset[str]] = {
    "generic": frozenset(),
    "linkedin": frozenset({"USER_ACCOUNT"}),
    "meta": frozenset(),
}
"""Identifying resources a dialect has no identifier type for: LinkedIn takes emails
(``SHA256_EMAIL``) and advertising ids, not a user account id (Meta's ``EXTERN_ID`` is one)."""


def partner_identifying(dialect: str, selected: tuple[str, ...]) -> tuple[str, ...]:
    """The feed's selected identifying resources that ``dialect`` can receive: what the
    model of the partner's membership (``Feed.identifying``) counts as eligible."""
    untaken = UNTAKEN_RESOURCES.get(dialect, frozenset())
    return tuple(kind for kind in selected if kind not in untaken)
