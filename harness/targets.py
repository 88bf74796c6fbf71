"""The connector under test, as named by ``--connector``, ``--cmd`` or ``--url``."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import VerifyUsageError

__all__ = ["DEFAULT_WORKER_ID", "Target", "UrlTarget", "make_target"]

DEFAULT_WORKER_ID = "worker-1"


@dataclass(frozen=True)
class Target:
    """The connector under test: exactly one of ``connector``, ``cmd`` or ``url``.

    ``label`` is how reports and reproduce commands name it (``--connector mod:Attr``,
    ``--cmd "..."``, ``--url ...``; empty for the built-in reference connector).
    """

    connector: object | None = None
    cmd: str | None = None
    url: str | None = None
    label: str = "reference connector"
    cli_args: tuple[str, ...] = ()

    def platform_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``Platform(...)`` naming this connector."""
        if self.cmd is not None:
            return {"cmd": self.cmd}
        if self.url is not None:
            return {"url": self.url}
        return {"connector": self.connector}


@dataclass(frozen=True)
class UrlTarget(Target):
    """A connector already running at ``url``, pointed at a gateway on ``gateway_port``.

    Each run serves its own gateway on that port with the worker id and token the
    connector was started with, so the connector reaches it like the real one.
    """

    gateway_port: int = 0
    worker_id: str = DEFAULT_WORKER_ID
    authentication_token: str | None = field(default=None, repr=False)

    def platform_kwargs(self) -> dict[str, Any]:
        """``Platform(url=..., gateway_port=..., worker_id=..., authentication_token=...)``."""
        return {
            "url": self.url,
            "gateway_port": self.gateway_port,
            "worker_id": self.worker_id,
            "authentication_token": self.authentication_token,
        }


def make_target(
    connector: object | None = None,
    *,
    cmd: str | None = None,
    url: str | None = None,
    gateway_port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Target:
    """The target named by CLI-style options (at most one of connector, cmd, url).

    With ``url``, the gateway port comes from ``gateway_port`` or ``$GATEWAY_PORT`` and
    the worker id / token from ``$PLUGIN_WORKER_ID`` / ``$PLUGIN_AUTHENTICATION_TOKEN``.
    """
    given = [n for n, v in (("--connector", connector), ("--cmd", cmd), ("--url", url)) if v]
    if len(given) > 1:
        raise VerifyUsageError(f"{' and '.join(given)} given: name the connector with only one")
    if gateway_port is not None and not url:
        raise VerifyUsageError(
            "--gateway-port goes with --url only (--cmd and in-process connectors get their "
            "gateway on a free port): drop it or add --url"
        )
    if cmd is not None and cmd.strip():
        return Target(cmd=cmd, label=shlex.join(("--cmd", cmd)), cli_args=("--cmd", cmd))
    if url:
        return _url_target(url, gateway_port, os.environ if env is None else env)
    if isinstance(connector, str):
        return Target(
            connector=connector,
            label=connector,
            cli_args=("--connector", connector),
        )
    if connector is not None:
        name = getattr(connector, "__qualname__", None) or type(connector).__name__
        return Target(connector=connector, label=f"{name} (in-process)")
    return Target()


def _url_target(url: str, gateway_port: int | None, env: Mapping[str, str]) -> UrlTarget:
    if not url.startswith(("http://", "https://")):
        raise VerifyUsageError(f"--url {url!r} is not an http(s) URL: write http://127.0.0.1:PORT")
    if gateway_port is None:
        raw = env.get("GATEWAY_PORT", "")
        if not raw.isdigit():
            raise VerifyUsageError(
                "--url needs --gateway-port N (or $GATEWAY_PORT): the port the running "
                "connector's GATEWAY_PORT points at; verify serves its gateway there"
            )
        gateway_port = int(raw)
    if not 0 < gateway_port < 65536:
        raise VerifyUsageError(f"--gateway-port {gateway_port} is not a port: use 1..65535")
    token = env.get("PLUGIN_AUTHENTICATION_TOKEN", "")
    if not token:
        raise VerifyUsageError(
            "--url needs PLUGIN_AUTHENTICATION_TOKEN (and PLUGIN_WORKER_ID) in this shell, set "
            "to what the connector was started with (the export lines of `feed-harness serve`)"
        )
    worker_id = env.get("PLUGIN_WORKER_ID") or DEFAULT_WORKER_ID
    args = ("--url", url, "--gateway-port", str(gateway_port))
    return UrlTarget(
        url=url,
        label=url,
        cli_args=args,
        gateway_port=gateway_port,
        worker_id=worker_id,
        authentication_token=token,
    )
