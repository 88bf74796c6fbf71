"""Simulated users: wire identifiers, eligibility per selected resource, the model, generators."""

from __future__ import annotations

import hashlib
import re

import pytest
from pydantic import TypeAdapter

from contracts.identifiers import UserIdentifier, UserProfile
from harness.generators import make_users
from harness.users import Maid, MembershipModel, SimUser, email_hash

UUID = "0b4f4b0e-7e0e-4c8e-9f5e-2b0c6a1d9e11"
UUID2 = "9a1c2e3f-0000-4abc-8def-111122223333"
IDENTIFIERS: TypeAdapter[list[UserIdentifier]] = TypeAdapter(list[UserIdentifier])


def _user(**fields: object) -> SimUser:
    base: dict[str, object] = {"user_point_id": "up-1"}
    base.update(fields)
    return SimUser(**base)  # type: ignore[arg-type]


def test_email_hash_is_sha256_of_the_trimmed_lower_cased_address() -> None:
    expected = hashlib.sha256(b"john.doe@example.com").hexdigest()
    assert email_hash("  John.Doe@EXAMPLE.com\t") == expected
    assert re.fullmatch(r"[0-9a-f]{64}", expected)


def test_identifiers_have_the_contract_shapes() -> None:
    user = _user(
        emails=(" Ann@X.org",),
        maids=(Maid("ios", UUID), Maid("android", UUID2)),
        account_ids=("acct-7",),
        vectors=("vec:1",),
        installation_ids=("inst-1",),
    )
    wire = user.to_user_identifiers()
    models = IDENTIFIERS.validate_python(wire)
    kinds = [m.type for m in models]
    assert kinds.count("USER_DEVICE_POINT") == 3
    assert set(kinds) == {
        "USER_POINT",
        "USER_EMAIL",
        "USER_DEVICE_POINT",
        "USER_ACCOUNT",
        "USER_AGENT",
    }
    email = next(i for i in wire if i["type"] == "USER_EMAIL")
    assert email["hash"] == email_hash("ann@x.org")
    assert email["email"] == " Ann@X.org"
    assert "email" not in next(
        i for i in user.to_user_identifiers(include_raw_email=False) if i["type"] == "USER_EMAIL"
    )
    technical = [
        t for i in wire if i["type"] == "USER_DEVICE_POINT" for t in i["technical_identifiers"]
    ]
    assert [(t["type"], t["user_agent_id"]) for t in technical] == [
        ("MOBILE_ADVERTISING_ID", f"mob:ios:raw:{UUID}"),
        ("MOBILE_ADVERTISING_ID", f"mob:android:raw:{UUID2}"),
        ("INSTALLATION_ID", "inst-1"),
    ]
    (profile,) = user.to_user_profiles()
    assert UserProfile.model_validate(profile).user_account_id == "acct-7"


def test_eligibility_follows_the_selected_identifying_resources() -> None:
    user = _user(
        emails=("a@b.co",), maids=(Maid("ios", UUID),), account_ids=("acct-1",), vectors=("v",)
    )
    everything = user.eligible_partner_identifiers()
    assert everything == {
        ("EMAIL_SHA256", email_hash("a@b.co")),
        ("MAID", UUID),
        ("PARTNER_USER_ID", "acct-1"),
    }
    assert user.eligible_partner_identifiers(["USER_EMAIL"]) == {
        ("EMAIL_SHA256", email_hash("a@b.co"))
    }
    assert user.eligible_partner_identifiers(["USER_DEVICE_POINT"]) == {("MAID", UUID)}
    assert user.eligible_partner_identifiers(["USER_AGENT", "USER_POINT"]) == frozenset()
    assert _user(vectors=("v",), installation_ids=("i",)).eligible_partner_identifiers() == set()


def test_membership_model_replays_operations_in_order_as_a_set() -> None:
    alice = _user(emails=("alice@x.io",), maids=(Maid("ios", UUID),))
    alias = _user(user_point_id="up-2", emails=(" ALICE@x.io",))
    bob = _user(user_point_id="up-3", account_ids=("bob",))
    model = MembershipModel(["USER_EMAIL", "USER_ACCOUNT"])
    model.upsert([alice, bob])
    assert model.members == {("EMAIL_SHA256", email_hash("alice@x.io")), ("PARTNER_USER_ID", "bob")}
    model.delete([alias])  # same address typed differently: the same partner identifier
    assert model.members == {("PARTNER_USER_ID", "bob")}
    model.delete([bob, bob])
    model.upsert([alias])
    assert model.members == {("EMAIL_SHA256", email_hash("alice@x.io"))}
    assert model.operations == 6
    with pytest.raises(ValueError, match="UPSERT or DELETE"):
        model.apply("MERGE", bob)  # type: ignore[arg-type]


def test_generated_users_are_deterministic_and_varied() -> None:
    users = make_users(2000, seed=7, eligible_ratio=0.8, shared_emails=0.05)
    again = make_users(2000, seed=7, eligible_ratio=0.8, shared_emails=0.05)
    assert [(u.user_point_id, u.emails, u.maids) for u in users] == [
        (u.user_point_id, u.emails, u.maids) for u in again
    ]
    assert make_users(5, seed=8)[0].user_point_id != users[0].user_point_id
    assert len({u.user_point_id for u in users}) == 2000
    not_eligible = [u for u in users if not u.eligible_partner_identifiers()]
    assert 300 < len(not_eligible) < 500
    emails = [e for u in users for e in u.emails]
    assert any(e != e.strip().lower() for e in emails)
    normalised = [e.strip().lower() for e in emails]
    assert len(set(normalised)) < len(normalised)  # some users share an address
    maids = [m for u in users for m in u.maids]
    assert {m.platform for m in maids} == {"ios", "android"}
    assert all(re.fullmatch(r"[0-9a-f-]{36}", m.value) and m.value[14] == "4" for m in maids)
    for user in users[:200]:
        IDENTIFIERS.validate_python(user.to_user_identifiers())


def test_generator_refuses_bad_ratios() -> None:
    with pytest.raises(ValueError, match="eligible_ratio"):
        make_users(1, eligible_ratio=1.5)
    with pytest.raises(ValueError, match="devices_per_user"):
        make_users(1, devices_per_user=(3, 1))
