"""``feed-harness serve-partner``: prints the five lines, serves, stops cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = ["base_url", "client_id", "client_secret", "refresh_token", "admin_token"]


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "serve-partner", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_partner_prints_five_lines_and_serves() -> None:
    process = _start()
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().rstrip("\n") for _ in KEYS]  # blocks until printed
        values = dict(line.split(": ", 1) for line in lines)
        assert list(values) == KEYS
        assert values["base_url"].startswith("http://127.0.0.1:")
        with httpx.Client(base_url=values["base_url"], timeout=10) as client:
            grant = client.post(
                "/oauth/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": values["refresh_token"],
                    "client_id": values["client_id"],
                    "client_secret": values["client_secret"],
                },
            )
            assert grant.status_code == 200
            token = grant.json()["access_token"]
            accounts = client.get("/v1/accounts", headers={"Authorization": f"Bearer {token}"})
            assert [a["id"] for a in accounts.json()["accounts"]] == ["acc-1"]
            admin = client.get("/_admin/state", headers={"X-Admin-Token": values["admin_token"]})
            assert admin.status_code == 200
    finally:
        process.terminate()
        code = process.wait(timeout=20)
    assert code == 0
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read()


def test_serve_partner_with_a_bad_scenario_exits_2(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text('[[faults]]\neffect = { kind = "explode" }\n')
    done = subprocess.run(
        [sys.executable, "-m", "harness", "serve-partner", "--scenario", str(scenario)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "faults[0].effect.kind: 'explode' is not one of: error, latency" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("preset", ["flaky-5xx"])
def test_serve_partner_accepts_a_preset_name(preset: str) -> None:
    process = _start("--scenario", preset)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("base_url: http://127.0.0.1:")
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0
