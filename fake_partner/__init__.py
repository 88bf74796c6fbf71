"""A stateful, deterministic fake of an ad partner's audience API (``partner-api.md``).

Knows nothing of mediarithmics: it never imports ``contracts`` or ``harness``.
State and rules live in ``models`` (no HTTP); ``pipeline`` takes every request through
fault rules and the ledger to a face of ``faces`` (``generic``, ``linkedin``, ``meta``),
served in-process by respx (``Partner.mock``/``Partner.mount``) or on loopback (``serve``).

Its names are imported on first use (PEP 562): a process that needs one piece (a connector
that reads JSON the partner's strict way, a serve command) does not pay for the whole
partner's import (about 0.2 s, paid again by every connector process a ``--cmd``
verification starts).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fake_partner.app import ASGIApp, ConnectionDroppedError
    from fake_partner.clock import DEFAULT_START, VirtualClock, isoformat
    from fake_partner.counts import audience_size, is_targetable, match_rate, round_significant
    from fake_partner.dialects import DIALECTS
    from fake_partner.errors import (
        ClockError,
        ErrorCode,
        OAuthError,
        PartnerError,
        PartnerUsageError,
        ScenarioError,
    )
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

_ORIGIN = {
    "ASGIApp": "app",
    "ConnectionDroppedError": "app",
    "DEFAULT_START": "clock",
    "VirtualClock": "clock",
    "isoformat": "clock",
    "audience_size": "counts",
    "is_targetable": "counts",
    "match_rate": "counts",
    "round_significant": "counts",
    "ClockError": "errors",
    "ErrorCode": "errors",
    "OAuthError": "errors",
    "PartnerError": "errors",
    "PartnerUsageError": "errors",
    "ScenarioError": "errors",
    "DIALECTS": "dialects",
    "EFFECT_KINDS": "faults",
    "FaultRule": "faults",
    "IDENTIFIER_TYPES": "identifiers",
    "expected_matched": "identifiers",
    "identifier_problem": "identifiers",
    "is_valid_identifier": "identifiers",
    "item_rejected": "identifiers",
    "match_score": "identifiers",
    "matches": "identifiers",
    "SIGNALS": "ledger",
    "Ledger": "ledger",
    "LedgerEntry": "ledger",
    "LedgerOperation": "ledger",
    "PartnerState": "models",
    "fingerprint": "models",
    "DEFAULT_BASE_URL": "partner",
    "ClientCredentials": "partner",
    "Credentials": "partner",
    "Observer": "partner",
    "Partner": "partner",
    "Dropped": "pipeline",
    "PRESETS": "presets",
    "Preset": "presets",
    "list_presets": "presets",
    "AccountSpec": "scenario",
    "ClientSpec": "scenario",
    "Limits": "scenario",
    "RefreshTokenSpec": "scenario",
    "Scenario": "scenario",
    "load_scenario": "scenario",
    "parse_scenario": "scenario",
    "ServedPartner": "server",
    "serve": "server",
    "serve_from_command_line": "server",
}
"""Each public name and the submodule that defines it."""
_SUBMODULES = frozenset(module.name for module in pkgutil.iter_modules(__path__))


def __getattr__(name: str) -> object:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _ORIGIN.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
