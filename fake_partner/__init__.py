"""A stateful, deterministic fake of an ad partner's audience API (``partner-api.md``).

Knows nothing of mediarithmics: it never imports ``contracts`` or ``harness``.
State and rules live in ``models`` (no HTTP); ``pipeline`` takes every request through
fault rules and the ledger to a face of ``faces`` (``generic``, ``linkedin``, ``meta``),
served in-process by respx (``Partner.mock``/``Partner.mount``) or on loopback (``serve``).
"""

from fake_partner.app import ASGIApp, ConnectionDroppedError
from fake_partner.clock import DEFAULT_START, VirtualClock, isoformat
from fake_partner.counts import audience_size, is_targetable, match_rate, round_significant
from fake_partner.errors import (
    ClockError,
    ErrorCode,
    OAuthError,
    PartnerError,
    PartnerUsageError,
    ScenarioError,
)
from fake_partner.faces import DIALECTS
from fake_partner.faults import EFFECT_KINDS, FaultRule
from fake_partner.identifiers import (
    IDENTIFIER_TYPES,
    expected_matched,
    identifier_problem,
    is_valid_identifier,
    item_rejected,
    match_score,
    matches,
)
from fake_partner.ledger import SIGNALS, Ledger, LedgerEntry, LedgerOperation
from fake_partner.models import PartnerState, fingerprint
from fake_partner.partner import (
    DEFAULT_BASE_URL,
    ClientCredentials,
    Credentials,
    Observer,
    Partner,
)
from fake_partner.pipeline import Dropped
from fake_partner.presets import PRESETS, Preset, list_presets
from fake_partner.scenario import (
    AccountSpec,
    ClientSpec,
    Limits,
    RefreshTokenSpec,
    Scenario,
    load_scenario,
    parse_scenario,
)
from fake_partner.server import ServedPartner, serve, serve_from_command_line

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_START",
    "DIALECTS",
    "EFFECT_KINDS",
    "IDENTIFIER_TYPES",
    "PRESETS",
    "SIGNALS",
    "ASGIApp",
    "AccountSpec",
    "ClientCredentials",
    "ClientSpec",
    "ClockError",
    "ConnectionDroppedError",
    "Credentials",
    "Dropped",
    "ErrorCode",
    "FaultRule",
    "Ledger",
    "LedgerEntry",
    "LedgerOperation",
    "Limits",
    "OAuthError",
    "Observer",
    "Partner",
    "PartnerError",
    "PartnerState",
    "PartnerUsageError",
    "Preset",
    "RefreshTokenSpec",
    "Scenario",
    "ScenarioError",
    "ServedPartner",
    "VirtualClock",
    "audience_size",
    "expected_matched",
    "fingerprint",
    "identifier_problem",
    "is_targetable",
    "is_valid_identifier",
    "isoformat",
    "item_rejected",
    "list_presets",
    "load_scenario",
    "match_rate",
    "match_score",
    "matches",
    "parse_scenario",
    "round_significant",
    "serve",
    "serve_from_command_line",
]
