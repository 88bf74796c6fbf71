"""Seeded, deterministic populations of simulated users (faker names, fast at 100k).

Faker fills small pools once; a seeded ``random.Random`` combines them per user.
"""

from __future__ import annotations

import random

from faker import Faker

from harness.users import DEFAULT_TS, Maid, SimUser

__all__ = ["make_users"]

_POOL = 400
_DOMAINS = 40
_VARIANT = "89ab"
_YEAR_MS = 86_400_000 * 365


def _uuid4(bits: int) -> str:
    """A version-4 UUID string from 128 random bits (faster than ``uuid.UUID``)."""
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _variant(address: str, rng: random.Random) -> str:
    """The same address as a user might type it: other case, stray spaces."""
    local, _, domain = address.partition("@")
    choice = int(rng.random() * 4)
    if choice == 0:
        return f"{local.title()}@{domain.upper()}"
    if choice == 1:
        return f"  {address} "
    if choice == 2:
        return f"{local.upper()}@{domain}\t"
    return f" {local.capitalize()}@{domain.capitalize()}"


def make_users(
    n: int,
    seed: int = 0,
    *,
    eligible_ratio: float = 0.9,
    shared_emails: float = 0.02,
    devices_per_user: tuple[int, int] = (0, 2),
    account_ratio: float = 0.3,
    variant_ratio: float = 0.2,
    email_ratio: float = 0.8,
) -> list[SimUser]:
    """``n`` users, ``eligible_ratio`` of them with an email, MAID or account (the rest only
    cookies); ``shared_emails`` reuse an earlier address, ``variant_ratio`` add case or
    whitespace noise, ``devices_per_user`` is the (min, max) MAIDs of an eligible user."""
    for name, ratio in (
        ("eligible_ratio", eligible_ratio),
        ("shared_emails", shared_emails),
        ("account_ratio", account_ratio),
        ("variant_ratio", variant_ratio),
        ("email_ratio", email_ratio),
    ):
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"make_users({name}={ratio!r}): use a ratio between 0 and 1")
    low, high = devices_per_user
    if not 0 <= low <= high:
        raise ValueError(
            f"make_users(devices_per_user={devices_per_user!r}): "
            "use (min, max) with 0 <= min <= max"
        )
    if n < 0:
        raise ValueError(f"make_users(n={n!r}): n must be >= 0")
    rng = random.Random(seed)
    fake = Faker()
    fake.seed_instance(seed)
    firsts = [fake.first_name().lower() for _ in range(_POOL)]
    lasts = [fake.last_name().lower().replace(" ", "").replace("'", "") for _ in range(_POOL)]
    domains = sorted({fake.free_email_domain() for _ in range(_DOMAINS)})
    domains += sorted({fake.domain_name() for _ in range(_DOMAINS)})
    users: list[SimUser] = []
    issued: list[str] = []
    random_ = rng.random
    bits = rng.getrandbits
    spread = high - low + 1
    n_firsts, n_lasts, n_domains = len(firsts), len(lasts), len(domains)
    for index in range(n):
        emails: tuple[str, ...] = ()
        maids: tuple[Maid, ...] = ()
        accounts: tuple[str, ...] = ()
        if random_() < eligible_ratio:
            if random_() < email_ratio:
                if issued and random_() < shared_emails:
                    address = issued[int(random_() * len(issued))]
                else:
                    first = firsts[int(random_() * n_firsts)]
                    last = lasts[int(random_() * n_lasts)]
                    domain = domains[int(random_() * n_domains)]
                    address = f"{first}.{last}{index}@{domain}"
                    issued.append(address)
                emails = (_variant(address, rng) if random_() < variant_ratio else address,)
            count = low + int(random_() * spread) if high else 0
            maids = tuple(
                Maid("ios" if random_() < 0.5 else "android", _uuid4(bits(128)))
                for _ in range(count)
            )
            if random_() < account_ratio:
                accounts = (f"acct-{seed}-{index}",)
            if not (emails or maids or accounts):
                accounts = (f"acct-{seed}-{index}",)
        users.append(
            SimUser(
                user_point_id=_uuid4(bits(128)),
                emails=emails,
                maids=maids,
                account_ids=accounts,
                vectors=(f"vec:{seed}:{index}",) if random_() < 0.5 else (),
                installation_ids=(f"inst-{seed}-{index}",) if random_() < 0.1 else (),
                creation_ts=DEFAULT_TS - int(random_() * _YEAR_MS),
            )
        )
    return users
