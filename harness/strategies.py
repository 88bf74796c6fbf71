"""Hypothesis strategies for simulated users, their identifiers, update streams, batch sizes.

Built from a drawn seed by small public builders (faker name/domain pools, seeded picks):
reproducible, shrinking to seed 0, printed as calls (``sim_user(seed=0, ...)``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import random
from collections.abc import Sequence
from typing import Literal

from faker import Faker
from hypothesis import strategies as st

from harness.users import Maid, Operation, SimUser

__all__ = [
    "BATCH_LIMIT",
    "EMAIL_STYLES",
    "IDENTIFIER_KINDS",
    "LIMIT_POINTS",
    "SEEDS",
    "SHARED_KINDS",
    "SharedKind",
    "account_id",
    "account_ids",
    "batch_sizes",
    "email_address",
    "email_addresses",
    "email_variant",
    "email_variants",
    "emails",
    "faker_for",
    "installation_id",
    "installation_ids",
    "maid",
    "maids",
    "operations",
    "populations",
    "sharing",
    "sim_user",
    "sim_users",
    "sub_seed",
    "twin",
    "user_point_id",
    "user_point_ids",
    "vector_id",
    "vector_ids",
]

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
"""Seeds of the builders below: shrink towards 0."""
BATCH_LIMIT = 10_000
"""The partner's operations per request (``docs/partner-api.md``)."""
LIMIT_POINTS: tuple[int, ...] = (1, BATCH_LIMIT - 1, BATCH_LIMIT, BATCH_LIMIT + 1)
"""Batch sizes at the edges of the partner's limit that :func:`batch_sizes` favours."""
EMAIL_STYLES = 7
"""How many ways :func:`email_variant` can type one address (style 0: as it is)."""
IDENTIFIER_KINDS = (
    "USER_POINT",
    "USER_AGENT",
    "USER_EMAIL",
    "USER_DEVICE_POINT",
    "USER_ACCOUNT",
)
"""The five ``user_identifiers[].type`` a :class:`SimUser` can send."""
SharedKind = Literal["email", "maid", "account"]
"""An eligible identifier two users can share."""
SHARED_KINDS: tuple[SharedKind, ...] = ("email", "maid", "account")

_FAKER: Faker | None = None
_POOL = 300
_VARIANT = "89ab"


def faker_for(seed: int) -> Faker:
    """The module's en_US faker, re-seeded with ``seed`` (same seed, same values)."""
    global _FAKER
    if _FAKER is None:
        _FAKER = Faker("en_US")
    _FAKER.seed_instance(seed)
    return _FAKER


@functools.cache
def _pools() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """First names, last names and e-mail domains drawn once from faker (seed 0)."""
    fake = faker_for(0)
    firsts = tuple(sorted({_clean(fake.first_name()) for _ in range(_POOL)}))
    lasts = tuple(sorted({_clean(fake.last_name()) for _ in range(_POOL)}))
    domains = {fake.free_email_domain() for _ in range(_POOL // 10)}
    domains |= {fake.domain_name() for _ in range(_POOL // 10)}
    return firsts, lasts, tuple(sorted(d.lower() for d in domains))


def sub_seed(seed: int, *labels: object) -> int:
    """A stable seed derived from ``seed`` and labels (SHA-256, not ``hash``)."""
    text = ":".join(str(part) for part in (seed, *labels))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _clean(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _uuid4(seed: int, label: str) -> str:
    """A version-4 UUID drawn from ``seed`` (fast; ``uuid.UUID`` layout)."""
    h = f"{random.Random(sub_seed(seed, label)).getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


# ------------------------------------------------------------------ identifiers


def email_address(seed: int) -> str:
    """A realistic lower-case address, e.g. ``kimberly.miller4821@hotmail.com``."""
    firsts, lasts, domains = _pools()
    rng = random.Random(sub_seed(seed, "email"))
    first, last, domain = rng.choice(firsts), rng.choice(lasts), rng.choice(domains)
    return f"{first}.{last}{seed % 10_000}@{domain}"


def email_variant(address: str, style: int) -> str:
    """``address`` as a user might type it: other case, stray spaces (same platform hash)."""
    local, _, domain = address.strip().partition("@")
    variants = (
        address,
        f"{local.title()}@{domain.upper()}",
        f"  {address} ",
        f"{local.upper()}@{domain}\t",
        address.upper(),
        f" {local.capitalize()}@{domain.capitalize()}",
        "".join(ch.upper() if i % 2 else ch for i, ch in enumerate(address)) + "\n",
    )
    return variants[style % len(variants)]


def maid(seed: int, platform: str = "ios") -> Maid:
    """A mobile advertising id (a version-4 UUID) on ``platform`` (``ios``/``android``)."""
    return Maid(platform, _uuid4(seed, "maid"))


def account_id(seed: int) -> str:
    """A CRM user account id such as ``miller-0048213`` (printable, no ``@``)."""
    _, lasts, _ = _pools()
    last = random.Random(sub_seed(seed, "account")).choice(lasts)
    return f"{last}-{seed % 10_000_000:07d}"


def user_point_id(seed: int) -> str:
    """A user point id (a UUID)."""
    return _uuid4(seed, "user_point")


def vector_id(seed: int) -> str:
    """A USER_AGENT cookie's vector id, ``vec:<digits>`` (never eligible)."""
    return f"vec:{sub_seed(seed, 'vector') * 1000 + seed % 1000}"


def installation_id(seed: int) -> str:
    """An INSTALLATION_ID technical id of a device point (not a MAID: never eligible)."""
    return _uuid4(seed, "installation").upper()


def email_addresses() -> st.SearchStrategy[str]:
    """Canonical addresses (trimmed, lower-case)."""
    return st.builds(email_address, seed=SEEDS)


def email_variants(address: str) -> st.SearchStrategy[str]:
    """Case and whitespace variants of one address (all with its hash)."""
    return st.builds(email_variant, st.just(address), style=st.integers(0, EMAIL_STYLES - 1))


def emails() -> st.SearchStrategy[str]:
    """Addresses as users typed them: canonical or one of its variants."""
    return st.builds(email_variant, email_addresses(), style=st.integers(0, EMAIL_STYLES - 1))


def maids() -> st.SearchStrategy[Maid]:
    """Mobile advertising ids on ios or android."""
    return st.builds(maid, seed=SEEDS, platform=st.sampled_from(("ios", "android")))


def account_ids() -> st.SearchStrategy[str]:
    """User account ids."""
    return st.builds(account_id, seed=SEEDS)


def user_point_ids() -> st.SearchStrategy[str]:
    """User point ids."""
    return st.builds(user_point_id, seed=SEEDS)


def vector_ids() -> st.SearchStrategy[str]:
    """Cookie vector ids."""
    return st.builds(vector_id, seed=SEEDS)


def installation_ids() -> st.SearchStrategy[str]:
    """Installation ids (non-MAID device technical ids)."""
    return st.builds(installation_id, seed=SEEDS)


# ------------------------------------------------------------------ users


def sim_user(
    seed: int,
    *,
    emails: int = 1,
    maids: int = 0,
    accounts: int = 0,
    cookies: int = 0,
    installations: int = 0,
    style: int = 0,
) -> SimUser:
    """A user point with that many identifiers of each kind, all derived from ``seed``.

    ``style`` types the first email as :func:`email_variant` does.
    """
    addresses = tuple(
        email_variant(email_address(sub_seed(seed, "email", i)), style if i == 0 else 0)
        for i in range(emails)
    )
    platforms = ("ios", "android")
    return SimUser(
        user_point_id=user_point_id(seed),
        emails=addresses,
        maids=tuple(maid(sub_seed(seed, "maid", i), platforms[i % 2]) for i in range(maids)),
        account_ids=tuple(account_id(sub_seed(seed, "account", i)) for i in range(accounts)),
        vectors=tuple(vector_id(sub_seed(seed, "cookie", i)) for i in range(cookies)),
        installation_ids=tuple(
            installation_id(sub_seed(seed, "installation", i)) for i in range(installations)
        ),
    )


def _eligible_count(user: SimUser) -> int:
    return len(user.emails) + len(user.maids) + len(user.account_ids)


def sim_users(
    *,
    eligible: bool | None = None,
    max_emails: int = 2,
    max_maids: int = 3,
    max_accounts: int = 2,
    max_cookies: int = 2,
    max_installations: int = 2,
) -> st.SearchStrategy[SimUser]:
    """Users with any mix of the five identifier kinds (several devices, non-MAID ids).

    ``eligible=True``: at least one email, MAID or account; ``False``: none of them
    (only the user point, cookies and installation ids); ``None``: either.
    """
    none = eligible is False
    strategy = st.builds(
        sim_user,
        seed=SEEDS,
        emails=st.integers(0, 0 if none else max_emails),
        maids=st.integers(0, 0 if none else max_maids),
        accounts=st.integers(0, 0 if none else max_accounts),
        cookies=st.integers(0, max_cookies),
        installations=st.integers(0, max_installations),
        style=st.integers(0, EMAIL_STYLES - 1),
    )
    if eligible:
        return strategy.filter(lambda user: _eligible_count(user) > 0)
    return strategy


def sharing(user: SimUser, donor: SimUser, kind: SharedKind, style: int = 0) -> SimUser:
    """``user`` also holding ``donor``'s first identifier of ``kind`` (an email re-typed in
    ``style``); ``user`` unchanged when the donor has none."""
    if kind == "email" and donor.emails:
        typed = email_variant(donor.emails[0].strip().lower(), style)
        return dataclasses.replace(user, emails=(*user.emails, typed))
    if kind == "maid" and donor.maids:
        return dataclasses.replace(user, maids=(*user.maids, donor.maids[0]))
    if kind == "account" and donor.account_ids:
        return dataclasses.replace(user, account_ids=(*user.account_ids, donor.account_ids[0]))
    return user


def twin(user: SimUser, seed: int, style: int = 0) -> SimUser:
    """Another user point (cookies of its own) sharing every eligible identifier of ``user``,
    its emails typed in ``style``: a duplicate across users."""
    return SimUser(
        user_point_id=user_point_id(sub_seed(seed, "twin")),
        emails=tuple(email_variant(a.strip().lower(), style) for a in user.emails),
        maids=user.maids,
        account_ids=user.account_ids,
        vectors=(vector_id(sub_seed(seed, "twin-cookie")),),
    )


@st.composite
def populations(
    draw: st.DrawFn,
    min_size: int = 1,
    max_size: int = 12,
    *,
    eligible: bool | None = None,
    max_shared: int = 4,
) -> list[SimUser]:
    """Users where some share an email (maybe typed differently), a MAID or an account."""
    users = draw(st.lists(sim_users(eligible=eligible), min_size=min_size, max_size=max_size))
    if len(users) < 2:
        return users
    index = st.integers(0, len(users) - 1)
    links = draw(
        st.lists(
            st.tuples(
                index,
                index,
                st.sampled_from(SHARED_KINDS),
                st.integers(0, EMAIL_STYLES - 1),
            ),
            max_size=max_shared,
        )
    )
    for receiver, donor, kind, style in links:
        if receiver != donor:
            users[receiver] = sharing(users[receiver], users[donor], kind, style)
    return users


# ------------------------------------------------------------------ streams and sizes


def operations(
    users: Sequence[SimUser], *, min_size: int = 0, max_size: int = 40
) -> st.SearchStrategy[list[tuple[Operation, SimUser]]]:
    """UPSERT/DELETE streams over ``users`` (repeats, deletes of users never added)."""
    if not users:
        raise ValueError("operations(users): give at least one user")
    operation: st.SearchStrategy[Operation] = st.sampled_from(("UPSERT", "DELETE"))
    return st.lists(
        st.tuples(operation, st.sampled_from(list(users))), min_size=min_size, max_size=max_size
    )


def batch_sizes(
    limit: int = BATCH_LIMIT, *, spread: int = 1, allow_empty: bool = False
) -> st.SearchStrategy[int]:
    """Batch lengths around the partner's limit: near 1, ``limit - 1``, ``limit`` and
    ``limit + 1`` (within ``spread``), or anywhere up to ``2 * limit``."""
    if limit < 2:
        raise ValueError(f"batch_sizes(limit={limit}): the limit must be at least 2")
    low = 0 if allow_empty else 1
    points = sorted({max(low, p) for p in (1, limit - 1, limit, limit + 1)})
    near = st.sampled_from(points).flatmap(lambda p: st.integers(max(low, p - spread), p + spread))
    return st.one_of(near, st.sampled_from(points), st.integers(low, 2 * limit))
