"""The dialect names, apart from the faces that speak them: naming the choices (a
``--partner`` option) does not import the faces."""

DIALECTS = ("generic", "linkedin", "meta")
"""Every dialect name, the default first."""

__all__ = ["DIALECTS"]
