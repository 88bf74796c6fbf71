"""Segments through HTTP: creation, listing, the state machine, the processed snapshot."""

from __future__ import annotations

import httpx
import pytest
from fp_support import adds, bearer, code_of, create_segment, ready_segment, removes, sha, upload

from fake_partner import Partner, Scenario, expected_matched, match_rate, round_significant

SEGMENT_KEYS = {
    "id",
    "account_id",
    "name",
    "description",
    "status",
    "created_at",
    "updated_at",
    "input_count",
    "matched_count",
    "match_rate",
    "audience_size",
    "targetable",
}


def test_create_answers_201_with_location(client: httpx.Client, token: str) -> None:
    answer = client.post(
        "/v1/accounts/acc-1/segments",
        headers=bearer(token),
        json={"name": "Buyers", "description": "people who buy"},
    )
    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == SEGMENT_KEYS
    assert answer.headers["Location"] == f"/v1/segments/{body['id']}"
    assert body["status"] == "PROVISIONING"
    assert body["created_at"] == "2026-01-01T00:00:00.000Z"
    assert body["description"] == "people who buy"
    assert body["input_count"] is None
    assert body["targetable"] is False


def test_name_taken_is_409_with_existing_id(client: httpx.Client, token: str) -> None:
    first = create_segment(client, token, "Buyers")
    again = client.post(
        "/v1/accounts/acc-1/segments", headers=bearer(token), json={"name": "Buyers"}
    )
    assert again.status_code == 409
    assert code_of(again) == "SEGMENT_NAME_TAKEN"
    assert again.json()["error"]["details"] == [{"segment_id": first}]


def test_same_name_in_another_account_is_fine(client: httpx.Client, partner: Partner) -> None:
    both = partner.seed_access_token(["acc-1", "acc-2"])
    assert create_segment(client, both, "X", "acc-1") != create_segment(client, both, "X", "acc-2")


@pytest.mark.parametrize(
    ("name", "status"), [("", 400), (" ", 400), ("n" * 101, 400), ("n" * 100, 201)]
)
def test_name_is_1_to_100_characters(
    client: httpx.Client, token: str, name: str, status: int
) -> None:
    answer = client.post("/v1/accounts/acc-1/segments", headers=bearer(token), json={"name": name})
    assert answer.status_code == status
    if status == 400:
        assert code_of(answer) == "INVALID_REQUEST"


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'{"name": 5}', b'{"name": "a", "colour": "red"}', b"{}"],
)
def test_bad_create_bodies_are_400_and_create_nothing(
    client: httpx.Client, partner: Partner, token: str, body: bytes
) -> None:
    answer = client.post(
        "/v1/accounts/acc-1/segments",
        headers={**bearer(token), "Content-Type": "application/json"},
        content=body,
    )
    assert answer.status_code == 400
    assert code_of(answer) == "INVALID_REQUEST"
    assert partner.segment_ids() == []


def test_list_filters_by_exact_name_and_paginates(client: httpx.Client, token: str) -> None:
    ids = [create_segment(client, token, f"s{i}") for i in range(5)]
    found = client.get("/v1/accounts/acc-1/segments", params={"name": "s3"}, headers=bearer(token))
    assert [s["id"] for s in found.json()["segments"]] == [ids[3]]
    assert found.json()["next_cursor"] is None
    assert (
        client.get(
            "/v1/accounts/acc-1/segments", params={"name": "s"}, headers=bearer(token)
        ).json()["segments"]
        == []
    )
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = client.get(
            "/v1/accounts/acc-1/segments", params=params, headers=bearer(token)
        ).json()
        seen += [s["id"] for s in page["segments"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert pages == 3


@pytest.mark.parametrize(
    "params", [{"limit": "0"}, {"limit": "201"}, {"limit": "x"}, {"cursor": "zz"}]
)
def test_bad_page_parameters_are_400(
    client: httpx.Client, token: str, params: dict[str, str]
) -> None:
    answer = client.get("/v1/accounts/acc-1/segments", params=params, headers=bearer(token))
    assert answer.status_code == 400
    assert code_of(answer) == "INVALID_REQUEST"


def test_limit_200_is_allowed(client: httpx.Client, token: str) -> None:
    answer = client.get(
        "/v1/accounts/acc-1/segments", params={"limit": "200"}, headers=bearer(token)
    )
    assert answer.status_code == 200


def test_not_ready_while_provisioning_then_ready(
    client: httpx.Client, partner: Partner, token: str
) -> None:
    segment_id = create_segment(client, token)
    partner.clock.advance(59.9)
    for answer in (
        client.get(f"/v1/segments/{segment_id}", headers=bearer(token)),
        upload(client, token, segment_id, adds([sha("a")])),
        client.get(f"/v1/segments/{segment_id}/members", headers=bearer(token)),
    ):
        assert answer.status_code == 404
        assert code_of(answer) == "SEGMENT_NOT_READY"
    assert partner.members(segment_id) == frozenset()
    partner.clock.advance(0.1)
    ready = client.get(f"/v1/segments/{segment_id}", headers=bearer(token))
    assert ready.status_code == 200
    assert ready.json()["status"] == "BUILDING"


def test_unknown_and_deleted_segments_are_not_found(
    client: httpx.Client, partner: Partner, token: str
) -> None:
    unknown = client.get("/v1/segments/seg-999999", headers=bearer(token))
    assert unknown.status_code == 404
    assert code_of(unknown) == "SEGMENT_NOT_FOUND"
    segment_id = ready_segment(client, partner, token)
    deleted = client.delete(f"/v1/segments/{segment_id}", headers=bearer(token))
    assert deleted.status_code == 204
    assert deleted.content == b""
    for answer in (
        client.get(f"/v1/segments/{segment_id}", headers=bearer(token)),
        upload(client, token, segment_id, adds([sha("a")])),
        client.delete(f"/v1/segments/{segment_id}", headers=bearer(token)),
    ):
        assert code_of(answer) == "SEGMENT_NOT_FOUND"
    # the name is free again
    assert create_segment(client, token) != segment_id


def _get(client: httpx.Client, token: str, segment_id: str) -> dict[str, object]:
    answer = client.get(f"/v1/segments/{segment_id}", headers=bearer(token))
    assert answer.status_code == 200
    body = answer.json()
    assert isinstance(body, dict)
    return body


def test_snapshot_is_null_until_processing_then_exact(
    client: httpx.Client, partner: Partner, token: str
) -> None:
    segment_id = ready_segment(client, partner, token)
    values = [sha(f"user-{i}") for i in range(1000)]
    assert upload(client, token, segment_id, adds(values)).json()["accepted"] == 1000
    building = _get(client, token, segment_id)
    assert building["status"] == "BUILDING"
    assert building["input_count"] is None
    assert building["matched_count"] is None
    assert building["match_rate"] is None
    assert building["audience_size"] is None
    partner.clock.advance(29)
    assert _get(client, token, segment_id)["input_count"] is None
    partner.clock.advance(1)
    ready = _get(client, token, segment_id)
    matched = expected_matched(values, 0.6, 0)
    assert ready["status"] == "READY"
    assert ready["input_count"] == 1000
    assert ready["matched_count"] == matched
    assert ready["match_rate"] == match_rate(1000, matched)
    assert ready["match_rate"] == round(matched / 1000, 4)
    assert ready["audience_size"] == round_significant(matched)
    assert ready["targetable"] is True
    assert ready["updated_at"] == "2026-01-01T00:01:30.000Z"


def test_snapshot_holds_until_the_next_processing_completes(
    client: httpx.Client, partner: Partner, token: str
) -> None:
    segment_id = ready_segment(client, partner, token)
    first = [sha(f"a{i}") for i in range(300)]
    upload(client, token, segment_id, adds(first))
    partner.clock.advance(30)
    assert _get(client, token, segment_id)["input_count"] == 300
    upload(client, token, segment_id, removes(first[:100]))
    updating = _get(client, token, segment_id)
    assert updating["status"] == "UPDATING"
    assert updating["input_count"] == 300  # still the last snapshot
    assert updating["targetable"] == (expected_matched(first, 0.6, 0) >= 100)
    partner.clock.advance(20)
    upload(client, token, segment_id, adds([sha("late")]))  # restarts the 30 s
    partner.clock.advance(20)
    assert _get(client, token, segment_id)["input_count"] == 300
    partner.clock.advance(10)
    after = _get(client, token, segment_id)
    assert after["status"] == "READY"
    assert after["input_count"] == 201
    assert after["matched_count"] == expected_matched([*first[100:], sha("late")], 0.6, 0)


def test_privacy_floor_and_targetable_floor(
    client: httpx.Client, partner: Partner, token: str
) -> None:
    segment_id = ready_segment(client, partner, token)
    values = [sha(f"small-{i}") for i in range(120)]
    upload(client, token, segment_id, adds(values))
    partner.clock.advance(30)
    body = _get(client, token, segment_id)
    matched = expected_matched(values, 0.6, 0)
    assert matched < 100
    assert body["matched_count"] == matched
    assert body["audience_size"] is None
    assert body["targetable"] is False


def test_custom_floors_and_match_probability() -> None:
    partner = Partner(
        Scenario(privacy_floor=0, targetable_floor=1, match_probability=1.0, provisioning_delay=0)
    )
    with partner.mock(), httpx.Client(base_url="https://partner.test") as client:
        token = partner.seed_access_token(["acc-1"])
        segment_id = create_segment(client, token)
        upload(client, token, segment_id, adds([sha("a"), sha("b"), sha("c")]))
        partner.clock.advance(30)
        body = _get(client, token, segment_id)
        assert (body["input_count"], body["matched_count"], body["match_rate"]) == (3, 3, 1.0)
        assert body["audience_size"] == 3
        assert body["targetable"] is True


def test_empty_segment_after_processing_has_rate_zero(
    client: httpx.Client, partner: Partner, token: str
) -> None:
    segment_id = ready_segment(client, partner, token)
    upload(client, token, segment_id, removes([sha("nobody")]))
    partner.clock.advance(30)
    body = _get(client, token, segment_id)
    assert (body["input_count"], body["matched_count"], body["match_rate"]) == (0, 0, 0)


def test_failed_segment_takes_uploads_but_is_never_targetable(
    client: httpx.Client, partner: Partner, token: str
) -> None:
    segment_id = ready_segment(client, partner, token)
    partner.force_status(segment_id, "FAILED")
    values = [sha(f"f{i}") for i in range(400)]
    assert upload(client, token, segment_id, adds(values)).json()["accepted"] == 400
    partner.clock.advance(30)
    body = _get(client, token, segment_id)
    assert body["status"] == "FAILED"
    assert body["input_count"] == 400
    assert body["targetable"] is False
    partner.force_status(segment_id, None)
    assert _get(client, token, segment_id)["status"] == "READY"
