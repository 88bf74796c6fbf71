"""The partner object: one lock around the state, the ledger, the faults and the HTTP face.

``Partner(scenario=..., clock=...)`` is what tests and the harness hold. Requests reach
it through :meth:`Partner.handle` (in-process, via respx: :meth:`mount`, :meth:`mock`) or
through its ASGI app (served on loopback: ``fake_partner.server.serve``).
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from fake_partner.clock import VirtualClock
from fake_partner.collector import load_gc
from fake_partner.errors import PartnerUsageError
from fake_partner.faces import Face, face_of
from fake_partner.faults import SEGMENT_STATUSES, FaultEngine
from fake_partner.ledger import Ledger
from fake_partner.models import PartnerState, Segment
from fake_partner.pipeline import DROP_MESSAGE, Answer, Dropped, respond
from fake_partner.scenario import (
    DEFAULT_REDIRECT_URIS,
    AccountSpec,
    ClientSpec,
    RefreshTokenSpec,
    Scenario,
    load_scenario,
)

if TYPE_CHECKING:
    import respx

    from fake_partner.app import ASGIApp

logger = logging.getLogger("fake_partner")

DEFAULT_BASE_URL = "https://partner.test"
"""Where the in-process partner answers (``partner-api.md``)."""

Observer = Callable[[httpx.Request, "httpx.Response | Exception"], None]
"""Called after every partner request with the request and its answer or exception."""

ScenarioSource = Scenario | str | os.PathLike[str] | Mapping[str, Any] | None


def _hidden(secret: str) -> str:
    return f"{secret[:4]}…" if len(secret) > 8 else "…"


@dataclass(frozen=True)
class ClientCredentials:
    """An OAuth client's id and secret (the secret is masked in ``repr``)."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]

    def __repr__(self) -> str:
        return (
            f"ClientCredentials(client_id={self.client_id!r}, "
            f"client_secret={_hidden(self.client_secret)!r})"
        )


@dataclass(frozen=True)
class Credentials:
    """What a connector needs: the default client and the seeded refresh token (masked repr)."""

    client_id: str
    client_secret: str
    refresh_token: str
    account_ids: tuple[str, ...]
    redirect_uris: tuple[str, ...]

    def __repr__(self) -> str:
        return (
            f"Credentials(client_id={self.client_id!r}, "
            f"client_secret={_hidden(self.client_secret)!r}, "
            f"refresh_token={_hidden(self.refresh_token)!r}, account_ids={self.account_ids!r})"
        )


class Partner:
    """A stateful, deterministic fake ad partner (``partner-api.md``)."""

    def __init__(
        self,
        scenario: ScenarioSource = None,
        *,
        clock: VirtualClock | None = None,
        admin_token: str | None = None,
        dialect: str | None = None,
    ) -> None:
        """``dialect`` (``generic``, ``linkedin``, ``meta``) overrides the scenario's
        ``partner`` key; the default is the scenario's, ``generic`` unless it says."""
        self.clock = clock if clock is not None else VirtualClock()
        self.admin_token = admin_token or "adm-" + secrets.token_urlsafe(24)
        self.ledger = Ledger()
        self._lock = threading.RLock()
        self._observers: list[Observer] = []
        self._dialect = dialect
        if dialect is not None:
            face_of(dialect)
        self._scenario = load_scenario(scenario)
        self.face: Face = face_of(dialect or self._scenario.partner)
        self._effective = self._effective_of(self._scenario)
        self.backend = PartnerState(self._effective, self.clock)
        self.faults = FaultEngine(self._effective.faults, self._effective.seed, self.clock.now())
        self._sequence = itertools.count(1)
        self._admin_sequence = itertools.count(1)
        self._refused_sequence = itertools.count(1)
        self._seeded_refresh_tokens = self._scenario_refresh_tokens()

    # --- scenario and reset --------------------------------------------------------------------

    @property
    def scenario(self) -> Scenario:
        """The scenario as given (presets not expanded)."""
        return self._scenario

    @property
    def effective_scenario(self) -> Scenario:
        """The scenario in force: presets expanded into knobs and fault rules."""
        return self._effective

    def reset(self) -> None:
        """Back to the scenario's seeded state; empty ledger; the clock is left alone."""
        with self._lock:
            self.backend = PartnerState(self._effective, self.clock)
            self.faults = FaultEngine(
                self._effective.faults, self._effective.seed, self.clock.now()
            )
            self.ledger.clear()
            self._sequence = itertools.count(1)
            self._seeded_refresh_tokens = self._scenario_refresh_tokens()

    def set_scenario(self, scenario: ScenarioSource, *, reset: bool = False) -> None:
        """Replace the scenario: knobs and fault rules now, identities added if new.

        With ``reset=True`` the whole state restarts from it (as :meth:`reset`).
        """
        loaded = load_scenario(scenario)
        with self._lock:
            previous = self._effective
            self._scenario = loaded
            self.face = face_of(self._dialect or loaded.partner)
            self._effective = self._effective_of(loaded)
            if reset:
                self.reset()
                return
            self.backend.scenario = self._effective
            self.backend.seed_identities(self._effective)
            if (previous.seed, previous.match_probability) != (
                self._effective.seed,
                self._effective.match_probability,
            ):
                self.backend.rematch()
            self.faults = FaultEngine(
                self._effective.faults, self._effective.seed, self.clock.now()
            )

    def _effective_of(self, scenario: Scenario) -> Scenario:
        """Presets expanded, then the face's defaults for the knobs the scenario leaves unset
        (LinkedIn's 60-day tokens, 5 s provisioning, 5,000 elements a request...)."""
        effective = scenario.effective()
        updates: dict[str, Any] = {}
        for key, value in self.face.defaults.items():
            if key == "limits":
                given = (
                    scenario.limits.model_fields_set
                    if "limits" in scenario.model_fields_set
                    else set()
                )
                unset = {k: v for k, v in value.items() if k not in given}
                if unset:
                    updates["limits"] = effective.limits.model_copy(update=unset)
            elif key not in scenario.model_fields_set:
                updates[key] = value
        return effective.model_copy(update=updates) if updates else effective

    @property
    def dialect(self) -> str:
        """The dialect this partner speaks: ``generic``, ``linkedin`` or ``meta``."""
        return self.face.name

    def core_segment_id(self, external: str) -> str:
        """The core id (``seg-000007``) of a segment id as this partner's face shows it
        (LinkedIn ``1000007``, Meta ``23850000000000007``; the generic face shows the core's)."""
        return self.face.core_segment_id(external)

    def external_segment_id(self, core: str) -> str:
        """The id this partner's face shows for a core segment id."""
        return self.face.external_segment_id(core)

    def counts_shown(self, segment: Mapping[str, Any]) -> dict[str, Any]:
        """The audience counts of ``segment`` (a :meth:`segment` snapshot) as a read through
        this partner's face shows them, under the face's names: generic ``input_count``,
        ``matched_count``, ``match_rate``, ``audience_size``; LinkedIn ``inputCount``,
        ``matchedCount``, ``audienceSize``; Meta ``approximate_count_lower_bound`` and
        ``..._upper_bound``. ``match_rate`` is there only where the face shows one."""
        return self.face.counts_shown(segment)

    def dialect_info(self) -> dict[str, Any]:
        """What a connector needs to reach this face: ``{"dialect", "api_version",
        "base_path"}`` (e.g. ``linkedin``, ``202601``, ``/rest``)."""
        return self.face.info()

    def _scenario_refresh_tokens(self) -> list[str]:
        tokens = list(self.backend.refresh_tokens)
        return tokens[: len(self._effective.refresh_tokens)]

    # --- the HTTP face -------------------------------------------------------------------------

    def next_sequence(self) -> int:
        """The next ledger sequence number (used by the HTTP face)."""
        return next(self._sequence)

    def next_admin_sequence(self) -> int:
        return next(self._admin_sequence)

    def next_refused_sequence(self) -> int:
        """Numbers the requests refused unread (they have no ledger sequence)."""
        return next(self._refused_sequence)

    def respond(self, request: httpx.Request) -> Answer:
        """Handle a request: the answer, or :class:`Dropped` when the connection is dropped."""
        if not isinstance(request.stream, httpx.ByteStream):
            request.read()
        # an upload of 10,000 operations is a load of its own (fake_partner.collector)
        with self._lock, load_gc(freeze=False):
            answer = respond(self, request)
        if not request.url.path.startswith("/_admin"):
            self._notify(request, answer)
        return answer

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Handle a request in-process; a dropped connection raises httpx.RemoteProtocolError."""
        answer = self.respond(request)
        if isinstance(answer, Dropped):
            raise httpx.RemoteProtocolError(DROP_MESSAGE, request=request)
        answer.request = request
        return answer

    def add_observer(self, observer: Observer) -> None:
        """Call ``observer(request, response_or_exception)`` after every partner request."""
        with self._lock:
            self._observers.append(observer)

    def remove_observer(self, observer: Observer) -> None:
        with self._lock:
            self._observers.remove(observer)

    def _notify(self, request: httpx.Request, answer: Answer) -> None:
        outcome: httpx.Response | Exception = (
            httpx.RemoteProtocolError(DROP_MESSAGE, request=request)
            if isinstance(answer, Dropped)
            else answer
        )
        for observer in list(self._observers):
            try:
                observer(request, outcome)
            except Exception:
                logger.exception("fake_partner: observer %r failed", observer)

    def transport(self) -> httpx.MockTransport:
        """An httpx transport (sync and async) answering from this partner, no patching.

        ``httpx.Client(transport=partner.transport(), base_url=...)``: any base URL works.
        """
        return httpx.MockTransport(self.handle)

    def mount(self, router: respx.Router, base_url: str = DEFAULT_BASE_URL) -> respx.Route:
        """Route every request to ``base_url`` on ``router`` to this partner."""
        from fake_partner.mock import mount

        return mount(self, router, base_url)

    @contextmanager
    def mock(
        self, base_url: str = DEFAULT_BASE_URL, *, assert_all_mocked: bool = True
    ) -> Iterator[respx.MockRouter]:
        """Patch httpx (sync and async) so requests to ``base_url`` reach this partner."""
        from fake_partner.mock import mock

        with mock(self, base_url, assert_all_mocked=assert_all_mocked) as router:
            yield router

    def asgi_app(self, base_url: str | None = None) -> ASGIApp:
        """An ASGI application serving this partner (see ``fake_partner.server.serve``)."""
        from fake_partner.app import ASGIApp

        return ASGIApp(self, base_url)

    # --- inspection ----------------------------------------------------------------------------

    def state(self, include_members: bool = False) -> dict[str, Any]:
        """The state as plain data (tokens as fingerprints; members only if asked)."""
        with self._lock:
            data = self.backend.snapshot(include_members)
            data["faults"] = self.faults.counters()
            return data

    def segment(self, segment_id: str) -> dict[str, Any]:
        """One segment as the API shows it (whatever its status), plus live counts."""
        with self._lock:
            segment = self._segment(segment_id)
            data = self.backend.segment_json(segment)
            data["live_input_count"] = len(segment.members)
            data["live_matched_count"] = segment.live_matched
            return data

    def members(self, segment_id: str) -> frozenset[tuple[str, str]]:
        """The segment's membership: a set of ``(type, value)``."""
        with self._lock:
            return frozenset(self._segment(segment_id).members)

    def segment_ids(self, account_id: str | None = None) -> list[str]:
        """Ids of the live segments, optionally of one account, in creation order."""
        with self._lock:
            return [
                segment.id
                for segment in self.backend.segments.values()
                if account_id is None or segment.account_id == account_id
            ]

    def _segment(self, segment_id: str) -> Segment:
        segment = self.backend.segments.get(segment_id)
        if segment is None:
            raise PartnerUsageError(
                f"segment_id={segment_id!r} does not exist; known: "
                f"{', '.join(self.backend.segments) or 'none'}"
            )
        return segment

    def force_status(self, segment_id: str, status: str | None) -> None:
        """Make a segment show ``status`` from now on (``None`` returns it to its rules)."""
        if status is not None and status not in SEGMENT_STATUSES:
            raise PartnerUsageError(
                f"status={status!r} is not one of: {', '.join(SEGMENT_STATUSES)} (or None)"
            )
        with self._lock:
            self._segment(segment_id).forced_status = status

    def create_segment(
        self, account_id: str, name: str, *, description: str | None = None, ready: bool = False
    ) -> str:
        """Create a segment in ``account_id`` on the partner's side (no request, nothing in the
        ledger), as an earlier crashed creation would have left it; ``ready`` skips its
        provisioning. Returns its id."""
        with self._lock:
            client_id = self.credentials.client_id
            token = self.backend.issue_access_token(client_id, (account_id,))
            segment = self.backend.create_segment(token, account_id, name, description)
            if ready:
                segment.ready_at = min(segment.ready_at, self.clock.now())
            return str(segment.id)

    def hold_provisioning(self, segment_id: str, calls: int = 1) -> bool:
        """Make the segment answer its next ``calls`` calls 404 ``SEGMENT_NOT_READY`` (a
        re-provisioning partner); False when its status is forced (nothing to hold)."""
        with self._lock:
            segment = self._segment(segment_id)
            if segment.forced_status is not None:
                return False
            segment.hold_calls = calls
            return True

    def code_used(self, code: str) -> bool | None:
        """Whether an authorization code was exchanged for tokens (None: unknown code)."""
        with self._lock:
            found = self.backend.codes.get(code)
            return None if found is None else bool(found.used)

    # --- seeding -------------------------------------------------------------------------------

    @property
    def credentials(self) -> Credentials:
        """The first client of the scenario and its first seeded refresh token."""
        with self._lock:
            if not self._seeded_refresh_tokens:
                raise PartnerUsageError(
                    "the scenario seeds no refresh token; add one under refresh_tokens "
                    "or call seed_refresh_token()"
                )
            token = self.backend.refresh_tokens[self._seeded_refresh_tokens[0]]
            client = self.backend.clients[token.client_id]
            return Credentials(
                client.client_id,
                client.client_secret,
                token.token,
                tuple(sorted(token.accounts)),
                client.redirect_uris,
            )

    def seed_account(
        self, account_id: str | None = None, name: str | None = None, currency: str = "EUR"
    ) -> str:
        """Add an account (a fresh ``acc-N`` id when none is given); returns its id."""
        with self._lock:
            if account_id is None:
                numbers = itertools.count(len(self.backend.accounts) + 1)
                account_id = next(
                    f"acc-{n}" for n in numbers if f"acc-{n}" not in self.backend.accounts
                )
            spec = AccountSpec(id=account_id, name=name, currency=currency)
            return self.backend.add_account(spec).id

    def seed_client(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        redirect_uris: Iterable[str] = DEFAULT_REDIRECT_URIS,
        consent_accounts: Iterable[str] | None = None,
    ) -> ClientCredentials:
        """Add an OAuth client; returns its id and secret."""
        with self._lock:
            if client_id is None:
                numbers = itertools.count(len(self.backend.clients) + 1)
                client_id = next(
                    f"client-{n}" for n in numbers if f"client-{n}" not in self.backend.clients
                )
            spec = ClientSpec(
                client_id=client_id,
                client_secret=client_secret,
                redirect_uris=tuple(redirect_uris),
                consent_accounts=tuple(consent_accounts) if consent_accounts is not None else None,
            )
            client = self.backend.add_client(spec)
            return ClientCredentials(client.client_id, client.client_secret, client.redirect_uris)

    def seed_refresh_token(
        self,
        account_ids: Iterable[str],
        client_id: str | None = None,
        expires_in: float | None = None,
    ) -> str:
        """Grant a refresh token (to the first client unless told) for these accounts."""
        with self._lock:
            spec = RefreshTokenSpec(
                client_id=client_id, accounts=tuple(account_ids), expires_in=expires_in
            )
            return self.backend.add_refresh_token(spec).token

    def seed_access_token(self, account_ids: Iterable[str], client_id: str | None = None) -> str:
        """Issue an access token directly (skipping OAuth), for tests of the ``/v1`` rules."""
        with self._lock:
            chosen = client_id or next(iter(self.backend.clients), None)
            if chosen is None or chosen not in self.backend.clients:
                raise PartnerUsageError(
                    f"client_id={chosen!r} is not a known client; seed_client() first"
                )
            accounts = tuple(account_ids)
            self.backend.check_accounts("account_ids", accounts)
            return self.backend.issue_access_token(chosen, accounts).token
