"""The partner's faces: one per dialect, all over the same core (moto's design).

``generic`` is ``partner-api.md``; ``linkedin`` and ``meta`` speak those partners'
audience APIs (``docs/partner-dialects.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fake_partner.dialects import DIALECTS
from fake_partner.errors import PartnerUsageError
from fake_partner.faces.base import Face, FaceRoute, PartnerRequest
from fake_partner.faces.generic import GenericFace
from fake_partner.faces.linkedin import LinkedInFace
from fake_partner.faces.meta import MetaFace

FACES: Mapping[str, Face] = MappingProxyType(
    {"generic": GenericFace(), "linkedin": LinkedInFace(), "meta": MetaFace()}
)


def face_of(dialect: str) -> Face:
    """The face of ``dialect``; a :class:`PartnerUsageError` naming the choices otherwise."""
    face = FACES.get(dialect)
    if face is None:
        raise PartnerUsageError(
            f"dialect={dialect!r} is not one of: {', '.join(DIALECTS)}; choose one of those"
        )
    return face


__all__ = ["DIALECTS", "FACES", "Face", "FaceRoute", "PartnerRequest", "face_of"]
