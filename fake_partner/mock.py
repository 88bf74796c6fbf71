"""In-process serving through respx: httpx clients (sync and async) reach the partner, no socket."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
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


def side_effect(handle: Callable[[httpx.Request], httpx.Response]) -> Callable[..., httpx.Response]:
    """``handle`` as a respx side effect: a plain function of the request, as respx's guide
    describes them, with its signature computed once.

    respx reads a callable side effect's signature on every request
    (``inspect.getfullargspec``, to learn whether it takes a ``route`` argument); a bound
    method costs two signature computations each time. ``inspect`` returns a function's
    ``__signature__`` as it is, so the per-request look-up becomes an attribute read.
    """

    def effect(request: httpx.Request) -> httpx.Response:
        return handle(request)

    effect.__signature__ = inspect.signature(effect)  # type: ignore[attr-defined]
    return effect


def mount(partner: Partner, router: respx.Router, base_url: str) -> respx.Route:
    """Add a route to ``router`` sending every request for ``base_url`` to ``partner``."""
    route: respx.Route = router.route(url__startswith=_origin(base_url))
    route.side_effect = side_effect(partner.handle)
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
