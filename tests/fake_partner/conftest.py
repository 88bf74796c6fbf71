"""Fixtures for the fake partner's tests: a partner on a fresh virtual clock, mounted in-process."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fp_support import BASE_URL, refresh

from fake_partner import Partner, VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def partner(clock: VirtualClock) -> Partner:
    return Partner(clock=clock)


@pytest.fixture
def client(partner: Partner) -> Iterator[httpx.Client]:
    """An httpx client whose requests to https://partner.test reach ``partner`` (no socket)."""
    with partner.mock(), httpx.Client(base_url=BASE_URL) as http:
        yield http


@pytest.fixture
def token(client: httpx.Client, partner: Partner) -> str:
    """An access token for acc-1, obtained through /oauth/token."""
    return refresh(client, partner)
