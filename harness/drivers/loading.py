"""Loading a Python connector: ``"module:attr"`` or an object, made an ASGI app."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any, cast

from harness.drivers.base import ASGIApp, ConnectorLoadError, _describe
from harness.sdk.settings import PluginSettings

__all__ = ["import_connector", "load_connector"]


def load_connector(target: object, settings: PluginSettings) -> ASGIApp:
    """An ASGI app from ``"module:attr"`` or an object: a connector class, a factory
    taking ``PluginSettings``, or a ready ASGI app."""
    spec = target if isinstance(target, str) else None
    obj = import_connector(target) if isinstance(target, str) else target
    name = spec or repr(obj)
    if isinstance(obj, type):
        try:
            app = obj(settings)
        except Exception as exc:
            raise ConnectorLoadError(
                f"connector {name}: constructing {obj.__name__}(settings) failed with "
                f"{_describe(exc)}; a connector class must accept a PluginSettings"
            ) from exc
        if not _is_asgi(app):
            raise ConnectorLoadError(
                f"connector {name}: an instance of {obj.__name__} is not an ASGI app "
                "(async __call__(scope, receive, send)); subclass the harness SDK connector"
            )
        return cast(ASGIApp, app)
    if _is_asgi(obj):
        return cast(ASGIApp, obj)
    if callable(obj) and _positional_arity(obj) == 1:
        try:
            app = obj(settings)
        except Exception as exc:
            raise ConnectorLoadError(
                f"connector {name}: the factory failed with {_describe(exc)}"
            ) from exc
        if not _is_asgi(app):
            raise ConnectorLoadError(
                f"connector {name}: the factory returned {type(app).__name__}, not an ASGI app; "
                "return the connector instance"
            )
        return cast(ASGIApp, app)
    raise ConnectorLoadError(
        f"connector {name}: {type(obj).__name__} is not a connector; give a connector class, "
        "a factory taking PluginSettings, or an ASGI app (async callable(scope, receive, send))"
    )


def import_connector(spec: str) -> object:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConnectorLoadError(
            f"connector {spec!r} is not 'module:attribute'; write it like "
            "'harness.reference:ReferenceConnector'"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise ConnectorLoadError(
                f"connector {spec!r}: no module named {module_name!r}; check the spelling and "
                "that its directory is on PYTHONPATH (run from the project root)"
            ) from exc
        raise ConnectorLoadError(
            f"connector {spec!r}: importing {module_name!r} failed: {exc}; install what it needs"
        ) from exc
    except Exception as exc:
        raise ConnectorLoadError(
            f"connector {spec!r}: importing {module_name!r} raised {_describe(exc)}"
        ) from exc
    obj: object = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            known = sorted(n for n in dir(module) if not n.startswith("_"))
            raise ConnectorLoadError(
                f"connector {spec!r}: module {module_name!r} has no attribute {attr!r}; "
                f"it has: {', '.join(known[:20])}"
            )
        obj = getattr(obj, part)
    return obj


def _positional_arity(obj: object) -> int | None:
    try:
        signature = inspect.signature(cast(Callable[..., Any], obj))
    except (TypeError, ValueError):
        return None
    count = 0
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        if parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            count += 1
    return count


def _is_asgi(obj: object) -> bool:
    """An async callable taking exactly (scope, receive, send)."""
    if isinstance(obj, type) or not callable(obj):
        return False
    arity = _positional_arity(obj)
    if arity is None:  # *args or no signature: trust it only if it is a coroutine function
        return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(type(obj).__call__)
    return arity == 3
