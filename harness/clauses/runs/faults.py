"""The partner-fault and authentication conformance runs.

One run per partner preset that matters for the fault clauses (``preset:<name>``, the
preset as its scenario), and ``auth``: the OAuth flows, played against the partner. Each
script drives ``record.platform`` and writes what the checks need into ``record.notes``
(its own dataclass of :mod:`harness.clauses.notes`). Nothing sleeps: waiting is the clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.fernet import Fernet

from contracts.gateway import string_property
from fake_partner import LedgerEntry, Limits, Scenario
from fake_partner.faults import DropEffect, ErrorEffect, FaultRule, Window
from harness.clauses.evidence import RunRecord, RunSpec
from harness.clauses.notes import (
    Answered,
    AuthNotes,
    ConnectionFaultsNotes,
    Consent,
    FeedSummary,
    InvalidGrantNotes,
    PartnerSummary,
    PresetNotes,
    Step,
    TamperedState,
)
from harness.clauses.run_names import AUTH, CONNECTION_FAULTS, INVALID_GRANT, preset_run
from harness.drivers import Answer
from harness.generators import make_users
from harness.simulator import Feed
from harness.users import SimUser

__all__ = [
    "ACCOUNT",
    "AUTH",
    "CONNECTION_FAULTS",
    "DATAMART_ID",
    "FEED_DESTINATION_ID",
    "FINAL_ADVANCE",
    "PLUGIN_VERSION_ID",
    "PRESET_RUNS",
    "REFUSED_DESTINATION_ID",
    "RUN_SPECS",
    "SPLIT_OPERATIONS",
    "TAMPERED_STATES",
    "USER_ID",
    "preset_run",
    "tampered_states",
]

ACCOUNT = "acc-1"
"""The partner account the feeds use (the seeded refresh token reaches it)."""
USER_ID = "1042"
PLUGIN_VERSION_ID = "7331"
DATAMART_ID = "1509"
FEED_DESTINATION_ID = "9001"
"""The feed destination authenticated in the ``auth`` run (``oauth_redirect_url``)."""
REFUSED_DESTINATION_ID = "9002"
"""A feed destination whose stored OAUTH2 refresh token the partner does not know."""
PROVISIONING_WAIT = 61.0
"""Virtual seconds waited between creation and connection: past the partner's provisioning."""
FINAL_ADVANCE = 3700.0
"""Virtual seconds waited before the last updates: past the access token lifetime (3600 s)."""
"""The run whose connection polls meet a 429, a 503, a dropped connection and a bare 429."""
SPLIT_OPERATIONS = 15
"""The partner's per-request operation limit in the mixed-invalid-items run: its batches of
20 go out in two uploads, its last batches of 10 in one."""
TAMPERED_STATES: tuple[tuple[str, str, bool], ...] = (
    ("tamper_altered", "a state with one character changed", False),
    ("tamper_field", "a well-formed state with one field changed, re-built without the key", True),
    ("tamper_forged", "a forged state", False),
    ("tamper_attacker", "a state re-encoded by an attacker who knows its format", True),
)
"""The tampered states the auth run sends: (notes key, what it is, whether it needs the
state's format recognised; an opaque state has no field to change nor format to imitate)."""


# ---------------------------------------------------------------------- summaries for notes


def _partner_summary(record: RunRecord) -> PartnerSummary:
    """What the partner's ledger saw: requests, uploads, grants and the faults' answers."""
    entries: tuple[LedgerEntry, ...] = record.partner.ledger.entries
    v1 = [e for e in entries if e.path.startswith("/v1/")]
    token = [e for e in entries if e.path == "/oauth/token"]
    return PartnerSummary(
        v1_requests=len(v1),
        uploads=sum(1 for e in v1 if e.route == "POST /v1/segments/{segment_id}/members"),
        refresh_requests=sum(1 for e in token if e.grant_type == "refresh_token"),
        refresh_grants=sum(1 for e in token if e.grant_type == "refresh_token" and e.status == 200),
        invalid_grant=sum(1 for e in token if e.error_code == "invalid_grant"),
        answers_401=sum(1 for e in v1 if e.status == 401),
        answers_429=sum(1 for e in v1 if e.status == 429),
        answers_5xx=sum(1 for e in entries if e.status is not None and e.status >= 500),
        dropped=sum(1 for e in entries if e.dropped),
        operations_rejected=sum(e.rejected for e in v1),
        virtual_seconds=(entries[-1].time - entries[0].time) if entries else 0.0,
    )


# ---------------------------------------------------------------------- preset runs


@lru_cache(maxsize=4)
def _population(users: int, seed: int) -> tuple[SimUser, ...]:
    """The generated users of a seed, shared by the preset runs (only read, never changed)."""
    return tuple(make_users(users, seed))


def _feed_life(
    record: RunRecord,
    seed: int,
    *,
    preset: str,
    users: int,
    deletes: int,
    wait_before_connect: float,
) -> None:
    """Create and connect a feed, load ``users`` generated users and flush, delete some and
    flush, let the access token expire, send a few more.

    Notes: :class:`~harness.clauses.notes.PresetNotes` (the feed's and the partner ledger's
    counts at the end).
    """
    platform = record.platform
    notes = record.notes
    assert isinstance(notes, PresetNotes)
    notes.preset, notes.users, notes.deletes = preset, users, deletes
    notes.final_advance = FINAL_ADVANCE
    feed = platform.new_feed(partner_account_id=ACCOUNT)
    record.feeds["main"] = feed
    try:
        creation = feed.create()
        notes.creation = Step.of(creation)
        if not creation.ok:
            record.aborted = f"creation failed: {creation}"
            return
        if wait_before_connect:
            platform.clock.advance(wait_before_connect)
        connection = feed.connect()
        notes.connection = Step.of(connection)
        if not connection.ok:
            record.aborted = f"connection failed: {connection}"
            return
        population = _population(users, seed)
        feed.upsert(population)
        feed.flush()
        feed.delete(population[:deletes])
        feed.flush()
        platform.clock.advance(FINAL_ADVANCE)
        feed.upsert(population[deletes : deletes + 10])
        feed.flush()
    finally:
        notes.feed = FeedSummary.of(feed)
        notes.partner = _partner_summary(record)


def _preset_spec(
    preset: str,
    description: str,
    *,
    users: int = 120,
    deletes: int = 30,
    wait_before_connect: float = PROVISIONING_WAIT,
    settings: dict[str, Any] | None = None,
    scenario: Scenario | None = None,
) -> RunSpec:
    script = partial(
        _feed_life,
        preset=preset,
        users=users,
        deletes=deletes,
        wait_before_connect=wait_before_connect,
    )
    return RunSpec(
        name=preset_run(preset),
        script=script,
        scenario=scenario if scenario is not None else preset,
        description=description,
        settings={"batch_flush_max_size": 20, **(settings or {})},
        notes=PresetNotes,
    )


def _invalid_grant(record: RunRecord, seed: int) -> None:
    """The partner refuses every refresh token (400 ``invalid_grant``).

    A new feed is created (``creation_new``); a second feed, activated before the refresh
    token was revoked (its partner segment exists, its ``partner_segment_id`` is set and
    the simulator treats it as ACTIVE), is created again (``creation_existing``), connected
    (``connection``), gets 30 users upserted and 10 deleted in batches of 10 (``feed``),
    and is troubleshot (``troubleshoot``). Notes (``InvalidGrantNotes``) also: the ledger's
    counts, and ``partner_segment_id`` of the second feed.
    """
    platform = record.platform
    notes = record.notes
    assert isinstance(notes, InvalidGrantNotes)
    feed = platform.new_feed(partner_account_id=ACCOUNT)
    record.feeds["new"] = feed
    notes.creation_new = Step.of(feed.create())
    segment_id = _existing_segment(record, "activated before the revocation")
    notes.partner_segment_id = segment_id
    active = platform.new_feed(partner_account_id=ACCOUNT, partner_segment_id=segment_id)
    record.feeds["active"] = active
    try:
        notes.creation_existing = Step.of(active.create())
        notes.connection = Step.of(active.connect())
        active.state = "ACTIVE"  # it was activated before the partner revoked the token
        population = _population(30, seed)
        active.upsert(population)
        active.flush()
        active.delete(population[:10])
        active.flush()
        notes.troubleshoot = Answered.of(active.troubleshoot())
    finally:
        notes.feed = FeedSummary.of(active)
        notes.partner = _partner_summary(record)


def _connection_faults(record: RunRecord, seed: int) -> None:
    """A feed is created, then connected past provisioning while the partner fails its
    segment reads: the 1st answers 429 with Retry-After, the 2nd 503, the 3rd drops the
    connection, the 4th answers 429 without Retry-After; the 5th works.

    Notes: :class:`~harness.clauses.notes.ConnectionFaultsNotes`.
    """
    del seed
    platform = record.platform
    notes = record.notes
    assert isinstance(notes, ConnectionFaultsNotes)
    feed = platform.new_feed(partner_account_id=ACCOUNT)
    record.feeds["main"] = feed
    try:
        creation = feed.create()
        notes.creation = Step.of(creation)
        if not creation.ok:
            record.aborted = f"creation failed: {creation}"
            return
        platform.clock.advance(PROVISIONING_WAIT)
        connection = feed.connect()
        notes.connection = Step.of(connection)
        if not connection.ok:
            record.aborted = f"connection failed: {connection}"
    finally:
        notes.partner = _partner_summary(record)


def _segment_read_fault(nth: int, effect: ErrorEffect | DropEffect) -> FaultRule:
    """The ``nth`` segment read from the connection step on (past provisioning) fails."""
    return FaultRule(
        name=f"connection-fault-{nth}",
        method="GET",
        path="/v1/segments/*",
        window=Window(start=PROVISIONING_WAIT - 1),
        nth=nth,
        effect=effect,
    )


CONNECTION_FAULT_SCENARIO = Scenario(
    faults=(
        _segment_read_fault(
            1, ErrorEffect(status=429, code="RATE_LIMITED", retry_after=30, rate_limit_headers=True)
        ),
        _segment_read_fault(2, ErrorEffect(status=503, code="SERVICE_UNAVAILABLE")),
        _segment_read_fault(3, DropEffect()),
        _segment_read_fault(4, ErrorEffect(status=429, code="RATE_LIMITED")),
    )
)


def _existing_segment(record: RunRecord, name: str) -> str:
    """A ready partner segment in ``ACCOUNT``, made on the partner's side (no request)."""
    return record.partner.create_segment(ACCOUNT, name, ready=True)


# ---------------------------------------------------------------------- auth run


def _auth(record: RunRecord, seed: int) -> None:
    """Authentication: status, consent, tampered states, round trip, dynamic properties,
    feed-destination OAuth, metadata.

    Notes: :class:`~harness.clauses.notes.AuthNotes`: every answer by step, the consents
    as played, each tampered state's answer with whether the code was used around it and
    the status after (or why it could not be made), and the steps that could not be played.
    """
    platform = record.platform
    notes = record.notes
    assert isinstance(notes, AuthNotes)
    notes.partner_url = platform.partner_url
    feed = platform.new_feed(partner_account_id=ACCOUNT)
    record.feeds["main"] = feed
    notes.creation = Step.of(feed.create())
    user = {"user_id": USER_ID, "plugin_version_id": PLUGIN_VERSION_ID}
    status_body = {**user, "datamart_id": DATAMART_ID, "segment_id": feed.segment_id}

    def status() -> tuple[Answered, str | None]:
        answer = feed.call("authentication_status", status_body)
        return Answered.of(answer), _login_url(answer)

    # 1. Not authenticated yet: a login URL with a state; the user consents.
    notes.status_initial, login_url = status()
    notes.login_url = login_url
    consent = _consent(record, notes, login_url, "consent_1")
    # 2. A valid code with tampered states (TAMPERED_STATES): each refused, nothing stored.
    if consent is not None:
        code, state = consent
        rng = random.Random(f"{seed}:forged-state")
        state_format, tampered = tampered_states(state, rng)
        notes.state_format = state_format
        for key, _, _ in TAMPERED_STATES:
            value = tampered.get(key)
            if value is None:
                notes.tampered[key] = TamperedState(
                    not_applicable=f"the state's format is {state_format}"
                )
                continue
            used_before = _code_used(record, code)
            answer = feed.call("authentication", {**user, "params": {"code": code, "state": value}})
            notes.tampered[key] = TamperedState(
                answer=Answered.of(answer),
                code_used_before=used_before,
                code_used=_code_used(record, code),
                status_after=status()[0],
            )
    # 3. The round trip: a fresh login, the code, authenticated, dynamic values, logout.
    notes.status_login, login_url_2 = status()
    notes.login_url_2 = login_url_2
    consent_2 = _consent(record, notes, login_url_2, "consent_2")
    if consent_2 is not None:
        code, state = consent_2
        body = {**user, "params": {"code": code, "state": state}}
        notes.authentication = Answered.of(feed.call("authentication", body))
    notes.status_authenticated = status()[0]
    dynamic = {"datamart_id": DATAMART_ID, "user_id": USER_ID, "segment_id": feed.segment_id}
    notes.dynamic_without_account = Answered.of(feed.call("dynamic_property_values", dynamic))
    with_account = {
        **dynamic,
        "properties": [string_property("partner_account_id", ACCOUNT).model_dump(mode="json")],
    }
    notes.dynamic_with_account = Answered.of(feed.call("dynamic_property_values", with_account))
    notes.logout = Answered.of(feed.call("logout", {**user, "datamart_id": DATAMART_ID}))
    notes.status_after_logout = status()[0]
    # 4. A feed destination: its login URL, consent, authentication, test_authentication.
    _destination(record, notes, feed)
    notes.metadata = Answered.of(feed.call("metadata"))


def _destination(record: RunRecord, notes: AuthNotes, feed: Feed) -> None:
    answer = feed.call(
        "oauth_redirect_url",
        {"feed_destination_id": FEED_DESTINATION_ID, "plugin_version_id": PLUGIN_VERSION_ID},
    )
    notes.oauth_redirect_url = Answered.of(answer)
    url = answer.json.get("login_url") if isinstance(answer.json, dict) else None
    login_url = url if isinstance(url, str) else None
    notes.login_url_destination = login_url
    consent = _consent(record, notes, login_url, "consent_destination")
    if consent is not None:
        code, state = consent
        body = {
            "user_id": USER_ID,
            "plugin_version_id": PLUGIN_VERSION_ID,
            "feed_destination_id": FEED_DESTINATION_ID,
            "params": {"code": code, "state": state},
        }
        notes.authentication_destination = Answered.of(feed.call("authentication", body))
    notes.test_authentication_valid = Answered.of(
        feed.call("test_authentication", {"feed_destination_id": FEED_DESTINATION_ID})
    )
    record.gateway.set_credentials(
        REFUSED_DESTINATION_ID, "OAUTH2", {"refresh_token": "rt-unknown-to-the-partner"}
    )
    notes.test_authentication_refused = Answered.of(
        feed.call("test_authentication", {"feed_destination_id": REFUSED_DESTINATION_ID})
    )


def _login_url(answer: Answer) -> str | None:
    data = answer.json.get("data") if isinstance(answer.json, dict) else None
    url = data.get("login_url") if isinstance(data, dict) else None
    return url if isinstance(url, str) and url else None


def _consent(
    record: RunRecord, notes: AuthNotes, login_url: str | None, key: str
) -> tuple[str, str] | None:
    """Play the user's consent: GET the login URL at the partner, read code and state from
    the redirect (not followed); noted in ``notes.consents[key]`` (or ``skipped``)."""
    if login_url is None:
        notes.skipped[key] = "no login_url to consent to"
        return None
    partner = urlsplit(record.platform.partner_url)
    target = urlsplit(login_url)
    if (target.scheme, target.netloc) != (partner.scheme, partner.netloc):
        notes.skipped[key] = f"the login_url {login_url!r} is not at the partner {partner.geturl()}"
        return None
    sent_state = parse_qs(target.query).get("state", [None])[0]
    try:
        with httpx.Client(follow_redirects=False, timeout=10.0) as client:
            response = client.get(login_url)
    except httpx.HTTPError as error:
        notes.consents[key] = Consent(error=f"{type(error).__name__}: {error}")
        return None
    _tag_consent(record)
    location = urlsplit(response.headers.get("location", ""))
    query = parse_qs(location.query)
    code = query.get("code", [None])[0]
    state = query.get("state", [None])[0]
    notes.consents[key] = Consent(
        http_status=response.status_code,
        code_received=code is not None,
        state_unchanged=state is not None and state == sent_state,
        error=query.get("error", [None])[0]
        or (None if response.status_code == 302 else response.text[:300]),
    )
    if code is None or state is None:
        return None
    record.platform.redactor.add_secret(code)
    return code, state


def _tag_consent(record: RunRecord) -> None:
    """Mark the consent request in the trace: the harness made it, playing the user."""
    for exchange in reversed(record.trace.exchanges("connector->partner", "/oauth/authorize")):
        exchange.tags["actor"] = "harness: user consent"
        return


def _code_used(record: RunRecord, code: str) -> bool | None:
    """Whether the partner exchanged this authorization code (None: unknown code)."""
    return record.partner.code_used(code)


def _altered(state: str) -> str:
    """The state with one character in its middle changed."""
    middle = len(state) // 2
    replacement = "B" if state[middle] == "A" else "A"
    return state[:middle] + replacement + state[middle + 1 :]


def _forged(state: str, rng: random.Random) -> str:
    """A state the connector never issued, of the same length and alphabet."""
    raw = bytes(rng.getrandbits(8) for _ in range(max(16, len(state))))
    forged = base64.urlsafe_b64encode(hashlib.sha256(raw).digest() + raw).decode()
    return forged[: max(len(state), 16)]


# The formats a connector's state may have, each with how to change one of its fields in a
# well-formed envelope (without the connector's key) and how an attacker who knows the
# format would make one: Fernet (the reference's), JWT, ``payload.signature`` and bare
# (base64) JSON. Anything else is opaque: only the altered and forged states apply.

_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_TIME_KEYS = ("issued_at", "iat", "ts", "timestamp", "time", "created_at", "nonce", "exp")
_IDENTITY_KEYS = frozenset(
    {"user_id", "plugin_version_id", "feed_destination_id", "datamart_id", "sub", "aud"}
)
_SECRET_KEYS = ("nonce", "csrf", "salt", "random", "jti")
_FERNET_OVERHEAD = 1 + 8 + 16 + 32
"""Fernet: version byte, timestamp, IV, then AES blocks, then an HMAC-SHA256."""

Tampering = tuple[str, str]
"""(one field changed, re-encoded by an attacker)."""


def tampered_states(state: str, rng: random.Random) -> tuple[str, dict[str, str]]:
    """The state's format (``fernet``, ``jwt``, ``signed-json``, ``json``, ``opaque``) and
    the tampered states of ``TAMPERED_STATES`` it allows, by notes key."""
    tampered = {"tamper_altered": _altered(state), "tamper_forged": _forged(state, rng)}
    formats: tuple[tuple[str, Callable[[str, random.Random], Tampering | None]], ...] = (
        ("fernet", _tamper_fernet),
        ("jwt", _tamper_jwt),
        ("signed-json", _tamper_signed_json),
        ("json", _tamper_json),
    )
    for name, tamper in formats:
        found = tamper(state, rng)
        if found is not None:
            tampered["tamper_field"], tampered["tamper_attacker"] = found
            return name, tampered
    return "opaque", tampered


def _b64decode(text: str) -> bytes | None:
    bare = text.rstrip("=")
    if not bare or not set(bare) <= _B64URL or len(text) - len(bare) > 2:
        return None
    try:
        return base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except (binascii.Error, ValueError):
        return None


def _b64encode(data: bytes, like: str) -> str:
    """URL-safe base64, padded only when ``like`` is."""
    text = base64.urlsafe_b64encode(data).decode()
    return text if like.endswith("=") else text.rstrip("=")


def _json_object(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) and value else None


def _dumps(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value - 1
    text = str(value)
    if not text:
        return "A"
    return text[:-1] + ("B" if text[-1] == "A" else "A")


def _one_field_changed(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with one field changed: a time or nonce first, never whom it is for (a
    connector that compares that to the request would refuse it for another reason)."""
    keys = [k for k in _TIME_KEYS if k in payload]
    keys += [k for k in payload if k not in _IDENTITY_KEYS and payload[k] is not None]
    key = keys[0] if keys else next(iter(payload))
    return {**payload, key: _changed(payload[key])}


def _as_attacker(payload: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """What an attacker who knows the format composes: the same fields, their own nonce,
    a fresh issue time (and expiry in the future)."""
    now = int(time.time())
    composed = dict(payload)
    for key, value in payload.items():
        if any(word in key.lower() for word in _SECRET_KEYS) and isinstance(value, str):
            composed[key] = base64.urlsafe_b64encode(rng.randbytes(max(6, len(value)))).decode()[
                : max(len(value), 8)
            ]
        elif key in _TIME_KEYS and isinstance(value, int | float) and not isinstance(value, bool):
            composed[key] = now + 600 if key == "exp" else now  # valid for 10 more minutes
    return composed if composed != payload else _one_field_changed(payload)


def _attacker_key(rng: random.Random) -> bytes:
    return rng.randbytes(32)


def _tamper_fernet(state: str, rng: random.Random) -> Tampering | None:
    data = _b64decode(state)
    if data is None or data[:1] != b"\x80" or len(data) < _FERNET_OVERHEAD + 16:
        return None
    if (len(data) - _FERNET_OVERHEAD) % 16:
        return None
    issued = int.from_bytes(data[1:9], "big")
    field_changed = _b64encode(data[:1] + (issued - 1).to_bytes(8, "big") + data[9:], state)
    now = int(time.time())
    plain = {
        "plugin_version_id": PLUGIN_VERSION_ID,
        "issued_at": now,
        "datamart_id": DATAMART_ID,
        "user_id": USER_ID,
        "feed_destination_id": None,
        "nonce": base64.urlsafe_b64encode(rng.randbytes(8)).decode().rstrip("="),
    }
    fernet = Fernet(base64.urlsafe_b64encode(_attacker_key(rng)))
    attacker = fernet.encrypt_at_time(_dumps(plain), now).decode()
    return field_changed, _b64encode(_b64decode(attacker) or b"", state)


def _tamper_jwt(state: str, rng: random.Random) -> Tampering | None:
    parts = state.split(".")
    if len(parts) != 3:
        return None
    header = _json_object(_b64decode(parts[0]))
    payload = _json_object(_b64decode(parts[1]))
    if header is None or payload is None or "alg" not in header:
        return None
    field_changed = ".".join(
        (parts[0], _b64encode(_dumps(_one_field_changed(payload)), ""), parts[2])
    )
    head = _b64encode(_dumps({"alg": "HS256", "typ": "JWT"}), "")
    body = _b64encode(_dumps(_as_attacker(payload, rng)), "")
    signature = hmac.new(_attacker_key(rng), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return field_changed, f"{head}.{body}.{_b64encode(signature, '')}"


def _tamper_signed_json(state: str, rng: random.Random) -> Tampering | None:
    parts = state.split(".")
    if len(parts) != 2 or not parts[1]:
        return None
    payload = _json_object(_b64decode(parts[0]))
    if payload is None:
        return None
    field_changed = f"{_b64encode(_dumps(_one_field_changed(payload)), parts[0])}.{parts[1]}"
    body = _b64encode(_dumps(_as_attacker(payload, rng)), parts[0])
    mac = hmac.new(_attacker_key(rng), body.encode(), hashlib.sha256)
    hexadecimal = all(c in "0123456789abcdef" for c in parts[1].lower())
    signature = mac.hexdigest() if hexadecimal else _b64encode(mac.digest(), parts[1])
    return field_changed, f"{body}.{signature}"


def _tamper_json(state: str, rng: random.Random) -> Tampering | None:
    payload = _json_object(state.encode()) if state.startswith("{") else None
    if payload is not None:
        return (
            _dumps(_one_field_changed(payload)).decode(),
            _dumps(_as_attacker(payload, rng)).decode(),
        )
    payload = _json_object(_b64decode(state))
    if payload is None:
        return None
    return (
        _b64encode(_dumps(_one_field_changed(payload)), state),
        _b64encode(_dumps(_as_attacker(payload, rng)), state),
    )


# ---------------------------------------------------------------------- the runs

PRESET_RUNS: tuple[RunSpec, ...] = (
    _preset_spec(
        "token-expiry-mid-upload",
        "120 users in batches of 20: the 2nd upload's access token expires on arrival; the "
        "clock then passes the token lifetime",
    ),
    _preset_spec(
        "rate-limit-burst",
        "/v1 calls 3 to 5 (the first uploads) answer 429 with Retry-After: 30",
    ),
    _preset_spec(
        "rate-limit-no-retry-after",
        "/v1 calls 3 to 5 (the first uploads) answer 429 without Retry-After",
    ),
    _preset_spec(
        "flaky-5xx",
        "about 1 /v1 call in 5 answers 503 (seeded: the 1st, 8th, 13th, 20th...); creation "
        "may be retried (3 attempts)",
        settings={"max_creation_attempts": 3},
    ),
    _preset_spec("ambiguous-503", "the 1st upload is applied, then answered 503"),
    _preset_spec("dropped-connection", "the 1st upload's connection closes with no answer"),
    _preset_spec("ambiguous-drop", "the 1st upload is applied, then its connection closes"),
    _preset_spec(
        "mixed-invalid-items",
        "about 10% of the upload operations are rejected per item (IDENTIFIER_REJECTED); the "
        f"partner takes {SPLIT_OPERATIONS} operations per request, so batches of 20 are split",
        scenario=Scenario(
            presets=("mixed-invalid-items",), limits=Limits(max_operations=SPLIT_OPERATIONS)
        ),
    ),
    _preset_spec(
        "not-ready-for-3-polls",
        "the new segment answers 404 SEGMENT_NOT_READY to 3 calls: connection polls",
        wait_before_connect=0.0,
    ),
)

RUN_SPECS: tuple[RunSpec, ...] = (
    *PRESET_RUNS,
    RunSpec(
        name=INVALID_GRANT,
        script=_invalid_grant,
        scenario="invalid-grant",
        description="the partner refuses the refresh token: creation, connection, batches "
        "and troubleshoot of a feed activated before the revocation",
        settings={"batch_flush_max_size": 10},
        notes=InvalidGrantNotes,
    ),
    RunSpec(
        name=CONNECTION_FAULTS,
        script=_connection_faults,
        scenario=CONNECTION_FAULT_SCENARIO,
        description="connection polls past provisioning meet a 429 (Retry-After: 30), a 503, "
        "a dropped connection and a 429 without Retry-After, then the segment answers",
        notes=ConnectionFaultsNotes,
    ),
    RunSpec(
        name=AUTH,
        script=_auth,
        description="authentication status, consent, tampered states, round trip, dynamic "
        "property values, feed-destination OAuth, metadata",
        notes=AuthNotes,
    ),
)
"""The fault and authentication runs, in the order they are executed."""
