"""What the three reference connectors share: the context, creation, connection,
troubleshooting and the OAuth routes (``ReferenceCore``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from contracts.delivery import SyncResult, UpdateStat
from contracts.gateway import (
    AudienceSegmentResource,
    FeedDestinationCredentials,
    PropertyModel,
    StringProperty,
    string_property,
)
from contracts.plugin_api import (
    AuthenticationRequest,
    AuthenticationResponse,
    AuthenticationStatusData,
    AuthenticationStatusQueryRequest,
    AuthenticationStatusQueryResponse,
    DynamicPropertyValues,
    DynamicPropertyValuesQueryRequest,
    DynamicPropertyValuesQueryResponse,
    EnumEntry,
    ExternalSegmentConnectionRequest,
    ExternalSegmentConnectionResponse,
    ExternalSegmentCreationRequest,
    ExternalSegmentCreationResponse,
    LogoutRequest,
    LogoutResponse,
    OAuthRedirectUrlRequest,
    OAuthRedirectUrlResponse,
    TestAuthenticationRequest,
    TestAuthenticationResponse,
    TroubleshootRequest,
    TroubleshootResponse,
    UserSegmentUpdateRequest,
)
from harness.reference.config import (
    CREDENTIALS_FILE,
    OAUTH_STATE_KEY_FILE,
    OAUTH_USER_CREDENTIALS_FILE,
    PARTNER_ACCOUNT_ID,
    PARTNER_SEGMENT_ID,
    SEGMENT_NAME,
    TECHNICAL_CONFIG_FILE,
    ConfigError,
    PartnerCredentials,
    TechnicalConfig,
    load_json_file,
)
from harness.reference.identifiers import MappedIdentifier, Selection, map_identifiers
from harness.reference.oauth_state import InvalidState, StateCodec
from harness.reference.partner_client import (
    MAX_IDENTIFIERS_PER_OPERATION,
    OAuthClient,
    PartnerClient,
    PartnerError,
    PartnerUnavailable,
    ReauthenticationNeeded,
    TokenGrant,
    TokenSession,
)
from harness.sdk import (
    AudienceFeedConnector,
    BaseInstanceContext,
    GatewayError,
    GatewayNotFoundError,
    PluginSettings,
)
from harness.sdk.context import Clock

__all__ = [
    "DEFAULT_RETRY_DELAY_MS",
    "NOT_READY_DELAY_MS",
    "REDIRECT_URI_TEMPLATE",
    "ReferenceContext",
    "ReferenceCore",
    "operations_for",
    "retry_delay_ms",
    "stats_for",
]

REDIRECT_URI_TEMPLATE = (
    "https://navigator.mediarithmics.com/v2/plugin_versions/{plugin_version_id}/auth_callback"
)
DEFAULT_RETRY_DELAY_MS = 60_000
"""Delay asked for after a 429 without ``Retry-After`` (LinkedIn sends none)."""
NOT_READY_DELAY_MS = 30_000
"""Delay asked for while the partner segment is still provisioning."""


@dataclass
class ReferenceContext(BaseInstanceContext):
    """The feed, its validated properties and files, and a partner client for its account."""

    segment: AudienceSegmentResource
    technical_config: TechnicalConfig
    partner_account_id: str
    segment_name: str
    partner_segment_id: str | None
    selection: Selection
    partner: PartnerClient
    grouping_key: str


def retry_delay_ms(error: PartnerError) -> int:
    """Milliseconds to wait after ``error``: ``Retry-After`` (at least 1 s) or the default."""
    if error.retry_after is None:
        return DEFAULT_RETRY_DELAY_MS
    return int(max(error.retry_after, 1.0) * 1000)


def operations_for(
    request: UserSegmentUpdateRequest, mapped: Sequence[MappedIdentifier]
) -> list[dict[str, Any]]:
    """One partner operation per (at most 10) identifiers of the user."""
    action = "ADD" if request.operation == "UPSERT" else "REMOVE"
    step = MAX_IDENTIFIERS_PER_OPERATION
    return [
        {"action": action, "identifiers": [m.wire() for m in mapped[i : i + step]]}
        for i in range(0, len(mapped), step)
    ]


def stats_for(mapped: Sequence[MappedIdentifier], result: SyncResult) -> list[UpdateStat]:
    """One stat per identifier, named by the value the platform sent."""
    return [UpdateStat(identifier=m.source, sync_result=result) for m in mapped]


class ReferenceCore(AudienceFeedConnector[ReferenceContext]):
    """Creation, connection, troubleshoot and OAuth of the reference connectors.

    ``partner_http`` carries partner calls; access tokens are kept per refresh token.
    """

    def __init__(
        self,
        settings: PluginSettings | None = None,
        *,
        clock: Clock | None = None,
        gateway_http: httpx.AsyncClient | None = None,
        partner_http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(settings, clock=clock, gateway_http=gateway_http)
        self._owns_partner_http = partner_http is None
        self.partner_http = (
            partner_http if partner_http is not None else httpx.AsyncClient(timeout=10.0)
        )
        self._sessions: dict[tuple[str, str, str], TokenSession] = {}
        self._state_codec: StateCodec | None = None

    async def aclose(self) -> None:
        """Close the partner client (when created here) and the gateway client."""
        if self._owns_partner_http:
            await self.partner_http.aclose()
        await super().aclose()

    # ------------------------------------------------------------------ partner clients

    def partner_client(
        self, config: TechnicalConfig, credentials: PartnerCredentials, refresh_token: str | None
    ) -> PartnerClient:
        """A client on ``refresh_token``'s shared token session (None: OAuth calls only)."""
        session = None
        if refresh_token:
            key = (config.partner_endpoint, credentials.client_id, refresh_token)
            session = self._sessions.get(key)
            if session is None:
                session = self._sessions[key] = TokenSession(refresh_token)
        return PartnerClient(
            endpoint=config.partner_endpoint,
            oauth=OAuthClient(credentials.client_id, credentials.client_secret),
            http=self.partner_http,
            clock=self.clock,
            session=session,
            api_version=config.partner_api_version,
            max_operations=config.max_operations_per_request,
            max_body_bytes=config.max_body_bytes_per_request,
        )

    async def oauth_files(self) -> tuple[TechnicalConfig, PartnerCredentials]:
        """``technical_config`` and ``credentials``, validated."""
        config = await load_json_file(self.gateway, TECHNICAL_CONFIG_FILE, TechnicalConfig)
        credentials = await load_json_file(self.gateway, CREDENTIALS_FILE, PartnerCredentials)
        return config, credentials

    # ------------------------------------------------------------------ context

    async def instance_context_builder(self, feed_id: str) -> ReferenceContext:
        """Validate the feed (properties, identifying resources, files) and build its client."""
        base = await self.base_instance_context(feed_id)
        segment = await self.gateway.fetch_audience_segment(feed_id)
        props = base.feed_properties
        account = (props.find_string_property(PARTNER_ACCOUNT_ID) or "").strip()
        if not account:
            raise ConfigError(
                f"feed {feed_id}: the feed property {PARTNER_ACCOUNT_ID!r} is missing or empty: "
                "set it (STRING) to the partner account that holds the segment, e.g. 'acc-1'"
            )
        selection = Selection.from_resources(base.feed.selected_identifying_resources)
        if selection.empty:
            raise ConfigError(
                f"feed {feed_id}: selected_identifying_resources selects no identifying resource "
                "this connector can send: select USER_EMAIL, USER_DEVICE_POINT (or "
                "USER_DEVICE_TECHNICAL_ID of MOBILE_ADVERTISING_ID) or USER_ACCOUNT"
            )
        config, credentials = await self.oauth_files()
        problem = self.grant_problem(credentials)
        if problem is not None:
            raise ConfigError(problem)
        name = (props.find_string_property(SEGMENT_NAME) or "").strip() or segment.name
        partner_segment_id = (props.find_string_property(PARTNER_SEGMENT_ID) or "").strip()
        return ReferenceContext(
            feed=base.feed,
            feed_properties=props,
            segment=segment,
            technical_config=config,
            partner_account_id=account,
            segment_name=name,
            partner_segment_id=partner_segment_id or None,
            selection=selection,
            partner=self.partner_client(config, credentials, credentials.refresh_token),
            grouping_key=f"{segment.id}_{base.feed.id}",
        )

    def grant_problem(self, credentials: PartnerCredentials) -> str | None:
        """Why ``credentials`` cannot reach the feed's account, or None."""
        if not credentials.refresh_token:
            return (
                f"configuration file {CREDENTIALS_FILE!r} has no refresh_token: add the partner "
                "refresh token granted to the client for the feed's account"
            )
        return None

    def eligible_identifiers(
        self, request: UserSegmentUpdateRequest, ctx: ReferenceContext
    ) -> list[MappedIdentifier]:
        """The user's identifiers the feed selects and the partner takes."""
        return map_identifiers(request.user_identifiers, ctx.selection)

    # ------------------------------------------------------------------ creation, connection

    async def on_external_segment_creation(
        self, request: ExternalSegmentCreationRequest, ctx: ReferenceContext
    ) -> ExternalSegmentCreationResponse:
        """Verify the configured partner segment, or create one and write its id back."""
        partner = ctx.partner
        if ctx.partner_segment_id:
            segment_id = ctx.partner_segment_id
            try:
                segment = await partner.get_segment(segment_id)
            except PartnerError as err:
                if err.code == "SEGMENT_NOT_READY":
                    return ExternalSegmentCreationResponse(
                        status="ok", message=f"partner segment {segment_id} is provisioning"
                    )
                return _creation_error(
                    f"the configured {PARTNER_SEGMENT_ID} {segment_id} cannot be used: {err}; "
                    f"fix the property or clear it to create a new segment",
                    err,
                )
            owner = self.segment_account(segment)
            if owner is not None and owner != ctx.partner_account_id:
                return ExternalSegmentCreationResponse(
                    status="error",
                    message=(
                        f"{PARTNER_SEGMENT_ID} {segment_id} belongs to partner account {owner}, "
                        f"not to {ctx.partner_account_id}: fix one of the two properties"
                    ),
                )
            return ExternalSegmentCreationResponse(
                status="ok", message=f"partner segment {segment_id} exists"
            )
        try:
            created = await partner.create_segment(
                ctx.partner_account_id,
                ctx.segment_name,
                f"mediarithmics segment {ctx.segment.id} (feed {ctx.feed.id})",
            )
        except PartnerError as err:
            return _creation_error(
                f"could not create partner segment {ctx.segment_name!r} in account "
                f"{ctx.partner_account_id}: {err}",
                err,
            )
        await self.write_partner_segment_id(ctx, created.id)
        verb = "created" if created.created else "reused existing"
        return ExternalSegmentCreationResponse(
            status="ok", message=f"{verb} partner segment {created.id}"
        )

    async def write_partner_segment_id(self, ctx: ReferenceContext, segment_id: str) -> None:
        """Write ``partner_segment_id`` back through the gateway (POST if absent, else PUT)."""
        prop = string_property(PARTNER_SEGMENT_ID, segment_id)
        if PARTNER_SEGMENT_ID in ctx.feed_properties:
            await self.gateway.update_feed_property(ctx.feed.id, prop)
        else:
            await self.gateway.create_feed_property(ctx.feed.id, prop)
        ctx.partner_segment_id = segment_id

    async def on_external_segment_connection(
        self, request: ExternalSegmentConnectionRequest, ctx: ReferenceContext
    ) -> ExternalSegmentConnectionResponse:
        """``ok`` once the partner segment answers; not ready while it provisions."""
        segment_id = ctx.partner_segment_id
        if not segment_id:
            return ExternalSegmentConnectionResponse(
                status="error",
                message=f"feed {ctx.feed.id} has no {PARTNER_SEGMENT_ID}: run creation first",
            )
        try:
            await ctx.partner.get_segment(segment_id)
        except PartnerError as err:
            if err.code == "SEGMENT_NOT_READY" or isinstance(err, PartnerUnavailable):
                return ExternalSegmentConnectionResponse(
                    status="external_segment_not_ready_yet",
                    message=f"partner segment {segment_id} is not ready yet ({err.code})",
                )
            if err.throttled:
                return ExternalSegmentConnectionResponse(
                    status="external_segment_not_ready_yet",
                    message="the partner is rate limiting: poll again later",
                )
            return ExternalSegmentConnectionResponse(
                status="error", message=f"partner segment {segment_id}: {err}"
            )
        return ExternalSegmentConnectionResponse(
            status="ok", message=f"partner segment {segment_id} is ready"
        )

    # ------------------------------------------------------------------ troubleshoot

    async def on_troubleshoot(
        self, request: TroubleshootRequest, ctx: ReferenceContext
    ) -> TroubleshootResponse:
        """``FETCH_DESTINATION_AUDIENCE``: the partner segment as returned and its match rate."""
        if request.action != "FETCH_DESTINATION_AUDIENCE":
            return TroubleshootResponse(
                status="not_implemented", message=f"action {request.action} is not supported"
            )
        segment_id = ctx.partner_segment_id
        if not segment_id:
            return TroubleshootResponse(
                status="error",
                message=f"feed {ctx.feed.id} has no {PARTNER_SEGMENT_ID}: run creation first",
            )
        try:
            segment = await ctx.partner.get_segment(segment_id)
        except PartnerError as err:
            return TroubleshootResponse(
                status="error", message=f"partner segment {segment_id}: {err}"
            )
        return TroubleshootResponse(
            status="ok",
            message=f"partner segment {segment_id} ({segment.get('status')})",
            data={"destination_audience": segment, "match_rate": self.match_rate(segment)},
        )

    def segment_account(self, segment: dict[str, Any]) -> str | None:
        """The partner account that holds ``segment`` as the partner showed it."""
        owner = segment.get("account_id")
        return owner if isinstance(owner, str) else None

    def match_rate(self, segment: dict[str, Any]) -> Any:
        """The segment's match rate as the partner showed it (None before processing)."""
        return segment.get("match_rate")

    # ------------------------------------------------------------------ OAuth

    async def state_codec(self) -> StateCodec:
        """The state codec on the ``oauth_state_key`` file, generated and stored when absent."""
        if self._state_codec is not None:
            return self._state_codec
        try:
            key = (await self.gateway.fetch_configuration_file(OAUTH_STATE_KEY_FILE)).strip()
        except GatewayNotFoundError:
            await self.gateway.put_configuration_file(
                OAUTH_STATE_KEY_FILE, StateCodec.generate_key()
            )
            # read back: when two requests raced to create the key, both keep the stored one
            key = (await self.gateway.fetch_configuration_file(OAUTH_STATE_KEY_FILE)).strip()
        try:
            codec = StateCodec(key)
        except ValueError:
            raise ConfigError(
                f"configuration file {OAUTH_STATE_KEY_FILE!r} is not a Fernet key (32 url-safe "
                "base64 bytes): delete it and the connector generates a new one"
            ) from None
        self._state_codec = codec
        return codec

    async def user_credentials(self) -> dict[str, dict[str, str]]:
        """``oauth_user_credentials``: ``{user_id: {"refresh_token"}}`` ({} when absent)."""
        try:
            raw = await self.gateway.fetch_configuration_file(OAUTH_USER_CREDENTIALS_FILE)
        except GatewayNotFoundError:
            return {}
        try:
            payload = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ConfigError(
                f"configuration file {OAUTH_USER_CREDENTIALS_FILE!r} is not valid JSON: "
                'expected {"<user_id>": {"refresh_token": "..."}}'
            ) from None
        if not isinstance(payload, dict):
            raise ConfigError(
                f"configuration file {OAUTH_USER_CREDENTIALS_FILE!r} is not a JSON object"
            )
        return {
            str(user): {"refresh_token": str(entry["refresh_token"])}
            for user, entry in payload.items()
            if isinstance(entry, dict) and isinstance(entry.get("refresh_token"), str)
        }

    async def store_user_credentials(self, users: dict[str, dict[str, str]]) -> None:
        """Write ``oauth_user_credentials`` back through the gateway."""
        content = json.dumps(users, sort_keys=True).encode()
        await self.gateway.put_configuration_file(OAUTH_USER_CREDENTIALS_FILE, content)

    async def login_url(
        self,
        config: TechnicalConfig,
        credentials: PartnerCredentials,
        *,
        plugin_version_id: str,
        datamart_id: str | None = None,
        user_id: str | None = None,
        feed_destination_id: str | None = None,
    ) -> str:
        """The partner consent URL with a fresh encrypted ``state``."""
        codec = await self.state_codec()
        state = codec.issue(
            plugin_version_id=plugin_version_id,
            datamart_id=datamart_id,
            user_id=user_id,
            feed_destination_id=feed_destination_id,
        )
        extra = {} if feed_destination_id is None else {"feed_destination_id": feed_destination_id}
        client = self.partner_client(config, credentials, None)
        return client.authorize_url(
            redirect_uri=REDIRECT_URI_TEMPLATE.format(plugin_version_id=plugin_version_id),
            state=state,
            **extra,
        )

    async def on_authentication_status_query(
        self, request: AuthenticationStatusQueryRequest
    ) -> AuthenticationStatusQueryResponse:
        """``authenticated`` when the user's stored refresh token still works, else a login URL."""
        try:
            config, credentials = await self.oauth_files()
            stored = (await self.user_credentials()).get(request.user_id)
            message = f"no partner credentials stored for user {request.user_id}: log in"
            if stored is not None:
                client = self.partner_client(config, credentials, stored["refresh_token"])
                if await client.check_refresh_token():
                    return AuthenticationStatusQueryResponse(
                        status="authenticated",
                        message=f"user {request.user_id} is authenticated",
                    )
                message = f"the stored refresh token of user {request.user_id} was refused: log in"
            url = await self.login_url(
                config,
                credentials,
                plugin_version_id=request.plugin_version_id,
                datamart_id=request.datamart_id,
                user_id=request.user_id,
            )
        except (ConfigError, GatewayError, PartnerError) as err:
            return AuthenticationStatusQueryResponse(status="error", message=str(err))
        return AuthenticationStatusQueryResponse(
            status="not_authenticated",
            message=message,
            data=AuthenticationStatusData(login_url=url),
        )

    def stored_token(self, grant: TokenGrant) -> str:
        """What a login keeps for the user (and answers as ``refresh_token``): the grant's
        refresh token; a partner without a refresh grant keeps its long-lived access token."""
        return grant.refresh_token or ""

    async def on_authentication(self, request: AuthenticationRequest) -> AuthenticationResponse:
        """Check the ``state``, exchange the ``code`` and store the user's refresh token."""
        params = request.params or {}
        missing = [key for key in ("code", "state") if not params.get(key)]
        if missing:
            return AuthenticationResponse(
                status="error", message=f"missing keys in params: {', '.join(missing)}"
            )
        try:
            codec = await self.state_codec()
            state = codec.decode(params["state"])
            mismatch = _state_mismatch(state, request)
            if mismatch:
                raise InvalidState(f"the OAuth state does not match this request: {mismatch}")
            config, credentials = await self.oauth_files()
            client = self.partner_client(config, credentials, None)
            grant = await client.exchange_code(
                params["code"],
                REDIRECT_URI_TEMPLATE.format(plugin_version_id=request.plugin_version_id),
            )
            refresh_token = self.stored_token(grant)
            users = await self.user_credentials()
            users[request.user_id] = {"refresh_token": refresh_token}
            await self.store_user_credentials(users)
        except (InvalidState, ConfigError, GatewayError, PartnerError) as err:
            return AuthenticationResponse(status="error", message=str(err))
        return AuthenticationResponse(
            status="ok",
            message=f"user {request.user_id} is authenticated",
            refresh_token=refresh_token,
        )

    async def on_logout(self, request: LogoutRequest) -> LogoutResponse:
        """Forget the user's stored refresh token."""
        try:
            users = await self.user_credentials()
            if users.pop(request.user_id, None) is None:
                return LogoutResponse(
                    status="ok", message=f"no credentials were stored for user {request.user_id}"
                )
            await self.store_user_credentials(users)
        except (ConfigError, GatewayError) as err:
            return LogoutResponse(status="error", message=str(err))
        return LogoutResponse(status="ok", message=f"logged out user {request.user_id}")

    async def on_dynamic_property_values_query(
        self, request: DynamicPropertyValuesQueryRequest
    ) -> DynamicPropertyValuesQueryResponse:
        """Accounts the token reaches; with ``partner_account_id``, that account's segments."""
        try:
            config, credentials = await self.oauth_files()
            stored = (await self.user_credentials()).get(request.user_id)
            token = stored["refresh_token"] if stored else credentials.refresh_token
            if not token:
                return DynamicPropertyValuesQueryResponse(
                    status="error",
                    message=f"user {request.user_id} is not authenticated at the partner: log in",
                )
            client = self.partner_client(config, credentials, token)
            accounts = await client.list_accounts()
            data = [
                DynamicPropertyValues(
                    property_technical_name=PARTNER_ACCOUNT_ID, enum=_enum(accounts)
                )
            ]
            account = _string_value(request.properties or [], PARTNER_ACCOUNT_ID)
            if account:
                segments = await client.list_segments(account)
                data.append(
                    DynamicPropertyValues(
                        property_technical_name=PARTNER_SEGMENT_ID, enum=_enum(segments)
                    )
                )
        except (ConfigError, GatewayError, PartnerError) as err:
            return DynamicPropertyValuesQueryResponse(status="error", message=str(err))
        return DynamicPropertyValuesQueryResponse(
            status="ok",
            message=f"{len(data[0].enum)} accounts"
            + (f", {len(data[1].enum)} segments of account {account}" if account else ""),
            data=data,
        )

    async def on_test_authentication(
        self, request: TestAuthenticationRequest, credentials: FeedDestinationCredentials
    ) -> TestAuthenticationResponse:
        """``ok`` when the destination's OAuth2 refresh token refreshes."""
        token = credentials.credentials.get("refresh_token")
        if credentials.scheme != "OAUTH2" or not isinstance(token, str) or not token:
            return TestAuthenticationResponse(
                status="invalid_credentials",
                message=(
                    f"feed destination {request.feed_destination_id} has no OAUTH2 refresh "
                    "token: authenticate it again"
                ),
            )
        try:
            config, oauth = await self.oauth_files()
            client = self.partner_client(config, oauth, token)
            valid = await client.check_refresh_token()
        except (ConfigError, GatewayError, PartnerError) as err:
            return TestAuthenticationResponse(status="error", message=str(err))
        if not valid:
            return TestAuthenticationResponse(
                status="invalid_credentials",
                message=(
                    f"the partner refused the refresh token of feed destination "
                    f"{request.feed_destination_id}: re-authentication is needed"
                ),
            )
        return TestAuthenticationResponse(status="ok", message="the credentials are valid")

    async def on_oauth_redirect_url(
        self, request: OAuthRedirectUrlRequest
    ) -> OAuthRedirectUrlResponse:
        """The consent URL for a feed destination; it carries ``feed_destination_id``."""
        config, credentials = await self.oauth_files()
        url = await self.login_url(
            config,
            credentials,
            plugin_version_id=request.plugin_version_id,
            feed_destination_id=request.feed_destination_id,
        )
        return OAuthRedirectUrlResponse(login_url=url)


def _creation_error(message: str, err: PartnerError) -> ExternalSegmentCreationResponse:
    hint = " (transient: try again)" if isinstance(err, PartnerUnavailable) else ""
    if isinstance(err, ReauthenticationNeeded):
        hint = ""
    return ExternalSegmentCreationResponse(status="error", message=message + hint)


def _state_mismatch(state: Any, request: AuthenticationRequest) -> str | None:
    if state.plugin_version_id != request.plugin_version_id:
        return "plugin_version_id differs"
    if state.user_id is not None and state.user_id != request.user_id:
        return "user_id differs"
    if state.feed_destination_id is not None and (
        state.feed_destination_id != request.feed_destination_id
    ):
        return "feed_destination_id differs"
    if state.user_id is None and state.feed_destination_id is None:
        return "the state names neither a user nor a feed destination"
    return None


def _enum(items: Sequence[dict[str, Any]]) -> list[EnumEntry]:
    entries: dict[str, EnumEntry] = {}
    for item in items:
        value = item.get("id")
        if not isinstance(value, str) or not value or value in entries:
            continue
        name = item.get("name")
        label = name if isinstance(name, str) and name.strip() else value
        entries[value] = EnumEntry(label=label, value=value)
    return list(entries.values())


def _string_value(properties: Sequence[PropertyModel], name: str) -> str | None:
    for prop in properties:
        if prop.technical_name == name and isinstance(prop, StringProperty):
            value = prop.value.value
            return value.strip() if value and value.strip() else None
    return None
