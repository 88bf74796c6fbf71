"""The partner's URL map (moto's ``urls.py``): path templates to handler names."""

from __future__ import annotations

from dataclasses import dataclass

from fake_partner.errors import ErrorCode, PartnerError


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint: method, path template (``{name}`` is one path segment), handler name."""

    method: str
    template: str
    handler: str

    @property
    def key(self) -> str:
        """``"POST /v1/segments/{segment_id}/members"``: how the ledger names the route."""
        return f"{self.method} {self.template}"

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.template.strip("/").split("/"))


PARTNER_ROUTES = (
    Route("POST", "/oauth/token", "token"),
    Route("GET", "/oauth/authorize", "authorize"),
    Route("GET", "/v1/accounts", "list_accounts"),
    Route("POST", "/v1/accounts/{account_id}/segments", "create_segment"),
    Route("GET", "/v1/accounts/{account_id}/segments", "list_segments"),
    Route("GET", "/v1/segments/{segment_id}", "get_segment"),
    Route("DELETE", "/v1/segments/{segment_id}", "delete_segment"),
    Route("POST", "/v1/segments/{segment_id}/members", "upload"),
    Route("GET", "/v1/segments/{segment_id}/members", "list_members"),
)

ADMIN_ROUTES = (
    Route("POST", "/_admin/reset", "reset"),
    Route("GET", "/_admin/clock", "clock"),
    Route("POST", "/_admin/clock/advance", "advance"),
    Route("GET", "/_admin/state", "state"),
    Route("GET", "/_admin/ledger", "ledger"),
    Route("GET", "/_admin/scenario", "get_scenario"),
    Route("PUT", "/_admin/scenario", "put_scenario"),
    Route("GET", "/_admin/presets", "presets"),
)


def _bind(route: Route, segments: list[str]) -> dict[str, str] | None:
    parts = route.parts
    if len(parts) != len(segments):
        return None
    params = {}
    for part, segment in zip(parts, segments, strict=True):
        if part.startswith("{"):
            if not segment:
                return None
            params[part[1:-1]] = segment
        elif part != segment:
            return None
    return params


def resolve(routes: tuple[Route, ...], method: str, path: str) -> tuple[Route, dict[str, str]]:
    """The route and its path parameters; 404 ROUTE_NOT_FOUND or 405 METHOD_NOT_ALLOWED."""
    segments = path.strip("/").split("/") if path.strip("/") else []
    allowed = []
    for route in routes:
        params = _bind(route, segments)
        if params is None:
            continue
        if route.method == method:
            return route, params
        allowed.append(route.method)
    if allowed:
        raise PartnerError(
            405,
            ErrorCode.METHOD_NOT_ALLOWED,
            f"{method} is not allowed on {path[:200]}; allowed: {', '.join(allowed)}",
            headers={"Allow": ", ".join(allowed)},
        )
    raise PartnerError(
        404,
        ErrorCode.ROUTE_NOT_FOUND,
        f"no endpoint {method} {path[:200]}; see partner-api.md for the routes",
    )
