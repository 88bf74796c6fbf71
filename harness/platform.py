"""The platform of one run: clock, partner, gateway, trace and the connector's driver.

In-process, respx routes only the partner's and the gateway's hosts (all else passes
through); for a command or a URL both are served on free loopback ports instead.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx
import respx

from fake_partner import (
    DEFAULT_BASE_URL,
    Credentials,
    Partner,
    PartnerUsageError,
    VirtualClock,
    serve,
)
from fake_partner.partner import ScenarioSource
from harness.connector_log import ConnectorLog, LogCapture
from harness.dialects import core_segment_id, partner_identifying
from harness.drivers import (
    Bounds,
    CommandDriver,
    ConnectorDriver,
    ConnectorStartError,
    InProcessDriver,
    PlatformEnv,
    UrlDriver,
    current_bounds,
    load_connector,
)
from harness.drivers.loopback import ABANDONED
from harness.gateway import DEFAULT_GATEWAY_URL, FeedSetup, Gateway, serve_gateway
from harness.gateway.feeds import DEFAULT_DATAMART_ID
from harness.redaction import Redactor
from harness.simulator import Feed, FeedStateError, SimulatorSettings
from harness.trace import FailureKind, Leg, Trace
from harness.users import DEFAULT_IDENTIFYING, PartnerIdentifier

__all__ = [
    "DEFAULT_CONNECTOR",
    "GATEWAY_URL",
    "PARTNER_URL",
    "Platform",
    "PlatformSetupError",
]

DEFAULT_CONNECTOR = "harness.reference:ReferenceConnector"
"""The batched reference connector, driven when no connector is named."""
PARTNER_URL = DEFAULT_BASE_URL
GATEWAY_URL = DEFAULT_GATEWAY_URL
_GATEWAY = httpx.URL(GATEWAY_URL)
_FIRST_FEED_ID = 7001
_FIRST_SEGMENT_ID = 5001


def technical_config(partner: Partner, partner_url: str) -> dict[str, Any]:
    """The ``technical_config`` of a feed on ``partner`` served at ``partner_url``
    (``docs/writing-a-connector.md``): its endpoint (scheme, host and port, no path), API
    version and real limits; for LinkedIn and Meta also ``partner_base_path`` and
    ``dialect``. The generic dialect's keys stay those of ``partner-api.md``."""
    info = partner.dialect_info()
    limits = partner.effective_scenario.limits
    config: dict[str, Any] = {
        "partner_endpoint": partner_url.rstrip("/"),
        "partner_api_version": str(info["api_version"]),
    }
    if info["dialect"] != "generic":
        config["partner_base_path"] = str(info["base_path"])
        config["dialect"] = str(info["dialect"])
    config["max_operations_per_request"] = limits.max_operations
    config["max_body_bytes_per_request"] = limits.max_body_bytes
    return config


def configure_gateway(gateway: Gateway, partner: Partner, partner_url: str) -> None:
    """Give the gateway the configuration files a connector reads (docs/writing-a-connector.md):
    ``technical_config`` pointing at the partner in its dialect with its real limits, and
    ``credentials`` with the partner's seeded OAuth client and refresh token (if any)."""
    gateway.set_configuration_file("technical_config", technical_config(partner, partner_url))
    try:
        credentials = partner.credentials
    except PartnerUsageError:  # a scenario without a seeded refresh token
        return
    files: dict[str, str] = {
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret,
        "refresh_token": credentials.refresh_token,
    }
    if not partner.dialect_info().get("refresh_grant", True):
        # Meta has no refresh grant: a connector holds a long-lived access token instead
        files["access_token"] = partner.seed_access_token(credentials.account_ids)
    gateway.set_configuration_file("credentials", files)


def _is_token_path(path: str) -> bool:
    """An OAuth token endpoint of any dialect: its form and answer carry secrets."""
    return path in ("/oauth/token", "/oauth/v2/accessToken") or path.endswith("/oauth/access_token")


def _bounded(settings: SimulatorSettings, bounds: Bounds) -> SimulatorSettings:
    """The run's settings with the verification's call timeout (``--call-timeout``)."""
    if bounds.call_timeout is None or bounds.call_timeout == settings.call_timeout:
        return settings
    return settings.model_copy(update={"call_timeout": bounds.call_timeout})


class PlatformSetupError(ValueError):
    """The platform was asked for an impossible set-up; the message says the fix."""


class Platform:
    """Everything one run needs, started by ``with``. At most one of ``connector`` (class,
    factory, ASGI app or ``"module:attr"``), ``cmd`` (a command) or ``url`` (a connector
    already running against ``gateway_port``); default: the batched reference connector."""

    def __init__(
        self,
        connector: object | None = None,
        *,
        cmd: str | Sequence[str] | None = None,
        url: str | None = None,
        scenario: ScenarioSource = None,
        settings: SimulatorSettings | None = None,
        env: Mapping[str, str] | None = None,
        gateway_port: int = 0,
        worker_id: str = "worker-1",
        authentication_token: str | None = None,
        clock: VirtualClock | None = None,
        partner: str | None = None,
    ) -> None:
        """``partner`` (``generic``, ``linkedin``, ``meta``) is the dialect the fake partner
        speaks; by default the scenario's ``partner`` key, else ``generic``."""
        options = (("connector", connector), ("cmd", cmd), ("url", url))
        chosen = [name for name, value in options if value is not None]
        if len(chosen) > 1:
            raise PlatformSetupError(
                f"Platform got {' and '.join(chosen)}: give only one of connector=, cmd=, url="
            )
        self.bounds: Bounds = current_bounds()
        self.settings = _bounded(
            settings if settings is not None else SimulatorSettings(), self.bounds
        )
        self.clock = clock if clock is not None else VirtualClock()
        self.partner = Partner(scenario, clock=self.clock, dialect=partner)
        self.gateway = Gateway(worker_id, authentication_token)
        self.redactor = Redactor()
        self.trace = Trace(self.clock.now, self.redactor)
        self.log = ConnectorLog(self.redactor)
        """What the connector printed (out of process) or logged (in process), checked
        line by line for secrets."""
        self.feeds: list[Feed] = []
        self._connector = connector if connector is not None else DEFAULT_CONNECTOR
        self._cmd = cmd
        self._url = url
        self._env = dict(env or {})
        self._gateway_port = gateway_port
        self._served = cmd is not None or url is not None
        self._stack = contextlib.ExitStack()
        self._ids = itertools.count()
        self.driver: ConnectorDriver | None = None
        self._abandoned = threading.Event()
        self.partner_url = PARTNER_URL
        self.gateway_url = GATEWAY_URL
        self._learn_secrets()

    def __repr__(self) -> str:
        mode = "served" if self._served else "in-process"
        return (
            f"Platform({mode}, partner={self.partner_url} ({self.partner.dialect}), "
            f"feeds={len(self.feeds)})"
        )

    @property
    def served(self) -> bool:
        """Whether the partner and gateway listen on loopback (command / URL connectors)."""
        return self._served

    # ------------------------------------------------------------------ start / stop

    def __enter__(self) -> Platform:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Mount or serve the partner and the gateway, configure them, start the connector."""
        self.partner.add_observer(self._partner_observer)
        self._stack.callback(self.partner.remove_observer, self._partner_observer)
        self.gateway.add_observer(self._gateway_observer)
        self._stack.callback(self.gateway.remove_observer, self._gateway_observer)
        if self._served:
            served_partner = self._stack.enter_context(serve(self.partner))
            served_gateway = self._stack.enter_context(
                serve_gateway(self.gateway, port=self._gateway_port)
            )
            self.partner_url = served_partner.base_url
            self.gateway_url = served_gateway.base_url
            env = PlatformEnv(
                served_gateway.host, served_gateway.port, self.gateway.worker_id, self.gateway.token
            )
        else:
            router = respx.MockRouter(assert_all_called=False, assert_all_mocked=True)
            self.partner.mount(router, PARTNER_URL)
            self.gateway.mount(router, GATEWAY_URL)
            router.route().pass_through()  # respx must not touch anything else
            self._stack.enter_context(router)
            env = PlatformEnv(
                _GATEWAY.host, _GATEWAY.port or 80, self.gateway.worker_id, self.gateway.token
            )
        self._configure_gateway()
        driver = self._driver(env)
        driver.trace = self.trace
        if isinstance(driver, CommandDriver):
            driver.log = self.log
        elif isinstance(driver, InProcessDriver):
            capture = LogCapture(self.log)
            logging.getLogger().addHandler(capture)
            self._stack.callback(logging.getLogger().removeHandler, capture)
        self.driver = driver
        self._stack.callback(driver.stop)
        if self._served:
            # at the end, both servers begin their shutdown before the connector's stop is
            # awaited: three waits of 0.2-0.3 s each overlap instead of adding up
            self._stack.callback(served_gateway.stop_soon)
            self._stack.callback(served_partner.stop_soon)
        if self._abandoned.is_set():
            raise ConnectorStartError(ABANDONED)
        driver.start(env)

    def abandon(self) -> None:
        """From another thread: give up this platform's start if it is under way (its
        ``start`` raises ``ConnectorStartError`` soon, and ``with`` stops what began);
        nothing once it has started."""
        self._abandoned.set()
        abandon = getattr(self.driver, "abandon", None)
        if abandon is not None:
            abandon()

    def stop(self) -> None:
        """Stop the connector and the servers, unmount respx (idempotent)."""
        self._stack.close()

    def _driver(self, env: PlatformEnv) -> ConnectorDriver:
        settings = self.settings
        if self._cmd is not None:
            return CommandDriver(
                self._cmd,
                self._env,
                start_timeout=settings.start_timeout,
                stop_grace=settings.stop_grace,
                bounds=self.bounds,
            )
        if self._url is not None:
            return UrlDriver(self._url, start_timeout=settings.start_timeout, bounds=self.bounds)
        app = load_connector(self._connector, env.plugin_settings())
        return InProcessDriver(app, bounds=self.bounds)

    def _credentials(self) -> Credentials | None:
        try:
            return self.partner.credentials
        except PartnerUsageError:  # a scenario without a seeded refresh token
            return None

    def _configure_gateway(self) -> None:
        configure_gateway(self.gateway, self.partner, self.partner_url)
        served = self.gateway.configuration_file("credentials")
        access_token = json.loads(served).get("access_token") if served else None
        if isinstance(access_token, str):
            self.redactor.add_secret(access_token, "access_token")

    def reauthenticate(self) -> None:
        """The operator logs in to the partner again: the gateway's ``credentials`` file is
        written anew, with a fresh long-lived access token where the partner has no refresh
        grant (Meta), so a token that expired for good stops being the connector's."""
        self._configure_gateway()

    def _learn_secrets(self) -> None:
        credentials = self._credentials()
        if credentials is not None:
            self.redactor.add_secret(credentials.client_secret, "client_secret")
            self.redactor.add_secret(credentials.refresh_token, "refresh_token")
        self.redactor.add_secret(self.gateway.token, "plugin_token")
        self.redactor.add_secret(self.partner.admin_token, "admin_token")

    # ------------------------------------------------------------------ trace observers

    def _record(
        self,
        leg: Leg,
        request: httpx.Request,
        response: httpx.Response | None,
        error: BaseException | None,
    ) -> None:
        body = request.content
        if response is not None and _is_token_path(request.url.path):
            self.redactor.learn_from_form(body)
            self.redactor.learn_from_form(request.url.query)  # Meta's GET carries the secret
            self.redactor.learn_from_token_answer(response.content)
        exchange = self.trace.begin(
            leg, request.method, str(request.url), request.headers.multi_items(), body
        )
        if response is not None:
            exchange.finish(response.status_code, response.headers.multi_items(), response.content)
        if error is not None:
            kind: FailureKind = (
                "timeout" if isinstance(error, httpx.TimeoutException) else "connection"
            )
            exchange.fail(kind, f"{type(error).__name__}: {error}")

    def _partner_observer(self, request: httpx.Request, outcome: object) -> None:
        if isinstance(outcome, httpx.Response):
            self._record("connector->partner", request, outcome, None)
        else:
            error = outcome if isinstance(outcome, BaseException) else None
            self._record("connector->partner", request, None, error)

    def _gateway_observer(
        self,
        request: httpx.Request,
        response: httpx.Response | None,
        error: BaseException | None,
    ) -> None:
        self._record("connector->gateway", request, response, error)

    # ------------------------------------------------------------------ feeds

    def new_feed(
        self,
        partner_account_id: str | None = "acc-1",
        identifying: Iterable[str] = DEFAULT_IDENTIFYING,
        *,
        segment_name: str | None = None,
        partner_segment_id: str | None = None,
        properties: Mapping[str, str | None] | None = None,
        datamart_id: str = DEFAULT_DATAMART_ID,
    ) -> Feed:
        """Register a feed in the gateway (deterministic ids) and return it;
        ``partner_account_id=None`` leaves that property out, ``properties`` add or override."""
        if self.driver is None:
            raise PlatformSetupError("Platform.new_feed() outside `with Platform(...)`: enter it")
        n = next(self._ids)
        feed_id, segment_id = str(_FIRST_FEED_ID + n), str(_FIRST_SEGMENT_ID + n)
        values: dict[str, str | None] = {}
        for name, value in (
            ("partner_account_id", partner_account_id),
            ("segment_name", segment_name),
            ("partner_segment_id", partner_segment_id),
        ):
            if value is not None:
                values[name] = value
        values.update(properties or {})
        selected = tuple(identifying)
        self.gateway.add_feed(
            FeedSetup(
                feed_id=feed_id,
                segment={
                    "id": segment_id,
                    "name": f"Simulated segment {segment_id}",
                    "datamart_id": datamart_id,
                },
                properties=values,
                selected_identifying_resources=selected,
            )
        )

        def partner_membership() -> frozenset[PartnerIdentifier]:
            return self.partner.members(self.core_segment_id(feed_id))

        feed = Feed(
            driver=self.driver,
            clock=self.clock,
            settings=self.settings,
            feed_id=feed_id,
            segment_id=segment_id,
            datamart_id=datamart_id,
            # what the partner can receive: LinkedIn has no type for a user account id
            identifying=partner_identifying(self.partner.dialect, selected),
            partner_account_id=partner_account_id,
            partner_membership=partner_membership,
            redactor=self.redactor,
        )
        self.feeds.append(feed)
        return feed

    def partner_segment_id(self, feed_id: str) -> str:
        """The feed's ``partner_segment_id`` property (written back by the connector)."""
        value = self.gateway.property_value(feed_id, "partner_segment_id")
        if not value:
            raise FeedStateError(
                f"feed {feed_id} has no partner_segment_id property: the connector did not "
                "write it back at creation (see clause CREATE-PERSISTS-ID)"
            )
        return value

    def core_segment_id(self, feed_id: str) -> str:
        """The fake partner's core id of the feed's segment (``seg-000007``), whatever the
        dialect wrote back: what the ledger's ``segment_id`` and ``Partner.members`` use."""
        return core_segment_id(self.partner.dialect, self.partner_segment_id(feed_id))

    def summary(self, feed: Feed) -> dict[str, Any]:
        """The feed's accounting per session beside the partner's ledger for its segment."""
        data: dict[str, Any] = {
            "feed_id": feed.feed_id,
            "state": feed.state,
            "sessions": [s.to_dict() for s in feed.sessions.values()],
        }
        written = self.gateway.property_value(feed.feed_id, "partner_segment_id")
        if written:
            segment_id = core_segment_id(self.partner.dialect, written)
            uploads = self.partner.ledger.uploads(segment_id)
            data["partner"] = {
                "segment_id": segment_id,
                "uploads": len(uploads),
                "operations_received": sum(len(e.operations) for e in uploads),
                "operations_accepted": sum(e.accepted for e in uploads),
                "operations_rejected": sum(e.rejected for e in uploads),
                "members": len(self.partner.members(segment_id)),
            }
        return data
