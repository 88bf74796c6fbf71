"""Hand-written clients for each dialect, as a connector would call them (for the tests).

Each one logs in, creates a segment, uploads values and reads the segment back in its
partner's own shapes, so a test can play the same story against every face.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx

from fake_partner import Partner

LINKEDIN_HEADERS = {"LinkedIn-Version": "202601", "X-Restli-Protocol-Version": "2.0.0"}
ACCOUNT = "acc-1"


class DialectClient:
    """What every dialect client offers; ``http`` reaches the partner (mock or socket)."""

    dialect = "generic"

    def __init__(self, http: httpx.Client, partner: Partner) -> None:
        self.http = http
        self.partner = partner

    def login(self) -> str:
        credentials = self.partner.credentials
        answer = self.http.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": credentials.refresh_token,
                "client_id": credentials.client_id,
                "client_secret": credentials.client_secret,
            },
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def create(self, token: str, name: str) -> httpx.Response:
        return self.http.post(
            f"/v1/accounts/{ACCOUNT}/segments", headers=self.headers(token), json={"name": name}
        )

    def created_id(self, answer: httpx.Response) -> str:
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def upload(
        self, token: str, segment: str, values: Iterable[str], action: str = "ADD"
    ) -> httpx.Response:
        operations = [
            {"action": action, "identifiers": [{"type": "EMAIL_SHA256", "value": value}]}
            for value in values
        ]
        return self.http.post(
            f"/v1/segments/{segment}/members",
            headers=self.headers(token),
            json={"operations": operations},
        )

    def get(self, token: str, segment: str) -> httpx.Response:
        return self.http.get(f"/v1/segments/{segment}", headers=self.headers(token))

    def status(self, token: str, segment: str) -> str:
        return str(self.get(token, segment).json()["status"])

    def rejected(self, answer: httpx.Response) -> int:
        """How many items of an accepted upload the partner said were rejected."""
        return int(answer.json()["rejected"])


class LinkedInClient(DialectClient):
    dialect = "linkedin"

    def login(self) -> str:
        credentials = self.partner.credentials
        answer = self.http.post(
            "/oauth/v2/accessToken",
            data={
                "grant_type": "refresh_token",
                "refresh_token": credentials.refresh_token,
                "client_id": credentials.client_id,
                "client_secret": credentials.client_secret,
            },
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", **LINKEDIN_HEADERS}

    def create(self, token: str, name: str) -> httpx.Response:
        return self.http.post(
            "/rest/dmpSegments",
            headers=self.headers(token),
            json={
                "name": name,
                "account": f"urn:li:sponsoredAccount:{ACCOUNT}",
                "type": "USER",
                "sourcePlatform": "STREAMING",
                "accessPolicy": "PRIVATE",
                "destinations": [{"destination": "LINKEDIN"}],
            },
        )

    def created_id(self, answer: httpx.Response) -> str:
        assert answer.status_code == 201, answer.text
        return answer.headers["x-restli-id"]

    def upload(
        self, token: str, segment: str, values: Iterable[str], action: str = "ADD"
    ) -> httpx.Response:
        elements = [
            {"action": action, "userIds": [{"idType": "SHA256_EMAIL", "idValue": value}]}
            for value in values
        ]
        return self.http.post(
            f"/rest/dmpSegments/{segment}/users",
            headers={**self.headers(token), "X-RestLi-Method": "BATCH_CREATE"},
            json={"elements": elements},
        )

    def get(self, token: str, segment: str) -> httpx.Response:
        return self.http.get(f"/rest/dmpSegments/{segment}", headers=self.headers(token))

    def rejected(self, answer: httpx.Response) -> int:
        return sum(1 for element in answer.json()["elements"] if element["status"] != 201)


class MetaClient(DialectClient):
    dialect = "meta"

    def login(self) -> str:
        return self.partner.seed_access_token([ACCOUNT])

    def create(self, token: str, name: str) -> httpx.Response:
        return self.http.post(
            f"/v25.0/act_{ACCOUNT}/customaudiences",
            data={
                "name": name,
                "subtype": "CUSTOM",
                "customer_file_source": "USER_PROVIDED_ONLY",
                "access_token": token,
            },
        )

    def created_id(self, answer: httpx.Response) -> str:
        assert answer.status_code == 200, answer.text
        return str(answer.json()["id"])

    def upload(
        self, token: str, segment: str, values: Iterable[str], action: str = "ADD"
    ) -> httpx.Response:
        payload = {"schema": ["EMAIL_SHA256"], "data": [[value] for value in values]}
        return self.http.request(
            "POST" if action == "ADD" else "DELETE",
            f"/v25.0/{segment}/users",
            headers=self.headers(token),
            data={"payload": json.dumps(payload)},
        )

    def get(self, token: str, segment: str) -> httpx.Response:
        return self.http.get(
            f"/v25.0/{segment}",
            params={"fields": "name,operation_status,delivery_status"},
            headers=self.headers(token),
        )

    def status(self, token: str, segment: str) -> str:
        body: dict[str, Any] = self.get(token, segment).json()
        return "FAILED" if body["delivery_status"]["code"] == 400 else "OK"

    def rejected(self, answer: httpx.Response) -> int:
        return int(answer.json()["num_invalid_entries"])


CLIENTS: dict[str, type[DialectClient]] = {
    "generic": DialectClient,
    "linkedin": LinkedInClient,
    "meta": MetaClient,
}
BASE_URLS = {
    "generic": "https://partner.test",
    "linkedin": "https://api.linkedin.test",
    "meta": "https://graph.facebook.test",
}
