"""Scenarios: the partner's knobs, seeded identities and fault rules, loadable from TOML or JSON.

Every mistake in a scenario file becomes a :class:`ScenarioError` whose lines name the
key, the bad value and what is allowed, e.g.
``faults[0].effect.kind: 'explode' is not one of: error, latency, drop, ...``.
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from fake_partner.bounds import MAX_COUNT, Count, Flag, Fraction, Seconds, Seed
from fake_partner.errors import ScenarioError
from fake_partner.faults import FaultRule
from fake_partner.inbound import MAX_JSON_DEPTH, UnreadableRequestError, json_value
from fake_partner.presets import PRESETS

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
DEFAULT_REDIRECT_URIS = ("https://*", "http://localhost*", "http://127.0.0.1*")
DEFAULT_CLIENT_ID = "feed-harness-client"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Strict):
    """Hard limits per request (``partner-api.md``: 10,000 operations, 10 identifiers, 5 MiB)."""

    max_operations: Count = Field(default=10_000, ge=1, le=1_000_000)
    max_identifiers_per_operation: Count = Field(default=10, ge=1, le=1_000)
    max_body_bytes: Count = Field(default=5 * 1024 * 1024, ge=1, le=256 * 1024 * 1024)
    max_page_size: Count = Field(default=200, ge=1, le=100_000)
    max_name_length: Count = Field(default=100, ge=1, le=100_000)


class AccountSpec(_Strict):
    """An advertiser account at the partner."""

    id: str = Field(pattern=_ID_PATTERN)
    name: str | None = None
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")


class ClientSpec(_Strict):
    """An OAuth client (application); a missing secret is derived from the scenario seed.

    ``redirect_uris`` entries are exact URIs or globs (``*``); ``consent_accounts`` are the
    accounts the user's consent grants (null: every account).
    """

    client_id: str = Field(pattern=_ID_PATTERN)
    client_secret: str | None = Field(default=None, min_length=8)
    redirect_uris: tuple[str, ...] = DEFAULT_REDIRECT_URIS
    consent_accounts: tuple[str, ...] | None = None


class RefreshTokenSpec(_Strict):
    """A refresh token already granted: to which client (null: the first), for which accounts."""

    token: str | None = Field(default=None, min_length=8)
    client_id: str | None = None
    accounts: tuple[str, ...] = Field(min_length=1)
    expires_in: Seconds | None = Field(default=None, gt=0)


def _default_accounts() -> tuple[AccountSpec, ...]:
    return (
        AccountSpec(id="acc-1", name="Account One", currency="EUR"),
        AccountSpec(id="acc-2", name="Account Two", currency="USD"),
    )


def _first_account_id(accounts: Any) -> str | None:
    """The id of the first account in raw scenario data, if it has a readable one."""
    if not isinstance(accounts, list | tuple) or not accounts:
        return None
    first = accounts[0]
    if isinstance(first, AccountSpec):
        return first.id
    if isinstance(first, Mapping) and isinstance(first.get("id"), str):
        return str(first["id"])
    return None


class Scenario(_Strict):
    """Everything that makes one partner behave the way a test wants (defaults: the spec's)."""

    presets: tuple[str, ...] = ()
    seed: Seed = 0
    access_token_lifetime: Seconds = Field(default=3600, gt=0)
    refresh_token_lifetime: Seconds = Field(default=365 * 86400, gt=0)
    authorization_code_lifetime: Seconds = Field(default=600, gt=0)
    provisioning_delay: Seconds = 60
    processing_delay: Seconds = 30
    match_probability: Fraction = 0.6
    privacy_floor: Count = 100
    targetable_floor: Count = 100
    rate_limit_per_minute: Count = Field(default=600, ge=1)
    send_rate_limit_headers: Flag = True
    daily_quota: Count | None = Field(default=None, ge=1, le=MAX_COUNT)
    limits: Limits = Limits()
    accounts: tuple[AccountSpec, ...] = Field(default_factory=_default_accounts)
    clients: tuple[ClientSpec, ...] = ()
    refresh_tokens: tuple[RefreshTokenSpec, ...] = ()
    faults: tuple[FaultRule, ...] = ()
    partner: Literal["generic", "linkedin", "meta"] = "generic"
    """The dialect the partner speaks (``docs/partner-dialects.md``)."""

    @model_validator(mode="before")
    @classmethod
    def _aliases_and_defaults(cls, data: Any) -> Any:
        """``preset`` is a synonym of ``presets``; default identities follow ``accounts``.

        Without ``clients`` there is one client consenting to the first account; without
        ``refresh_tokens``, one refresh token for the first account.
        """
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if "preset" in data:
            value = data.pop("preset")
            if "presets" in data:
                raise ValueError("give either preset or presets, not both")
            data["presets"] = [value] if isinstance(value, str) else value
        first = _first_account_id(data.get("accounts", _default_accounts()))
        if "clients" not in data:
            data["clients"] = [
                ClientSpec(
                    client_id=DEFAULT_CLIENT_ID,
                    consent_accounts=(first,) if first is not None else None,
                )
            ]
        if "refresh_tokens" not in data:
            data["refresh_tokens"] = (
                [RefreshTokenSpec(accounts=(first,))] if first is not None else []
            )
        return data

    @field_validator("presets")
    @classmethod
    def _known_presets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for index, name in enumerate(value):
            if name not in PRESETS:
                raise ValueError(f"presets[{index}]: {name!r} is not one of: {', '.join(PRESETS)}")
        return value

    @model_validator(mode="after")
    def _cross_references(self) -> Scenario:
        problems: list[str] = []
        account_ids = [account.id for account in self.accounts]
        if not account_ids:
            problems.append("accounts: at least one account is needed")
        problems += _duplicates("accounts", "id", account_ids)
        client_ids = [client.client_id for client in self.clients]
        if not client_ids and self.refresh_tokens:
            problems.append("refresh_tokens: need at least one client in clients")
        problems += _duplicates("clients", "client_id", client_ids)
        known = ", ".join(account_ids)
        for index, client in enumerate(self.clients):
            for position, account in enumerate(client.consent_accounts or ()):
                if account not in account_ids:
                    problems.append(
                        f"clients[{index}].consent_accounts[{position}]: {account!r} is not "
                        f"one of the scenario's accounts: {known}"
                    )
        for index, token in enumerate(self.refresh_tokens):
            if token.client_id is not None and token.client_id not in client_ids:
                problems.append(
                    f"refresh_tokens[{index}].client_id: {token.client_id!r} is not one of "
                    f"the scenario's clients: {', '.join(client_ids)}"
                )
            for position, account in enumerate(token.accounts):
                if account not in account_ids:
                    problems.append(
                        f"refresh_tokens[{index}].accounts[{position}]: {account!r} is not one "
                        f"of the scenario's accounts: {known}"
                    )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def effective(self) -> Scenario:
        """This scenario with its presets expanded: their knobs set, their rules appended."""
        if not self.presets:
            return self
        knobs: dict[str, Any] = {}
        rules = list(self.faults)
        for name in self.presets:
            preset = PRESETS[name]
            knobs.update(preset.knobs)
            rules.extend(preset.faults)
        return self.model_copy(update={**knobs, "faults": tuple(rules), "presets": ()})

    def to_json(self) -> str:
        """The scenario as JSON, loadable again with :func:`parse_scenario`."""
        return self.model_dump_json(indent=2, exclude_defaults=False)


def _duplicates(where: str, key: str, values: list[str]) -> list[str]:
    seen: set[str] = set()
    problems = []
    for index, value in enumerate(values):
        if value in seen:
            problems.append(f"{where}[{index}].{key}: {value!r} is used twice; ids must be unique")
        seen.add(value)
    return problems


def parse_scenario(
    text: str | bytes, format: Literal["toml", "json"], source: str | None = None
) -> Scenario:
    """A scenario from TOML or JSON text; a :class:`ScenarioError` names every bad key."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ScenarioError(
                [f"not UTF-8 (byte {error.start}: {error.reason}): save the file as UTF-8"], source
            ) from None
    data: Any
    try:
        if format == "json":
            data = json_value(text.encode("utf-8", "surrogatepass"), "the scenario")
        else:
            data = tomllib.loads(text)
            _check_toml_depth(data)
    except UnreadableRequestError as refusal:
        raise ScenarioError([f"not valid JSON: {refusal.message}"], source) from None
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError([f"not valid TOML: {error}"], source) from None
    except RecursionError:
        raise ScenarioError(
            [f"the TOML nests more than {MAX_JSON_DEPTH} levels deep: flatten it"], source
        ) from None
    return scenario_from_data(data, source)


def _check_toml_depth(data: Any) -> None:
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise RecursionError
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def load_scenario(
    source: str | os.PathLike[str] | Mapping[str, Any] | Scenario | None = None,
) -> Scenario:
    """A scenario from a ``.toml``/``.json`` file, a mapping, a preset name, or the default."""
    if source is None:
        return Scenario()
    if isinstance(source, Scenario):
        return source
    if isinstance(source, Mapping):
        return scenario_from_data(source)
    if isinstance(source, str) and source in PRESETS:
        return Scenario(presets=(source,))
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ScenarioError(
            [
                f"file {str(path)!r}: extension {suffix or '(none)'!r} is not one of: .toml, "
                f".json (or give a preset name: {', '.join(PRESETS)})"
            ]
        )
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ScenarioError([f"file {str(path)!r} cannot be read: {error.strerror}"]) from None
    return parse_scenario(data, "toml" if suffix == ".toml" else "json", str(path))


def scenario_from_data(data: Any, source: str | None = None) -> Scenario:
    """Validate plain data (parsed TOML/JSON) into a :class:`Scenario`."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        lines = [_error_line(detail) for detail in error.errors(include_url=False)]
        raise ScenarioError(
            [part for line in lines for part in line.splitlines()], source
        ) from None


# --- readable validation errors -------------------------------------------------------------


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation may hold (through Optional, unions and Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_classes(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        found: list[type[BaseModel]] = []
        for arg in typing.get_args(annotation):
            found += _model_classes(arg)
        return found
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _item_annotation(annotation: Any) -> Any:
    """The element type of a tuple/list annotation (through Optional and Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _item_annotation(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                return _item_annotation(arg)
    if origin in (tuple, list):
        return typing.get_args(annotation)[0]
    return None


def _walk(loc: tuple[int | str, ...]) -> tuple[str, type[BaseModel] | None]:
    """Readable path of a pydantic ``loc`` (union tags dropped) and the model at its end."""
    text = ""
    annotation: Any = Scenario
    model: type[BaseModel] | None = Scenario
    skip_tag = False
    for element in loc:
        if skip_tag:
            skip_tag = False
            tagged = [m for m in _model_classes(annotation) if _tag(m) == element]
            if tagged:
                model = tagged[0]
                annotation = model
                continue
        if isinstance(element, int):
            text += f"[{element}]"
            annotation = _item_annotation(annotation)
        else:
            text += f".{element}" if text else element
            models = _model_classes(annotation)
            holder = models[0] if len(models) == 1 else None
            field = holder.model_fields.get(element) if holder is not None else None
            annotation = field.annotation if field is not None else None
        models = _model_classes(annotation)
        model = models[0] if len(models) == 1 else None
        skip_tag = len(models) > 1
    return text, model


def _tag(model: type[BaseModel]) -> object:
    field = model.model_fields.get("kind")
    return field.default if field is not None else None


def _show(loc: tuple[int | str, ...], value: object) -> str:
    last = next((str(e) for e in reversed(loc) if isinstance(e, str)), "")
    if "secret" in last or last == "token":
        return "(hidden)"
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _error_line(detail: ErrorDetails) -> str:
    loc = tuple(detail["loc"])
    kind = detail["type"]
    ctx: dict[str, Any] = dict(detail.get("ctx") or {})
    message = detail["msg"]
    if kind == "extra_forbidden":
        path, _ = _walk(loc[:-1])
        key = loc[-1]
        parent, model = _walk(loc[:-1])
        allowed = ", ".join(model.model_fields) if model is not None else "(see the docs)"
        where = f"{parent}.{key}" if parent else str(key)
        return f"{where}: unknown key; allowed keys: {allowed}"
    path, model = _walk(loc)
    prefix = f"{path}: " if path else ""
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = str(ctx.get("discriminator", "kind")).strip("'")
        expected = str(ctx.get("expected_tags", "")).replace("'", "")
        if kind == "union_tag_not_found":
            return f"{path}.{discriminator}: required key missing; one of: {expected}"
        return f"{path}.{discriminator}: {ctx.get('tag')!r} is not one of: {expected}"
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{prefix}{_show(loc, detail['input'])} is not one of: {expected}"
    if kind == "missing":
        return f"{prefix}required key missing"
    if kind == "value_error":
        text = message.removeprefix("Value error, ")
        if path and text.startswith(path):
            return text
        return "\n".join(f"{prefix}{line}" for line in text.splitlines())
    return f"{prefix}{message} (got {_show(loc, detail['input'])})"
