"""The measurements of ``python -m bench``, each run in a child process of its own.

Every figure is timed against a baseline measured in the same run, interleaved (baseline
then subject, round after round) and summarised by medians, because the machine is
shared: absolute numbers drift, ratios much less. Each function returns plain data.
"""

from __future__ import annotations

import gc
import hashlib
import json
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

WRK_INSTALL = "apt-get update && apt-get install -y wrk"


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class GcTimer:
    """Time spent in the cyclic collector (gc.callbacks), process-wide."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.collections += 1

    @contextmanager
    def timing(self) -> Iterator[GcTimer]:
        self.seconds, self.collections = 0.0, 0
        gc.callbacks.append(self)
        try:
            yield self
        finally:
            gc.callbacks.remove(self)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- 1. in-process partner request ------------------------------------------------------------


def _upload_body(start: int, count: int) -> bytes:
    operations = [
        {
            "action": "ADD",
            "identifiers": [
                {"type": "EMAIL_SHA256", "value": hashlib.sha256(f"{i}".encode()).hexdigest()}
            ],
        }
        for i in range(start, start + count)
    ]
    return json.dumps({"operations": operations}).encode()


_UNLIMITED = 10**9


def request(quick: bool) -> dict[str, Any]:
    """A 10-operation upload to the in-process partner (respx, as the harness mounts it)
    against a static respx route and a static ``httpx.MockTransport`` answer."""
    import respx

    from fake_partner import Partner, Scenario

    # no rate limit: the virtual clock stands still, so the default 600 a minute would
    # answer most of the rounds' uploads 429 and time the error path instead
    partner = Partner(Scenario(rate_limit_per_minute=_UNLIMITED))
    token = partner.seed_access_token(["acc-1"])
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    base = "https://partner.test"
    with partner.mock(), httpx.Client(base_url=base) as client:
        segment = client.post(
            "/v1/accounts/acc-1/segments", json={"name": "bench"}, headers=headers
        ).json()["id"]
        partner.clock.advance(61)
        body = _upload_body(0, 10)
        url = f"/v1/segments/{segment}/members"
        sample = client.post(url, content=body, headers=headers)
        assert sample.status_code == 200, sample.text
    static = sample.content
    static_headers = {"content-type": "application/json"}
    per_round = 300 if quick else 2000
    rounds = 3 if quick else 5
    times: dict[str, list[float]] = {"mock_transport": [], "respx_static": [], "partner": []}

    def timed(client: httpx.Client) -> float:
        refused = 0
        start = time.perf_counter()
        for _ in range(per_round):
            refused += client.post(url, content=body, headers=headers).status_code != 200
        seconds = (time.perf_counter() - start) / per_round
        assert refused == 0, f"{refused} of {per_round} uploads were not answered 200"
        return seconds

    for _ in range(rounds):
        transport = httpx.MockTransport(
            lambda _: httpx.Response(200, content=static, headers=static_headers)
        )
        with httpx.Client(base_url=base, transport=transport) as client:
            times["mock_transport"].append(timed(client))
        with respx.mock(assert_all_called=False) as router:
            router.route(url__startswith=base).mock(
                return_value=httpx.Response(200, content=static, headers=static_headers)
            )
            with httpx.Client(base_url=base) as client:
                times["respx_static"].append(timed(client))
        with partner.mock(), httpx.Client(base_url=base) as client:
            times["partner"].append(timed(client))
    medians = {k: _median(v) for k, v in times.items()}
    return {
        "per_request_us": {k: round(v * 1e6, 1) for k, v in medians.items()},
        "ratio_vs_respx": round(medians["partner"] / medians["respx_static"], 2),
        "ratio_vs_mock_transport": round(medians["partner"] / medians["mock_transport"], 2),
        "rounds": rounds,
        "requests_per_round": per_round,
    }


# --- 2. initial load in-process ---------------------------------------------------------------


def load_floor(users: int) -> dict[str, Any]:
    """The floor of a load: generate the users, encode every update payload once, and
    validate the partner's models for uploads of the same number of operations."""
    from fake_partner.wire import UPLOAD
    from harness.generators import make_users

    start = time.perf_counter()
    population = make_users(users, seed=2)
    encoded = 0
    for index, user in enumerate(population):
        body = {
            "feed_id": "feed-1",
            "session_id": "session-1",
            "datamart_id": "1",
            "segment_id": "1",
            "user_identifiers": user.to_user_identifiers(include_raw_email=False),
            "user_profiles": user.to_user_profiles(),
            "ts": index,
            "operation": "UPSERT",
        }
        encoded += len(json.dumps(body, separators=(",", ":")).encode())
    for first in range(0, users, 10_000):
        UPLOAD.validate_json(_upload_body(first, min(10_000, users - first)))
    seconds = time.perf_counter() - start
    return {"users": users, "seconds": seconds, "bytes_encoded": encoded}


def load(users: int) -> dict[str, Any]:
    """The feed's initial load through the reference connector, in-process."""
    from harness.generators import make_users
    from harness.platform import Platform
    from harness.simulator import SimulatorSettings

    population = make_users(users, seed=2)
    timer = GcTimer()
    with Platform(settings=SimulatorSettings()) as platform:
        feed = platform.new_feed()
        feed.create()
        feed.connect()
        with timer.timing():
            start = time.perf_counter()
            feed.upsert(population)
            feed.flush()
            seconds = time.perf_counter() - start
        converged = feed.partner_membership() == feed.expected_membership()
        return {
            "users": users,
            "seconds": seconds,
            "users_per_second": round(users / seconds),
            "gc_share": round(timer.seconds / seconds, 3),
            "gc_collections": timer.collections,
            "trace_exchanges": len(platform.trace),
            "trace_held_mib": round(getattr(platform.trace, "held_bytes", -1) / 2**20, 1),
            "batches": feed.accounting.batches,
            "converged": converged,
        }


# --- 3. served partner ingest -----------------------------------------------------------------


async def _minimal_ingest(scope: Scope, receive: Receive, send: Send) -> None:
    """The baseline: a minimal ASGI app that parses the same body and counts operations."""
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = bool(message.get("more_body"))
    received = len(json.loads(b"".join(chunks))["operations"])
    answer = json.dumps({"received": received, "accepted": received}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": answer})


def ingest(members: int) -> dict[str, Any]:
    """10,000-operation uploads to the served partner until ``members`` members, each
    batch also sent to a minimal uvicorn app parsing the same body (interleaved)."""
    from fake_partner import Partner, serve
    from fake_partner.loopback import listen, serve_asgi

    partner = Partner()
    token = partner.seed_access_token(["acc-1"])
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    timer = GcTimer()
    partner_seconds = baseline_seconds = 0.0
    partner_gc = 0.0
    sock = listen("127.0.0.1", 0)
    baseline_url = f"http://127.0.0.1:{sock.getsockname()[1]}/ingest"
    rss_before = peak_rss_mib()
    with (
        serve(partner) as served,
        serve_asgi(_minimal_ingest, sock),
        httpx.Client(base_url=served.base_url, timeout=120) as client,
    ):
        segment = client.post(
            "/v1/accounts/acc-1/segments", json={"name": "bench"}, headers=headers
        ).json()["id"]
        partner.clock.advance(61)
        url = f"/v1/segments/{segment}/members"
        for first in range(0, members, 10_000):
            body = _upload_body(first, min(10_000, members - first))
            start = time.perf_counter()
            answer = client.post(baseline_url, content=body, headers=headers)
            baseline_seconds += time.perf_counter() - start
            assert answer.status_code == 200
            partner.clock.advance(1)  # a second per request: within any rate window
            with timer.timing():
                start = time.perf_counter()
                answer = client.post(url, content=body, headers=headers)
                partner_seconds += time.perf_counter() - start
            partner_gc += timer.seconds
            assert answer.status_code == 200, answer.text[:200]
        held = len(partner.members(segment))
    return {
        "members": held,
        "partner_ops_per_second": round(members / partner_seconds),
        "baseline_ops_per_second": round(members / baseline_seconds),
        "ratio_vs_baseline": round(baseline_seconds / partner_seconds, 2),
        "gc_share": round(partner_gc / partner_seconds, 3),
        "rss_growth_mib": round(peak_rss_mib() - rss_before, 1),
    }


# --- 4. keep-alive requests to the served partner and gateway ---------------------------------


async def _hello(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def keepalive(quick: bool) -> dict[str, Any]:
    """Two requests on one keep-alive connection (a POST with a body, then another):
    served partner and gateway against a minimal uvicorn app on the same kind of socket."""
    from fake_partner import Partner, serve
    from fake_partner.loopback import serve_asgi
    from harness.gateway import Gateway, serve_gateway

    pairs = 20 if quick else 100
    # The baseline's socket is made here, TCP explicitly, not by the listen() under test.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    minimal = f"http://127.0.0.1:{sock.getsockname()[1]}"
    body = b'{"name": "x"}' + b" " * 2000
    results: dict[str, list[float]] = {"minimal": [], "partner": [], "gateway": []}
    with (
        serve(Partner()) as partner,
        serve_gateway(Gateway()) as gateway,
        serve_asgi(_hello, sock),
    ):
        targets = {
            "minimal": (minimal, "/"),
            "partner": (partner.base_url, "/v1/accounts/acc-1/segments"),
            "gateway": (f"http://{gateway.host}:{gateway.port}", "/v1/feeds"),
        }
        clients = {name: httpx.Client(base_url=base) for name, (base, _) in targets.items()}
        try:
            for name, (_, path) in targets.items():
                clients[name].post(path, content=body)  # open the connection
            for _ in range(pairs):
                for name, (_, path) in targets.items():
                    start = time.perf_counter()
                    clients[name].post(path, content=body)
                    clients[name].post(path, content=body)
                    results[name].append(time.perf_counter() - start)
        finally:
            for client in clients.values():
                client.close()
    medians = {k: _median(v) for k, v in results.items()}
    return {
        "two_requests_ms": {k: round(v * 1000, 2) for k, v in medians.items()},
        "ratio_partner_vs_minimal": round(medians["partner"] / medians["minimal"], 2),
        "ratio_gateway_vs_minimal": round(medians["gateway"] / medians["minimal"], 2),
        "pairs": pairs,
    }


# --- 5. driving a connector over loopback, against wrk ----------------------------------------


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb")
wrk.body = f:read("*a")
f:close()
"""


def _wrk(url: str, body: bytes, seconds: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        body_path = Path(folder, "body.json")
        body_path.write_bytes(body)
        script = Path(folder, "post.lua")
        script.write_text(_WRK_SCRIPT.replace("{body}", str(body_path)))
        out = subprocess.run(
            ["wrk", "-t1", "-c1", f"-d{seconds}s", "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split(":", 1)[1])
    raise RuntimeError(f"wrk printed no Requests/sec: {out}")


def loopback(quick: bool) -> dict[str, Any]:
    """Updates driven by the harness (Python, over loopback, one connection) against
    ``wrk -c1`` on the same route and body, interleaved."""
    if shutil.which("wrk") is None:
        return {"skipped": f"wrk is not installed; install it with: {WRK_INSTALL}"}
    from harness.generators import make_users
    from harness.platform import Platform
    from harness.simulator import SimulatorSettings

    rounds = 2 if quick else 4
    users_per_round = 300 if quick else 1500
    seconds = 3 if quick else 5
    population = make_users(users_per_round * rounds + 50, seed=3)
    python_rps: list[float] = []
    wrk_rps: list[float] = []
    with Platform(cmd="feed-harness serve-connector", settings=SimulatorSettings()) as platform:
        feed = platform.new_feed()
        feed.create()
        feed.connect()
        feed.upsert(population[:50])  # warm up
        updates = platform.trace.exchanges("platform->connector", "/v1/user_segment_update")
        body = updates[-1].request_body
        driver = platform.driver
        base_url = getattr(driver, "base_url", None)
        assert isinstance(base_url, str), driver
        for index in range(rounds):
            chunk = population[50 + index * users_per_round : 50 + (index + 1) * users_per_round]
            start = time.perf_counter()
            feed.upsert(chunk)
            python_rps.append(len(chunk) / (time.perf_counter() - start))
            wrk_rps.append(_wrk(base_url + "/v1/user_segment_update", body, seconds))
    python, wrk = _median(python_rps), _median(wrk_rps)
    return {
        "python_requests_per_second": round(python),
        "wrk_requests_per_second": round(wrk),
        "ratio_vs_wrk": round(python / wrk, 2),
        "rounds": rounds,
    }


# --- 6. a connector answering 50 MB bodies ----------------------------------------------------


def big_bodies(calls: int, bounded: bool) -> dict[str, Any]:
    """A verify-like loop against a connector answering 50 MB to every call, served on
    loopback: each answer recorded in a trace (redacted, capped) and read the way the
    checks read it, the answer itself let go. ``bounded=False``: a trace without cap or
    budget, as the trace was before (the baseline)."""
    from harness.drivers import free_port
    from harness.redaction import MASK
    from harness.trace import Trace

    limit = 1 << 62
    try:
        trace = Trace() if bounded else Trace(body_cap=limit, body_budget=limit)
    except TypeError:  # a trace from before bounded evidence (measuring the old code)
        trace = Trace()
    trace.redactor.add_secret("client-secret-bench-1234")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    judged = []
    with _connector_process(port), httpx.Client(base_url=base, timeout=120) as client:
        start = time.perf_counter()
        for index in range(calls):
            body = json.dumps({"feed_id": f"f{index}", "user_identifiers": []}).encode()
            exchange = trace.begin(
                "platform->connector", "POST", base + "/v1/user_segment_update", [], body
            )
            # Read by streaming: an httpx.Response sits in reference cycles, so a body kept
            # in it (`.content`) lives until a later collection, 50 MB each; here the
            # loop holds the body itself and lets it go after recording it.
            with client.stream("POST", "/v1/user_segment_update", content=body) as answer:
                content = b"".join(answer.iter_bytes())
                exchange.finish(answer.status_code, answer.headers.multi_items(), content)
            del content
            judged.append(
                (
                    exchange.status,
                    getattr(exchange, "response_size", len(exchange.response_body)),
                    getattr(exchange, "response_is_json", exchange.response_json() is not None),
                    isinstance(exchange.response_json(), dict),
                    MASK.encode() in exchange.response_body,
                )
            )
        seconds = time.perf_counter() - start
    return {
        "calls": calls,
        "bounded": bounded,
        "seconds": round(seconds, 1),
        "answer_mib": round(judged[0][1] / 2**20, 1),
        "judged_json": all(j[2] for j in judged),
        "parsed_whole": sum(j[3] for j in judged),
        "trace_held_mib": round(
            getattr(trace, "held_bytes", sum(len(e.response_body) for e in trace)) / 2**20, 1
        ),
    }


@contextmanager
def _connector_process(port: int) -> Iterator[None]:
    """The 50 MB connector under uvicorn in a process of its own (as ``--cmd`` runs one),
    so only the harness side counts in this process's peak memory."""
    import sys

    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "bench.big_connector:app"),
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        ],
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the 50 MB connector did not start") from None
                time.sleep(0.1)  # waiting for a real process to listen, not the simulation
        yield
    finally:
        process.terminate()
        process.wait(10)


def big_verify() -> dict[str, Any]:
    """``verify`` of the lifecycle run against a connector answering 50 MB to everything."""
    from harness.verify import make_target, verify

    start = time.perf_counter()
    report = verify(make_target("bench.big_connector:app"), clauses=["CREATE-OK", "WIRE-SCHEMA"])
    seconds = time.perf_counter() - start
    verdicts = {result.id: result.outcome for result in report.results}
    return {"seconds": round(seconds, 1), "verdicts": verdicts}


# --- 7. verify through a command connector ----------------------------------------------------


def run_command(args: list[str]) -> dict[str, Any]:
    """Run a command; wall seconds, CPU seconds of its whole process tree, exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "code": done.returncode, "tail": done.stdout[-300:]}


__all__ = [
    "WRK_INSTALL",
    "GcTimer",
    "big_bodies",
    "big_verify",
    "ingest",
    "keepalive",
    "load",
    "load_floor",
    "loopback",
    "peak_rss_mib",
    "request",
    "run_command",
]
