"""In-process serving through respx: httpx clients (sync and async) reach the partner, no socket."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import httpx
import respx

from fake_partner.errors import PartnerUsageError

if TYPE_CHECKING:
    from fake_partner.partner import Partner


def _origin(base_url: str) -> str:
    url = httpx.URL(base_url)
    if url.scheme not in ("http", "https") or not url.host:
        raise PartnerUsageError(
            f"base_url={base_url!r} must be an absolute http(s) URL like 'https://partner.test'"
        )
    if url.path not in ("", "/"):
        raise PartnerUsageError(
            f"base_url={base_url!r} has a path; the partner's routes start at the root "
            "(give only scheme://host[:port])"
        )
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}/"


def mount(partner: Partner, router: respx.Router, base_url: str) -> respx.Route:
    """Add a route to ``router`` sending every request for ``base_url`` to ``partner``."""
    route: respx.Route = router.route(url__startswith=_origin(base_url))
    route.side_effect = partner.handle
    return route


@contextmanager
def mock(
    partner: Partner, base_url: str, *, assert_all_mocked: bool = True
) -> Iterator[respx.MockRouter]:
    """A started respx router (``assert_all_called=False``) with the partner mounted."""
    router = respx.MockRouter(assert_all_called=False, assert_all_mocked=assert_all_mocked)
    mount(partner, router, base_url)
    with router:
        yield router
