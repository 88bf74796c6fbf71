"""The public hypothesis strategies produce what they say: realistic, reproducible users of
all five identifier kinds, duplicates across users, UPSERT/DELETE streams, edge batch sizes."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from random import Random
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from fake_partner.identifiers import is_valid_identifier
from harness.strategies import (
    BATCH_LIMIT,
    EMAIL_STYLES,
    IDENTIFIER_KINDS,
    LIMIT_POINTS,
    SHARED_KINDS,
    account_ids,
    batch_sizes,
    email_address,
    email_addresses,
    email_variant,
    email_variants,
    emails,
    installation_ids,
    maids,
    operations,
    populations,
    sharing,
    sim_user,
    sim_users,
    twin,
    user_point_ids,
    vector_ids,
)
from harness.users import Maid, SimUser, email_hash

T = TypeVar("T")
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
SEARCH = settings(
    max_examples=300,
    database=None,
    phases=(Phase.generate,),
    suppress_health_check=list(HealthCheck),
)
QUICK = settings(max_examples=30, database=None, deadline=None)


def found(strategy: st.SearchStrategy[T], condition: Callable[[T], bool]) -> T:
    """The first example satisfying ``condition`` (no shrinking; fails when none is found)."""
    return find(strategy, condition, settings=SEARCH, random=Random(0))


def kinds(user: SimUser) -> Counter[str]:
    """How many ``user_identifiers`` of each type the user sends."""
    return Counter(i["type"] for i in user.to_user_identifiers())


def technical_types(user: SimUser) -> set[str]:
    """The technical identifier types of the user's device points."""
    return {
        t["type"]
        for i in user.to_user_identifiers()
        if i["type"] == "USER_DEVICE_POINT"
        for t in i["technical_identifiers"]
    }


# ------------------------------------------------------------------ identifiers


@QUICK
@given(email_addresses())
def test_addresses_are_canonical_and_realistic(address: str) -> None:
    local, at, domain = address.partition("@")
    assert at
    assert local
    assert "." in domain
    assert address == address.strip().lower()
    assert re.fullmatch(r"[a-z]+\.[a-z]+\d+", local), address


@QUICK
@given(email_addresses(), st.data())
def test_variants_of_an_address_hash_equal(address: str, data: st.DataObject) -> None:
    typed = data.draw(email_variants(address))
    assert typed.strip().lower() == address
    assert email_hash(typed) == email_hash(address)


def test_variants_cover_case_and_whitespace() -> None:
    address = email_address(7)
    styles = {email_variant(address, style) for style in range(EMAIL_STYLES)}
    assert len(styles) == EMAIL_STYLES
    assert any(s != s.strip() for s in styles), "a variant with stray whitespace"
    assert any(s.strip() != s.strip().lower() for s in styles), "a variant with upper case"
    assert {email_hash(s) for s in styles} == {email_hash(address)}
    assert found(emails(), lambda e: e != e.strip()) != ""
    assert found(emails(), lambda e: e.strip() != e.strip().lower()) != ""


def test_builders_are_reproducible_from_their_seed() -> None:
    assert email_address(42) == email_address(42) != email_address(43)
    assert (
        sim_user(5, emails=2, maids=2, accounts=1).to_user_identifiers()
        == sim_user(5, emails=2, maids=2, accounts=1).to_user_identifiers()
    )


@QUICK
@given(maids(), account_ids(), user_point_ids(), vector_ids(), installation_ids())
def test_identifier_values_are_well_formed(
    maid: Maid, account: str, point: str, vector: str, installation: str
) -> None:
    assert maid.platform in ("ios", "android")
    assert UUID4.fullmatch(maid.value), maid
    assert maid.user_agent_id == f"mob:{maid.platform}:raw:{maid.value}"
    assert is_valid_identifier("MAID", maid.value)
    assert is_valid_identifier("PARTNER_USER_ID", account)
    assert "@" not in account
    assert UUID4.fullmatch(point)
    assert vector.startswith("vec:")
    assert vector[4:].isdigit()
    assert not UUID4.fullmatch(installation)  # upper-case: never mistaken for a MAID


# ------------------------------------------------------------------ users


@pytest.mark.parametrize("kind", IDENTIFIER_KINDS)
def test_each_identifier_kind_appears(kind: str) -> None:
    user = found(sim_users(), lambda u: kind in kinds(u))
    assert kinds(user)["USER_POINT"] == 1


def test_devices_several_maids_and_non_maid_technical_ids() -> None:
    several = found(sim_users(), lambda u: len(u.maids) >= 2)
    assert kinds(several)["USER_DEVICE_POINT"] >= 2
    assert technical_types(several) >= {"MOBILE_ADVERTISING_ID"}
    other = found(sim_users(), lambda u: "INSTALLATION_ID" in technical_types(u))
    assert other.installation_ids
    devices_only = sim_user(1, emails=0, installations=2)
    assert kinds(devices_only)["USER_DEVICE_POINT"] == 2
    assert technical_types(devices_only) == {"INSTALLATION_ID"}
    assert not devices_only.eligible_partner_identifiers()


@QUICK
@given(sim_users(eligible=True))
def test_eligible_users_have_a_partner_identifier(user: SimUser) -> None:
    assert user.eligible_partner_identifiers()


@QUICK
@given(sim_users(eligible=False))
def test_ineligible_users_have_none(user: SimUser) -> None:
    assert not user.eligible_partner_identifiers()
    assert set(kinds(user)) <= {"USER_POINT", "USER_AGENT", "USER_DEVICE_POINT"}
    assert "MOBILE_ADVERTISING_ID" not in technical_types(user)


def test_twin_and_sharing_duplicate_identifiers_across_users() -> None:
    user = sim_user(3, emails=1, maids=1, accounts=1)
    copy = twin(user, seed=9, style=4)
    assert copy.user_point_id != user.user_point_id
    assert copy.emails != user.emails
    assert copy.eligible_partner_identifiers() == user.eligible_partner_identifiers()
    other = sim_user(4, emails=0)
    for kind in SHARED_KINDS:
        shared = sharing(other, user, kind, style=1)
        assert shared.eligible_partner_identifiers() <= user.eligible_partner_identifiers()
        assert shared.eligible_partner_identifiers()


def test_populations_hold_duplicates_across_users() -> None:
    def shared_email_typed_differently(users: list[SimUser]) -> bool:
        by_hash: dict[str, set[str]] = {}
        for user in users:
            for address in user.emails:
                by_hash.setdefault(email_hash(address), set()).add(address)
        return any(len(typed) > 1 for typed in by_hash.values())

    users = found(populations(), shared_email_typed_differently)
    assert len(users) >= 2
    maid_shared = found(
        populations(),
        lambda us: max(Counter(m for u in us for m in set(u.maids)).values(), default=0) > 1,
    )
    assert len(maid_shared) >= 2


# ------------------------------------------------------------------ streams and sizes


@QUICK
@given(
    populations(min_size=1, max_size=5).flatmap(lambda us: st.tuples(st.just(us), operations(us)))
)
def test_operations_stream_over_the_users(
    case: tuple[list[SimUser], list[tuple[str, SimUser]]],
) -> None:
    users, stream = case
    for operation, user in stream:
        assert operation in ("UPSERT", "DELETE")
        assert any(user is u for u in users)


def test_operations_have_both_kinds_and_need_users() -> None:
    users = [sim_user(1), sim_user(2)]
    stream = found(operations(users), lambda s: {op for op, _ in s} == {"UPSERT", "DELETE"})
    assert len(stream) >= 2
    with pytest.raises(ValueError, match="at least one user"):
        operations([])


@pytest.mark.parametrize("size", LIMIT_POINTS)
def test_batch_sizes_hit_the_partner_limits(size: int) -> None:
    assert found(batch_sizes(), lambda n: n == size) == size


@QUICK
@given(batch_sizes())
def test_batch_sizes_stay_in_range(size: int) -> None:
    assert 1 <= size <= 2 * BATCH_LIMIT


def test_batch_sizes_options() -> None:
    assert found(batch_sizes(10, allow_empty=True), lambda n: n == 0) == 0
    assert found(batch_sizes(10), lambda n: n == 11) == 11
    with pytest.raises(ValueError, match="at least 2"):
        batch_sizes(1)
