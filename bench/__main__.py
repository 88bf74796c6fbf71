"""Measure the in-process paths that must sustain large loads, and print the figures.

``python -m bench`` (100,000 users) or ``python -m bench --users 10000`` for a quick look.
Figures, not assertions: speed targets are read here, never timed in tests.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from fake_partner import Partner
from harness.generators import make_users
from harness.platform import Platform
from harness.simulator import SimulatorSettings


def _rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(label: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    before = _rss_mib()
    start = time.perf_counter()
    figures = fn()
    seconds = time.perf_counter() - start
    result = {
        "benchmark": label,
        "seconds": round(seconds, 2),
        **figures,
        "peak_rss_mib": round(_rss_mib(), 1),
        "peak_rss_growth_mib": round(_rss_mib() - before, 1),
    }
    print(json.dumps(result), flush=True)
    return result


def bench_generate(users: int) -> dict[str, Any]:
    generated = make_users(users, seed=1)
    return {"users": len(generated)}


def bench_initial_load(users: int) -> dict[str, Any]:
    """The feed's initial loading through the reference connector, in-process."""
    population = make_users(users, seed=2)
    with Platform(settings=SimulatorSettings()) as platform:
        feed = platform.new_feed()
        feed.create()
        feed.connect()
        start = time.perf_counter()
        feed.upsert(population)
        feed.flush()
        seconds = time.perf_counter() - start
        converged = feed.partner_membership() == feed.expected_membership()
        accounting = feed.accounting
        return {
            "users": users,
            "updates_per_second": round(users / seconds),
            "batches": accounting.batches,
            "items_reported_success": accounting.items_reported_success,
            "trace_exchanges": len(platform.trace),
            "converged": converged,
        }


def bench_partner_uploads(users: int) -> dict[str, Any]:
    """The fake partner alone: uploads of 10,000 operations, no connector."""
    partner = Partner()
    token = partner.seed_access_token(["acc-1"])
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(transport=partner.transport(), base_url="https://partner.test") as client:
        segment = client.post(
            "/v1/accounts/acc-1/segments", json={"name": "bench"}, headers=headers
        ).json()["id"]
        partner.clock.advance(61)  # past provisioning, within the token lifetime
        accepted = 0
        for start in range(0, users, 10_000):
            operations = [
                {"action": "ADD", "identifiers": [{"type": "PARTNER_USER_ID", "value": f"u{i}"}]}
                for i in range(start, min(users, start + 10_000))
            ]
            answer = client.post(
                f"/v1/segments/{segment}/members", json={"operations": operations}, headers=headers
            )
            accepted += answer.json()["accepted"]
    return {"identifiers": users, "accepted": accepted}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--users", type=int, default=100_000, help="users per benchmark")
    parser.add_argument(
        "--only", choices=["generate", "partner", "load"], help="run one benchmark only"
    )
    args = parser.parse_args(argv)
    if args.users <= 0:
        parser.error("--users must be a positive number")
    benches = {
        "generate": lambda: bench_generate(args.users),
        "partner": lambda: bench_partner_uploads(args.users),
        "load": lambda: bench_initial_load(args.users),
    }
    for name, fn in benches.items():
        if args.only in (None, name):
            _timed(name, fn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
