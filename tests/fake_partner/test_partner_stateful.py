"""The partner against a simple model, driven by Hypothesis through HTTP in-process."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from fp_support import BASE_URL, bearer, sha
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from fake_partner import (
    Partner,
    Scenario,
    audience_size,
    expected_matched,
    is_targetable,
    match_rate,
)

VALID = [("EMAIL_SHA256", sha(f"v{i}")) for i in range(6)] + [
    ("PARTNER_USER_ID", f"p{i}") for i in range(3)
]
INVALID = [
    ("EMAIL_SHA256", "someone@example.com"),
    ("EMAIL_SHA256", sha("v0").upper()),
    ("MAID", "not-a-uuid"),
    ("EMAIL", sha("v1")),
]
IDENTIFIERS = st.sampled_from(VALID + INVALID)
OPERATION = st.tuples(
    st.sampled_from(["ADD", "REMOVE"]), st.lists(IDENTIFIERS, min_size=1, max_size=3)
)
SCENARIO = Scenario(privacy_floor=2, targetable_floor=2, match_probability=0.5)


@dataclass
class ModelSegment:
    """What the partner should know about one segment."""

    ready_at: float
    members: set[tuple[str, str]] = field(default_factory=set)
    due: float | None = None
    snapshot: frozenset[tuple[str, str]] | None = None

    def settle(self, now: float) -> None:
        if self.due is not None and now >= self.due:
            self.snapshot = frozenset(self.members)
            self.due = None


class PartnerMachine(RuleBasedStateMachine):
    segments = Bundle("segments")

    def __init__(self) -> None:
        super().__init__()
        self.partner = Partner(SCENARIO)
        self.client = httpx.Client(base_url=BASE_URL, transport=self.partner.transport())
        self.token = self.partner.seed_access_token(["acc-1"])
        self.token_expires = self.partner.clock.now() + 3600
        self.model: dict[str, ModelSegment] = {}
        self.deleted: set[str] = set()
        self.names: dict[str, str] = {}
        self.requests = 0
        self.uploads: list[dict[str, Any]] = []

    def teardown(self) -> None:
        self.client.close()

    def _now(self) -> float:
        return self.partner.clock.now()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.requests += 1
        return self.client.request(method, path, headers=bearer(self.token), **kwargs)

    def _token_valid(self) -> bool:
        return self._now() < self.token_expires

    @rule(target=segments, name=st.sampled_from(["a", "b", "c"]))
    def create(self, name: str) -> str:
        answer = self._call("POST", "/v1/accounts/acc-1/segments", json={"name": name})
        if not self._token_valid():
            assert answer.status_code == 401
            return "seg-none"
        if name in self.names:
            assert answer.status_code == 409
            assert answer.json()["error"]["details"] == [{"segment_id": self.names[name]}]
            return self.names[name]
        assert answer.status_code == 201, answer.text
        segment_id: str = answer.json()["id"]
        self.names[name] = segment_id
        self.model[segment_id] = ModelSegment(ready_at=self._now() + 60)
        return segment_id

    @rule(seconds=st.sampled_from([0.5, 10, 30, 60, 1800]))
    def advance(self, seconds: float) -> None:
        self.partner.clock.advance(seconds)

    @rule()
    def refresh_token(self) -> None:
        self.token = self.partner.seed_access_token(["acc-1"])
        self.token_expires = self._now() + 3600

    @rule(
        segment=segments,
        operations=st.lists(OPERATION, min_size=0, max_size=6),
        partial_failure=st.booleans(),
    )
    def upload(
        self,
        segment: str,
        operations: list[tuple[str, list[tuple[str, str]]]],
        partial_failure: bool,
    ) -> None:
        body = {
            "operations": [
                {"action": action, "identifiers": [{"type": t, "value": v} for t, v in idents]}
                for action, idents in operations
            ],
            "partial_failure": partial_failure,
        }
        answer = self._call("POST", f"/v1/segments/{segment}/members", json=body)
        now = self._now()
        code = answer.json()["error"]["code"] if answer.status_code >= 400 else None
        if not self._token_valid():
            assert code == "EXPIRED_ACCESS_TOKEN"
            return
        model = self.model.get(segment)
        if model is None:
            assert code == "SEGMENT_NOT_FOUND"
            return
        if now < model.ready_at:
            assert code == "SEGMENT_NOT_READY"
            return
        if not operations:
            assert code == "EMPTY_BATCH"
            return
        valid = [all(ident in VALID for ident in idents) for _, idents in operations]
        if not partial_failure and not all(valid):
            assert code == "INVALID_OPERATIONS"
            assert [d["index"] for d in answer.json()["error"]["details"]] == [
                i for i, ok in enumerate(valid) if not ok
            ]
            return
        assert answer.status_code == 200, answer.text
        result = answer.json()
        self.uploads.append(result)
        assert result["accepted"] == sum(valid)
        assert [e["index"] for e in result["errors"]] == [i for i, ok in enumerate(valid) if not ok]
        model.settle(now)
        for (action, idents), ok in zip(operations, valid, strict=True):
            if ok:
                if action == "ADD":
                    model.members.update(idents)
                else:
                    model.members.difference_update(idents)
        if any(valid):
            model.due = now + 30
            model.settle(now)

    @rule(segment=segments)
    def delete(self, segment: str) -> None:
        answer = self._call("DELETE", f"/v1/segments/{segment}")
        if not self._token_valid():
            assert answer.status_code == 401
            return
        if segment not in self.model:
            assert answer.status_code == 404
            return
        assert answer.status_code == 204
        del self.model[segment]
        self.names = {n: s for n, s in self.names.items() if s != segment}

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        segment = data.draw(st.sampled_from(sorted(self.model)))
        answer = self._call("GET", f"/v1/segments/{segment}")
        if not self._token_valid():
            assert answer.status_code == 401
        elif self._now() < self.model[segment].ready_at:
            assert answer.json()["error"]["code"] == "SEGMENT_NOT_READY"
        else:
            assert answer.status_code == 200

    @invariant()
    def membership_equals_the_model(self) -> None:
        assert sorted(self.partner.segment_ids()) == sorted(self.model)
        for segment_id, model in self.model.items():
            assert self.partner.members(segment_id) == model.members

    @invariant()
    def snapshots_follow_the_rules(self) -> None:
        now = self._now()
        for segment_id, model in self.model.items():
            model.settle(now)
            shown = self.partner.segment(segment_id)
            if now < model.ready_at:
                assert shown["status"] == "PROVISIONING"
            elif model.due is not None:
                assert shown["status"] == ("UPDATING" if model.snapshot is not None else "BUILDING")
            else:
                assert shown["status"] == ("READY" if model.snapshot is not None else "BUILDING")
            if model.snapshot is None:
                assert shown["input_count"] is None
                assert shown["matched_count"] is None
                assert shown["match_rate"] is None
                assert shown["audience_size"] is None
                assert shown["targetable"] is False
                continue
            matched = expected_matched((v for _, v in model.snapshot), 0.5, 0)
            assert shown["input_count"] == len(model.snapshot)
            assert shown["matched_count"] == matched
            assert shown["match_rate"] == match_rate(len(model.snapshot), matched)
            assert shown["audience_size"] == audience_size(matched, 2)
            assert shown["targetable"] == is_targetable(shown["status"], matched, 2)

    @invariant()
    def accepted_plus_rejected_is_received(self) -> None:
        for result in self.uploads:
            assert result["accepted"] + result["rejected"] == result["received"]

    @invariant()
    def ledger_is_complete(self) -> None:
        entries = self.partner.ledger.entries
        assert len(entries) == self.requests
        assert [e.sequence for e in entries] == list(range(1, self.requests + 1))
        accepted = sum(1 for e in entries for o in e.operations if o.accepted)
        assert accepted == sum(result["accepted"] for result in self.uploads)


TestPartnerMachine = PartnerMachine.TestCase


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
UPLOAD_LIKE = st.fixed_dictionaries(
    {
        "operations": st.lists(
            st.fixed_dictionaries({"action": JSON, "identifiers": JSON}), max_size=3
        )
    },
    optional={"partial_failure": JSON, "extra": JSON},
)
PATHS = st.sampled_from(
    [
        "/oauth/token",
        "/oauth/authorize",
        "/v1/accounts",
        "/v1/accounts/acc-1/segments",
        "/v1/accounts/%2F/segments",
        "/v1/segments/{segment}",
        "/v1/segments/{segment}/members",
        "/v1/segments//members",
        "/v1",
        "/",
    ]
)


@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    path=PATHS,
    body=st.one_of(
        st.binary(max_size=64),
        JSON.map(lambda v: json.dumps(v).encode()),
        UPLOAD_LIKE.map(lambda v: json.dumps(v).encode()),
    ),
    authorized=st.booleans(),
    content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded", ""]),
)
def test_garbage_never_breaks_the_partner(
    method: str, path: str, body: bytes, authorized: bool, content_type: str
) -> None:
    partner = Partner(Scenario(provisioning_delay=0))
    token = partner.seed_access_token(["acc-1"])
    with httpx.Client(base_url=BASE_URL, transport=partner.transport()) as client:
        segment = client.post(
            "/v1/accounts/acc-1/segments", headers=bearer(token), json={"name": "s"}
        ).json()["id"]
        client.post(
            f"/v1/segments/{segment}/members",
            headers=bearer(token),
            json={
                "operations": [
                    {"action": "ADD", "identifiers": [{"type": "PARTNER_USER_ID", "value": "kept"}]}
                ]
            },
        )
        before = partner.members(segment)
        headers = {**(bearer(token) if authorized else {}), "Content-Type": content_type}
        answer = client.request(method, path.format(segment=segment), content=body, headers=headers)
    assert answer.status_code < 500, answer.text
    assert answer.headers["X-Request-Id"]
    if answer.status_code >= 400 and path != "/oauth/token":
        assert set(answer.json()["error"]) == {"status", "code", "message", "request_id", "details"}
    if answer.status_code >= 400:
        assert partner.members(segment) == before
    # a request refused unread (``rej-`` id: bad JSON, bad target...) reaches no ledger
    refused_unread = answer.headers["X-Request-Id"].startswith("rej-")
    assert len(partner.ledger) == (2 if refused_unread else 3)
