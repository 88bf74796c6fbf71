"""Kept for imports written before the faces: the pipeline and the generic face's helpers.

The HTTP face is now split: ``fake_partner.pipeline`` (the way through for every face:
refusals, fault rules, the ledger) and ``fake_partner.faces`` (one module per dialect).
"""

from __future__ import annotations

from fake_partner.faces.base import (
    CREATE_ROUTE,
    TOKEN_ROUTE,
    UPLOAD_ROUTE,
    json_response,
)
from fake_partner.faces.generic import (
    DEFAULT_PAGE_SIZE,
    error_response,
    oauth_error_response,
)
from fake_partner.pipeline import DROP_MESSAGE, OPENAPI_PATH, Answer, Dropped, refused, respond

__all__ = [
    "CREATE_ROUTE",
    "DEFAULT_PAGE_SIZE",
    "DROP_MESSAGE",
    "OPENAPI_PATH",
    "TOKEN_ROUTE",
    "UPLOAD_ROUTE",
    "Answer",
    "Dropped",
    "error_response",
    "json_response",
    "oauth_error_response",
    "refused",
    "respond",
]
