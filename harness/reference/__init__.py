"""The reference connectors: models of correct connectors on ``harness.sdk`` that pass every
clause of ``clauses.md``. Each class is built as ``Cls(settings=None)`` and is an ASGI app.
"""

from harness.reference.classic import ClassicReferenceConnector
from harness.reference.config import ConfigError, PartnerCredentials, TechnicalConfig
from harness.reference.connector import ReferenceConnector
from harness.reference.core import ReferenceContext, ReferenceCore
from harness.reference.file_delivery import FileDeliveryReferenceConnector
from harness.reference.identifiers import MappedIdentifier, Selection, map_identifiers
from harness.reference.linkedin import LinkedInClient, LinkedInReferenceConnector
from harness.reference.meta import MetaClient, MetaReferenceConnector
from harness.reference.oauth_state import InvalidState, OAuthState, StateCodec
from harness.reference.partner_client import (
    PartnerClient,
    PartnerError,
    PartnerUnavailable,
    ReauthenticationNeeded,
    UploadResult,
)

__all__ = [
    "ClassicReferenceConnector",
    "ConfigError",
    "FileDeliveryReferenceConnector",
    "InvalidState",
    "LinkedInClient",
    "LinkedInReferenceConnector",
    "MappedIdentifier",
    "MetaClient",
    "MetaReferenceConnector",
    "OAuthState",
    "PartnerClient",
    "PartnerCredentials",
    "PartnerError",
    "PartnerUnavailable",
    "ReauthenticationNeeded",
    "ReferenceConnector",
    "ReferenceContext",
    "ReferenceCore",
    "Selection",
    "StateCodec",
    "TechnicalConfig",
    "UploadResult",
    "map_identifiers",
]
