"""`feed-harness verify` against connectors that misbehave: a verdict in bounded time and
memory, an exit code (1 or 3), no traceback, a message that names the problem, and no
process left behind.

The connectors are small programs under ``tests/hostile_connectors/``. Wall-time
assertions are safety nets that prove termination (generous), not speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import engine
from harness.errors import ConnectorUnreachableError
from harness.targets import make_target
from tests.hostile_connectors import FLAWED, HOSTILE, group_has_live_members, running

TERMINATES = 120.0
"""Seconds within which every misbehaving connector must be judged (a safety net)."""
_RUN_VERIFY = (
    "import sys\n"
    "from harness.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
    "sys.stderr.write(f'\\nPEAK_RSS_KIB={status.split()[0]}\\n')\n"
    "sys.exit(code)\n"
)
"""Runs the CLI and prints this process's peak memory: ``VmHWM`` (not ``ru_maxrss``, which
keeps the peak of the process it was forked from across ``exec``)."""


@dataclass
class Verdict:
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mib: float | None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def hostile(mode: str) -> str:
    return f"{sys.executable} {HOSTILE} {mode}"


def verify(*args: str, env: dict[str, str] | None = None) -> Verdict:
    """``feed-harness verify ARGS`` in a child process, killed if it outlives the net."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _RUN_VERIFY, "verify", *args],
        capture_output=True,
        text=True,
        timeout=TERMINATES + 60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    seconds = time.monotonic() - started
    peak = None
    for line in done.stderr.splitlines():
        if line.startswith("PEAK_RSS_KIB="):
            peak = int(line.split("=", 1)[1]) / 1024
    return Verdict(done.returncode, done.stdout, done.stderr, seconds, peak)


def assert_judged(verdict: Verdict, code: int) -> None:
    assert verdict.code == code, verdict.output[-3000:]
    assert verdict.seconds < TERMINATES, verdict.output[-3000:]
    assert "Traceback" not in verdict.output, verdict.output[-3000:]


def clause(report: Path, clause_id: str) -> dict[str, Any]:
    data = json.loads(report.read_text())
    (found,) = [c for c in data["clauses"] if c["id"] == clause_id]
    return dict(found)


@pytest.mark.slow  # a full verification of a hostile connector process: the slow CI step
def test_a_connector_that_never_answers_is_unreachable() -> None:
    verdict = verify("--cmd", hostile("hang"))
    assert_judged(verdict, 3)
    assert "did not answer GET /v1/status with 200" in verdict.stderr
    assert "timed out" in verdict.stderr  # the last failure, said in words


def test_a_connector_that_exits_at_start_is_unreachable_with_its_output() -> None:
    verdict = verify("--cmd", hostile("exit"))
    assert_judged(verdict, 3)
    assert "exited with code 4 before answering GET /v1/status" in verdict.stderr
    assert "cannot read PARTNER_KEY" in verdict.stderr


@pytest.mark.parametrize(
    "options",
    [("--call-timeout", "2"), pytest.param((), marks=pytest.mark.slow)],
    ids=["call-timeout-2", "defaults"],
)
def test_a_connector_that_hangs_after_status_is_unreachable(options: tuple[str, ...]) -> None:
    verdict = verify("--cmd", hostile("hang-after-status"), *options)
    assert_judged(verdict, 3)
    assert "never answered" in verdict.stderr
    assert "3 call(s) sent (3 timeout)" in verdict.stderr
    assert "the connector stopped answering" in verdict.stderr


def test_a_connector_that_only_answers_status_is_unreachable_after_two_runs() -> None:
    verdict = verify("--cmd", hostile("hang-calls"), "--call-timeout", "1")
    assert_judged(verdict, 3)
    assert "never answered" in verdict.stderr
    assert "though GET /v1/status still answers 200" in verdict.stderr
    assert "gave up on the connector in run lifecycle" in verdict.stderr
    assert "gave up on the connector in run invalid-config" in verdict.stderr
    assert "run 3/" not in verdict.stderr  # the second run that hangs ends the runs


@pytest.mark.slow
def test_one_route_that_hangs_spoils_one_run_not_all(tmp_path: Path) -> None:
    report = tmp_path / "verdict.json"
    flawed = f"{sys.executable} {FLAWED} hangs-on-empty-bodies"
    verdict = verify(
        "--cmd",
        flawed,
        "--call-timeout",
        "1",
        "--clauses",
        "WIRE-EMPTY-BODY,CREATE-INVALID-CONFIG",
        "--json",
        str(report),
    )
    assert_judged(verdict, 1)
    empty = clause(report, "WIRE-EMPTY-BODY")
    assert empty["outcome"] == "failed"
    assert "hang (no answer in time)" in empty["message"]
    assert clause(report, "CREATE-INVALID-CONFIG")["outcome"] == "passed"  # its run ran


@pytest.mark.slow  # a full verification of a hostile connector process: the slow CI step
def test_garbage_after_a_good_status_is_named_garbage() -> None:
    verdict = verify("--cmd", hostile("garbage"), "--call-timeout", "2")
    assert_judged(verdict, 3)
    assert "never gave an HTTP answer" in verdict.stderr
    assert "got garbage instead" in verdict.stderr
    assert "never answered:" not in verdict.stderr
    assert "SSH-2.0" in verdict.stderr  # the bytes it sent, shown


@pytest.mark.slow  # a full verification of a hostile connector process: the slow CI step
def test_html_instead_of_json_fails_the_wire_schema(tmp_path: Path) -> None:
    report = tmp_path / "verdict.json"
    verdict = verify(
        "--cmd", hostile("wrong-content-type"), "--clauses", "WIRE-SCHEMA", "--json", str(report)
    )
    assert_judged(verdict, 1)
    schema = clause(report, "WIRE-SCHEMA")
    assert schema["outcome"] == "failed"
    assert "not-json" in schema["message"]
    assert "text/html" in schema["message"]


@pytest.mark.slow  # a full verification of a hostile connector process: the slow CI step
def test_a_slow_connector_fails_wire_latency_and_is_not_killed(tmp_path: Path) -> None:
    report = tmp_path / "verdict.json"
    verdict = verify(
        "--cmd",
        hostile("slow"),
        "--call-timeout",
        "2",
        "--clauses",
        "WIRE-LATENCY",
        "--json",
        str(report),
        env={"HOSTILE_DELAY": "3"},
    )
    assert_judged(verdict, 1)
    latency = clause(report, "WIRE-LATENCY")
    assert latency["outcome"] == "failed"
    assert "the connector is too slow" in latency["message"]
    assert "GET /v1/status took 3." in latency["message"]


@pytest.mark.slow  # a full verification of a hostile connector process: the slow CI step
def test_huge_answers_are_judged_in_bounded_memory(tmp_path: Path) -> None:
    report = tmp_path / "verdict.json"
    verdict = verify(
        "--cmd",
        hostile("huge"),
        "--clauses",
        "WIRE-SCHEMA",
        "--json",
        str(report),
        env={"HOSTILE_MB": "50"},
    )
    assert_judged(verdict, 1)
    assert clause(report, "WIRE-SCHEMA")["outcome"] == "failed"
    assert verdict.peak_rss_mib is not None
    # dozens of 50 MiB answers: kept whole, they would take gigabytes
    assert verdict.peak_rss_mib < 400, verdict.peak_rss_mib


def test_a_connector_that_dies_mid_run_is_exit_3_with_the_report_of_what_ran(
    tmp_path: Path,
) -> None:
    report = tmp_path / "verdict.json"
    junit = tmp_path / "verdict.xml"
    dying = f"{sys.executable} {FLAWED} dies"
    verdict = verify("--cmd", dying, "--json", str(report), "--junit-xml", str(junit))
    assert_judged(verdict, 3)
    assert "was lost in run lifecycle" in verdict.stderr
    assert "exited with code 7" in verdict.stderr
    assert clause(report, "CREATE-OK")["outcome"] == "passed"  # judged before it died
    not_run = clause(report, "CREATE-INVALID-CONFIG")
    assert not_run["outcome"] == "failed"
    assert "not run" in not_run["message"]
    assert "exited with code 7" in not_run["message"]
    assert "CREATE-OK" in junit.read_text()


# --------------------------------------------------------------------------- stop signals


@pytest.fixture
def pid_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "connector.pids"
    yield path
    if path.exists():  # never leave a connector behind, even when the test fails
        for pid in _pids(path):
            _kill_quietly(pid)


def _pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()]


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_stops_the_connector_group_and_writes_the_reports(
    tmp_path: Path, pid_file: Path, signum: signal.Signals
) -> None:
    report = tmp_path / "verdict.json"
    junit = tmp_path / "verdict.xml"
    env = {**os.environ, "HOSTILE_PIDFILE": str(pid_file), "HOSTILE_CHILD": "1"}
    command = [sys.executable, "-m", "harness", "verify", "--cmd", hostile("hang-after-status")]
    command += ["--json", str(report), "--junit-xml", str(junit)]
    started = time.monotonic()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        while not pid_file.exists() and time.monotonic() - started < 60:
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        leader, child = _pids(pid_file)
        assert running(leader)
        assert running(child)
        time.sleep(1.0)  # the harness is now waiting on a call that hangs
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + signum, stderr[-3000:]
    assert "Traceback" not in stdout + stderr
    assert f"interrupted by {signum.name}" in stderr
    assert not running(leader)
    assert not running(child)  # the connector's own child: the whole group was stopped
    assert not group_has_live_members(leader)
    creation = clause(report, "CREATE-OK")
    assert creation["outcome"] == "failed"
    assert f"interrupted by {signum.name}" in creation["message"]
    assert "CREATE-OK" in junit.read_text()


def test_a_url_connector_that_dies_keeps_the_runs_already_judged(tmp_path: Path) -> None:
    from harness.drivers import free_port

    report = tmp_path / "verdict.json"
    plugin_port, gateway_port = free_port(), free_port()
    env = {
        **os.environ,
        "PLUGIN_PORT": str(plugin_port),
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(gateway_port),
        "PLUGIN_WORKER_ID": "worker-url",
        "PLUGIN_AUTHENTICATION_TOKEN": "tok-url-test-0001",
    }
    connector = subprocess.Popen(
        [sys.executable, str(FLAWED), "dies"],
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{plugin_port}"
        verdict = verify(
            "--url", url, "--gateway-port", str(gateway_port), "--json", str(report), env=env
        )
    finally:
        if connector.poll() is None:
            connector.kill()
        connector.wait(10)
    assert connector.returncode == 7  # it died as planned, during the first run
    assert_judged(verdict, 3)
    assert "was lost in run lifecycle" in verdict.stderr
    assert "the connector stopped answering" in verdict.stderr
    assert clause(report, "CREATE-OK")["outcome"] == "passed"
    assert "not run" in clause(report, "CREATE-INVALID-CONFIG")["message"]


# --------------------------------------------------------------------------- in-process


async def hanging_connector(scope: Any, receive: Any, send: Any) -> None:
    """An in-process connector whose every answer hangs (its lifespan aside)."""
    if scope["type"] == "http":
        await asyncio.Event().wait()


def test_an_in_process_connector_that_hangs_is_unreachable() -> None:
    started = time.monotonic()
    with pytest.raises(ConnectorUnreachableError, match="never answered") as caught:
        engine.verify(make_target(hanging_connector), call_timeout=0.2)
    assert time.monotonic() - started < TERMINATES
    assert "3 call(s) sent (3 timeout)" in str(caught.value)


def test_the_deadline_stops_the_runs_and_their_clauses_say_so() -> None:
    started = time.monotonic()
    report = engine.verify(deadline=1.0)
    assert time.monotonic() - started < TERMINATES
    assert report.failed
    cut = [r for r in report.results if "the --deadline of 1 s passed" in r.message]
    assert cut, [r.message for r in report.results]
    # a warning clause (CONNECT-TRANSIENT) whose runs were cut is warned, the others failed
    assert all(r.outcome == ("warned" if r.severity == "warning" else "failed") for r in cut)


def test_a_connector_that_cannot_be_started_again_keeps_the_runs_judged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As a ``--url`` connector that died between two runs: the next start fails."""
    from harness.clauses import runs as run_module
    from harness.drivers import ConnectorStartError

    real = run_module.execute_run
    started: list[str] = []

    def dies_after_the_first(spec: Any, target: Any, **options: Any) -> Any:
        started.append(spec.name)
        if len(started) > 1:
            raise ConnectorStartError("the connector did not answer GET /v1/status with 200")
        return real(spec, target, **options)

    monkeypatch.setattr(run_module, "execute_run", dies_after_the_first)
    with pytest.raises(engine.ConnectorLostError) as caught:
        engine.verify(clauses=["CREATE-OK", "CREATE-INVALID-CONFIG"])
    assert started == ["lifecycle", "invalid-config"]
    assert "lost before run invalid-config: it could not be started again" in str(caught.value)
    results = {r.id: r for r in caught.value.report.results}
    assert results["CREATE-OK"].outcome == "passed"
    assert results["CREATE-INVALID-CONFIG"].outcome == "failed"
    assert "could not be started again" in results["CREATE-INVALID-CONFIG"].message
