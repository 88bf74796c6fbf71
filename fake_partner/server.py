"""The served partner: its ASGI app on loopback under uvicorn, in a background thread.

``serve(partner)`` starts and stops it from Python; ``serve_from_command_line`` is what
``feed-harness serve-partner`` runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fake_partner.app import TRANSPORT_KEY
from fake_partner.errors import PartnerUsageError, ScenarioError
from fake_partner.inbound import UnreadableRequestError
from fake_partner.loopback import (
    UNPARSED_MESSAGE,
    JsonErrorH11Protocol,
    RequestLog,
    listen,
    no_op,
    on_stop_signals,
    restore_signals,
    serve_asgi,
)
from fake_partner.partner import Partner
from fake_partner.scenario import load_scenario

EXIT_OK = 0
EXIT_USAGE = 2


_UNPARSED_ID = "rej-unparsed"


class _DroppableH11Protocol(JsonErrorH11Protocol):
    """uvicorn's h11 protocol that lends the app its connection, so a fault can close it;
    unparsable requests get the partner's error body."""

    extra_headers = ((b"x-request-id", _UNPARSED_ID.encode()),)

    @staticmethod
    def error_body(message: str) -> dict[str, Any]:
        return {
            "error": {
                "status": 400,
                "code": "INVALID_REQUEST",
                "message": message,
                "request_id": _UNPARSED_ID,
                "details": [{"field": "request"}],
            }
        }

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app_state = {**self.app_state, TRANSPORT_KEY: transport}


def _protocol_for(partner: Partner) -> type[_DroppableH11Protocol]:
    """The h11 protocol whose answer to an unparsable request is in the partner's dialect
    (the one it speaks when served)."""
    if partner.face.name == "generic":
        return _DroppableH11Protocol
    refusal = UnreadableRequestError(400, "request", UNPARSED_MESSAGE)
    body = json.loads(partner.face.render_refusal(refusal, _UNPARSED_ID, None).content)

    class _FaceProtocol(_DroppableH11Protocol):
        @staticmethod
        def error_body(message: str) -> dict[str, Any]:
            return dict(body)

    return _FaceProtocol


@dataclass(frozen=True)
class ServedPartner:
    """A partner listening on loopback: where to reach it and how to control it."""

    partner: Partner
    host: str
    port: int
    stop_soon: Callable[[], None] = field(default=no_op, compare=False, repr=False, kw_only=True)
    """Begin the server's shutdown now (the ``serve`` block's end waits for it)."""

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def admin_token(self) -> str:
        return self.partner.admin_token

    def admin_headers(self) -> dict[str, str]:
        """Headers that open ``/_admin/...``."""
        return {"Authorization": f"Bearer {self.partner.admin_token}"}


CLOCK_NOTE = (
    "the partner's clock is virtual: nothing waits by itself, so a new segment stays "
    "SEGMENT_NOT_READY until POST /_admin/clock/advance (admin token) moves it, e.g.\n"
    "  curl -X POST -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' "
    "-d '{{\"seconds\": 60}}' {base_url}/_admin/clock/advance"
)
"""What the serve commands say about the clock (``format(token=..., base_url=...)``), as
comment lines by :func:`clock_note`."""


def clock_note(token: str, base_url: str) -> list[str]:
    """The clock note as ``# ...`` lines."""
    return ["# " + line for line in CLOCK_NOTE.format(token=token, base_url=base_url).splitlines()]


@contextmanager
def serve(
    partner: Partner, host: str = "127.0.0.1", port: int = 0, *, log: RequestLog | None = None
) -> Iterator[ServedPartner]:
    """Serve ``partner`` on ``host:port`` (0: a free port) for the duration of the block
    (each request logged to ``log`` when given)."""
    sock = listen(host, port)
    served = ServedPartner(partner, host, sock.getsockname()[1])
    app = partner.asgi_app(served.base_url)
    with serve_asgi(app, sock, http=_protocol_for(partner), log=log) as stop_soon:
        yield dataclasses.replace(served, stop_soon=stop_soon)


def serve_from_command_line(
    port: int,
    scenario: str | None,
    host: str = "127.0.0.1",
    *,
    log: RequestLog | None = None,
    dialect: str | None = None,
) -> int:
    """Serve until interrupted, printing base_url, client_id/secret, refresh and admin tokens.

    ``dialect`` (``generic``, ``linkedin``, ``meta``) overrides the scenario's ``partner``
    key; for Meta, which has no refresh grant, a long-lived access token is printed too.
    The secrets are printed on purpose: the user asked for them to point a connector by
    hand. Returns 0 after Ctrl-C or SIGTERM, 2 for a bad scenario or an unusable address.
    """
    try:
        partner = Partner(load_scenario(scenario), dialect=dialect)
    except (ScenarioError, PartnerUsageError) as error:
        print(f"feed-harness serve-partner: {error}", file=sys.stderr)
        return EXIT_USAGE
    stop = threading.Event()
    previous = on_stop_signals(stop)
    try:
        with serve(partner, host, port, log=log) as served:
            lines = [f"base_url: {served.base_url}"]
            try:
                credentials = partner.credentials
                lines += [
                    f"client_id: {credentials.client_id}",
                    f"client_secret: {credentials.client_secret}",
                    f"refresh_token: {credentials.refresh_token}",
                ]
            except PartnerUsageError:
                lines += ["client_id: (none)", "client_secret: (none)", "refresh_token: (none)"]
            else:
                if not partner.face.info().get("refresh_grant", True):
                    token = partner.seed_access_token(credentials.account_ids)
                    lines.append(f"access_token: {token}")
            info = partner.dialect_info()
            if info["dialect"] != "generic":  # the generic output stays as it always was
                lines.append(
                    f"dialect: {info['dialect']} (api_version {info['api_version']}, "
                    f"base path {info['base_path']})"
                )
            lines.append(f"admin_token: {partner.admin_token}")
            lines.append(
                "# " + CLOCK_NOTE.format(token=partner.admin_token, base_url=served.base_url)
            )
            lines.append("# Ctrl-C to stop" + ("; one line per request follows" if log else ""))
            print("\n".join(lines), flush=True)
            stop.wait()
    except OSError as error:
        print(
            f"feed-harness serve-partner: cannot listen on {host}:{port}: {error.strerror}; "
            "choose another --port (0 picks a free one) or --host",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        pass
    finally:
        restore_signals(previous)
    return EXIT_OK
