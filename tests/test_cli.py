"""The ``feed-harness`` command line: verify (exit codes, outputs, progress), serve-connector,
serve, contract. Most run ``main()`` in-process on the stub clauses of ``test_verify``;
subprocesses only where they prove the real command (loopback, signals, import cost).
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_verify import install_stub_registry

from harness.cli import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    OutputStyle,
    _progress_line,
    main,
)

PYTHON = sys.executable


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return install_stub_registry(monkeypatch)


def _run(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


# --------------------------------------------------------------------------- the command line


def test_help_is_fast_and_imports_nothing_heavy() -> None:
    code = (
        "import sys, harness.cli\n"
        "heavy = ('fake_partner', 'harness.platform', 'harness.verify', 'uvicorn', 'httpx')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n"
    )
    loaded = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
    helped = _run("--help")
    assert helped.returncode == 0
    for command in ("verify", "serve-connector", "serve", "serve-partner", "contract"):
        assert command in helped.stdout


def test_verify_help_documents_the_url_design() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["verify", "--help"])
    assert exited.value.code == 0


# --------------------------------------------------------------------------- verify, in-process


def test_verify_passes_writes_every_output_and_shows_progress(
    stub: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit, report, data = tmp_path / "junit.xml", tmp_path / "report.html", tmp_path / "v.json"
    code = main(
        [
            "verify",
            "--clauses",
            "T-PASS,T-NO-RUN",
            "--junit-xml",
            str(junit),
            "--report",
            str(report),
            "--json",
            str(data),
        ]
    )
    out, err = capsys.readouterr()
    assert code == EXIT_OK
    assert "T-PASS" in out
    assert "2 passed, 0 failed, 0 skipped" in out
    assert err.splitlines() == [
        "run 1/3: life",
        "run 2/3: probe",
        "run 3/3: broken",
        "checking 2 clause(s)",
    ]
    document = json.loads(data.read_text())
    assert document["summary"] == {"passed": 2, "failed": 0, "skipped": 0, "warned": 0}
    assert [c["id"] for c in document["clauses"]] == ["T-PASS", "T-NO-RUN"]
    assert (document["connector"], document["seed"], document["profile"]) == (
        "reference connector",
        0,
        "fast",
    )
    cases = ET.parse(junit).getroot().findall("testcase")
    assert [c.get("name") for c in cases] == ["T-PASS", "T-NO-RUN"]
    assert "<!doctype html>" in report.read_text()
    assert out.splitlines()[-3:] == [
        f"wrote --junit-xml {junit}",
        f"wrote --json {data}",
        f"wrote --report {report}",
    ]


def test_a_failed_clause_exits_1_with_the_reproduce_command(
    stub: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.html"
    code = main(["verify", "--clauses", "T-FAIL", "--seed", "5", "--report", str(report)])
    out, _ = capsys.readouterr()
    assert code == EXIT_FAILED
    assert "reproduce T-FAIL: feed-harness verify --seed 5 --clauses T-FAIL" in out
    page = report.read_text()
    assert "<svg" in page, "the failure's sequence diagram"
    assert "/v1/external_segment_creation" in page


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--clauses", "NOPE"], "'NOPE' matches no clause; known clauses: T-PASS"),
        (["--url", "http://127.0.0.1:9"], "--url needs --gateway-port"),
        (["--gateway-port", "9"], "--gateway-port goes with --url"),
        (["--json", "/no/such/dir/v.json"], "--json /no/such/dir/v.json: directory"),
    ],
)
def test_usage_errors_exit_2_with_the_reason(
    stub: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    expected: str,
) -> None:
    monkeypatch.delenv("GATEWAY_PORT", raising=False)
    assert main(["verify", *args]) == EXIT_USAGE
    assert expected in capsys.readouterr().err
    assert stub == [], "nothing ran"


def test_a_bad_scenario_exits_2_naming_the_key(
    stub: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[limits]\nmax_operations = "many"\n')
    assert main(["verify", "--scenario", str(bad)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--scenario" in err
    assert "limits.max_operations" in err
    assert main(["verify", "--scenario", "no-such-preset"]) == EXIT_USAGE
    assert "preset name" in capsys.readouterr().err


def test_argparse_refuses_two_connectors_and_unknown_profiles() -> None:
    for args in (["--connector", "a:b", "--cmd", "x"], ["--profile", "slow"]):
        with pytest.raises(SystemExit) as exited:
            main(["verify", *args])
        assert exited.value.code == EXIT_USAGE


@pytest.mark.parametrize("spec", ["nocolon", "a:", ":b", "my-conn:X", "a:b c"])
def test_a_malformed_connector_is_a_usage_error_with_the_verify_usage(
    stub: list[str], capsys: pytest.CaptureFixture[str], spec: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["verify", "--connector", spec])
    assert exited.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("usage: feed-harness verify ")
    assert f"{spec!r} is not MODULE:ATTR" in err
    assert stub == []


@pytest.mark.parametrize("command", ["verify", "serve", "serve-partner", "contract"])
def test_an_unknown_option_shows_the_sub_command_usage(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--bogus"])
    assert exited.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"usage: feed-harness {command} ")
    assert err.rstrip().endswith("error: unrecognized arguments: --bogus")


def test_a_usage_error_found_later_also_shows_the_sub_command_usage(
    stub: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", "--clauses", "NOPE"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("usage: feed-harness verify ")
    assert "feed-harness verify: --clauses: 'NOPE' matches no clause" in err


def test_a_connector_beside_the_current_directory_is_importable(
    stub: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    package = tmp_path / "myconn_cwd"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from harness.reference import ReferenceConnector as MyConnector\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert main(["verify", "--connector", "myconn_cwd:MyConnector", "--clauses", "T-PASS"]) == 0
    assert "1 passed" in capsys.readouterr().out
    assert str(tmp_path) in sys.path, "importable, after what is installed"


def test_verbose_prints_the_failing_exchanges_redacted(
    stub: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", "--clauses", "T-FAIL,T-PASS"]) == EXIT_FAILED
    assert "failing exchanges" not in capsys.readouterr().out
    assert main(["verify", "--clauses", "T-FAIL,T-PASS", "-v"]) == EXIT_FAILED
    out = capsys.readouterr().out
    shown = out[out.index("failing exchanges (redacted):") :]
    assert "T-FAIL (run life):" in shown
    assert "▶ #" in shown  # the named creation call, its nested calls under it
    assert "POST /v1/external_segment_creation → 200" in shown
    assert "POST /oauth/token" in shown
    assert '"access_token": "***"' in shown
    assert re.search(r'"(access_token|refresh_token|client_secret)": "(?!\*\*\*)', shown) is None
    assert "refresh_token=***" in shown


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_output_style_colours_only_a_terminal_without_no_color() -> None:
    assert (OutputStyle.of(io.StringIO(), {}).tty, OutputStyle.of(io.StringIO(), {}).color) == (
        False,
        False,
    )
    assert OutputStyle.of(_Terminal(), {}).color
    assert not OutputStyle.of(_Terminal(), {"NO_COLOR": "1"}).color
    assert not OutputStyle.of(_Terminal(), {"TERM": "dumb"}).color


def test_a_pipe_gets_the_whole_message_wrapped(
    stub: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.report import ClauseResult, Report

    long = " ".join(f"w{i}" for i in range(100)) + " END"
    report = Report("c", 0, results=[ClauseResult("T-PASS", "s", "passed", message=long)])
    monkeypatch.setattr("harness.verify.verify", lambda *a, **k: report)
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["verify", "--clauses", "T-PASS"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "END" in out
    assert "…" not in out
    assert "\x1b[" not in out
    assert max(len(line) for line in out.splitlines() if "w" in line) <= 80


def test_a_connector_that_cannot_start_exits_3(
    stub: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", "--cmd", "false", "--clauses", "T-PASS"]) == EXIT_UNREACHABLE
    err = capsys.readouterr().err
    assert "could not be started or reached" in err
    assert "exited with code 1" in err
    assert main(["verify", "--connector", "no_such_module:X", "--clauses", "T-PASS"]) == 3
    assert "no module named 'no_such_module'" in capsys.readouterr().err


def test_a_busy_gateway_port_exits_2_naming_it(
    stub: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PLUGIN_AUTHENTICATION_TOKEN", "tok-123456")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        args = ["verify", "--url", "http://127.0.0.1:9", "--gateway-port", port]
        assert main([*args, "--clauses", "T-PASS"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"--gateway-port {port}: cannot listen on 127.0.0.1:{port}" in err
    assert "feed-harness serve` still running?" in err


def test_progress_rewrites_one_line_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    with _progress_line(stream) as show:
        show("run 1/2: a")
        show("run 2/2: b")
    assert stream.getvalue() == "\r\x1b[Krun 1/2: a\r\x1b[Krun 2/2: b\r\x1b[K"


# --------------------------------------------------------------------------- other commands


def test_serve_connector_needs_the_gateway_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PLUGIN_WORKER_ID", raising=False)
    monkeypatch.delenv("PLUGIN_AUTHENTICATION_TOKEN", raising=False)
    assert main(["serve-connector"]) == EXIT_USAGE
    assert "PLUGIN_WORKER_ID is missing" in capsys.readouterr().err
    monkeypatch.setenv("PLUGIN_WORKER_ID", "w")
    monkeypatch.setenv("PLUGIN_AUTHENTICATION_TOKEN", "t")
    with pytest.raises(SystemExit) as exited:
        main(["serve-connector", "nope"])
    assert exited.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("usage: feed-harness serve-connector ")
    assert "'nope' is not MODULE:ATTR" in err


def test_contract_prints_or_writes_the_openapi_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["contract"]) == EXIT_OK
    printed = json.loads(capsys.readouterr().out)
    assert printed["openapi"].startswith("3.1")
    assert "/v1/user_segment_update" in printed["paths"]
    target = tmp_path / "openapi.json"
    assert main(["contract", "--output", str(target)]) == EXIT_OK
    assert json.loads(target.read_text()) == printed


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], dict[str, str], list[str]]]:
    """``feed-harness serve`` in a subprocess: the process, its exports, its other lines."""
    process = subprocess.Popen(
        [PYTHON, "-m", "harness", "serve", "--scenario", "rate-limit-burst"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        exports: dict[str, str] = {}
        lines: list[str] = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exports[name] = value
            if line.startswith("# Ctrl-C"):
                break
        yield process, exports, lines
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def test_serve_prints_the_plugin_environment_and_serves_the_gateway(
    served: tuple[subprocess.Popen[str], dict[str, str], list[str]],
) -> None:
    process, exports, lines = served
    assert set(exports) == {
        "PLUGIN_PORT",
        "GATEWAY_HOST",
        "GATEWAY_PORT",
        "PLUGIN_WORKER_ID",
        "PLUGIN_AUTHENTICATION_TOKEN",
    }
    assert exports["GATEWAY_HOST"] == "127.0.0.1"
    partner_line = next(line for line in lines if line.startswith("# partner: "))
    partner_url = partner_line.split()[2]
    assert partner_url.startswith("http://127.0.0.1:")
    gateway = f"http://127.0.0.1:{exports['GATEWAY_PORT']}"
    auth = (exports["PLUGIN_WORKER_ID"], exports["PLUGIN_AUTHENTICATION_TOKEN"])
    feed = httpx.get(f"{gateway}/v1/audience_segment_external_feeds/9001", auth=auth)
    assert feed.status_code == 200
    config = httpx.get(f"{gateway}/v1/configuration/technical_name=technical_config", auth=auth)
    assert config.status_code == 200
    assert partner_url in config.text
    assert httpx.get(f"{gateway}/v1/audience_segment_external_feeds/9001").status_code == 401
    note = next(i for i, line in enumerate(lines) if "virtual" in line)
    assert "SEGMENT_NOT_READY until POST /_admin/clock/advance" in lines[note]
    clock = lines[note + 1]
    assert f"{partner_url}/_admin/clock/advance" in clock
    assert any(f"GET {gateway}/_admin/requests" in line for line in lines)
    journal = httpx.get(f"{gateway}/_admin/requests", auth=auth)
    assert journal.status_code == 200
    calls = [(c["method"], c["path"], c["status"]) for c in journal.json()["data"]]
    assert calls == [
        ("GET", "/v1/audience_segment_external_feeds/9001", 200),
        ("GET", "/v1/configuration/technical_name=technical_config", 200),
        ("GET", "/v1/audience_segment_external_feeds/9001", 401),
    ]
    assert httpx.get(f"{gateway}/_admin/requests").status_code == 401
    advanced = httpx.post(
        f"{partner_url}/_admin/clock/advance",
        json={"seconds": 60},
        headers={"Authorization": "Bearer " + clock.split("Bearer ")[1].split("'")[0]},
    )
    assert advanced.status_code == 200
    process.send_signal(signal.SIGINT)
    assert process.wait(10) == 0
    assert process.stderr is not None
    log = process.stderr.read().splitlines()
    assert sum(" gateway GET /v1/audience_segment_external_feeds/9001 -> " in x for x in log) == 2
    assert any(" gateway GET /_admin/requests -> 200 " in line for line in log)
    assert any(" partner POST /_admin/clock/advance -> 200 " in line for line in log)
    assert not any(exports["PLUGIN_AUTHENTICATION_TOKEN"] in line for line in log)


def _read_until(stream: Any, prefix: str) -> list[str]:
    lines = []
    for line in stream:
        lines.append(line.rstrip("\n"))
        if line.startswith(prefix):
            return lines
    raise AssertionError(f"no line starting {prefix!r} in {lines}")


@pytest.mark.parametrize("quiet", [False, True])
def test_serve_connector_prints_its_address_and_logs_each_request(quiet: bool) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "PLUGIN_PORT": str(port),
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": "9",
        "PLUGIN_WORKER_ID": "w",
        "PLUGIN_AUTHENTICATION_TOKEN": "secret-token-123",
    }
    process = subprocess.Popen(
        [PYTHON, "-m", "harness", "serve-connector", *(["-q"] if quiet else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        (line,) = _read_until(process.stdout, "serving ")
        assert line.startswith(f"serving harness.reference:ReferenceConnector on "
                               f"http://127.0.0.1:{port} (gateway http://127.0.0.1:9)")  # fmt: skip
        assert httpx.get(f"http://127.0.0.1:{port}/v1/status").status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(10)
    assert code == 0
    assert process.stderr is not None
    log = process.stderr.read()
    assert ("connector GET /v1/status -> 200" in log) is not quiet
    assert "secret-token-123" not in log


def test_serve_partner_notes_the_virtual_clock_and_logs_requests() -> None:
    process = subprocess.Popen(
        [PYTHON, "-m", "harness", "serve-partner"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = _read_until(process.stdout, "# Ctrl-C")
        base_url = lines[0].removeprefix("base_url: ")
        assert any("SEGMENT_NOT_READY until POST /_admin/clock/advance" in x for x in lines)
        assert httpx.get(f"{base_url}/v1/accounts").status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(10)
    assert code == 0
    assert process.stderr is not None
    assert " partner GET /v1/accounts -> 401 " in process.stderr.read()


# --------------------------------------------------------------------------- end to end


def test_verify_passes_every_clause_on_the_reference_connector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.clauses.registry import all_clauses

    junit, report, data = tmp_path / "junit.xml", tmp_path / "report.html", tmp_path / "v.json"
    args = ["--junit-xml", str(junit), "--report", str(report), "--json", str(data)]
    code = main(["verify", *args])
    out, err = capsys.readouterr()
    assert code == EXIT_OK, out
    ids = [c.id for c in all_clauses()]
    assert len(ids) >= 35
    document = json.loads(data.read_text())
    schema = json.loads((Path(__file__).parents[1] / "docs" / "verdict.schema.json").read_text())
    assert set(document) == set(schema["required"])
    # the batched reference never puts a delay in a body: WIRE-DELAY-HEADER is not exercised
    not_exercised = {"WIRE-DELAY-HEADER"}
    passed = len(ids) - len(not_exercised)
    assert document["summary"] == {"passed": passed, "failed": 0, "skipped": 1, "warned": 0}
    assert [c["id"] for c in document["clauses"]] == ids
    for clause in document["clauses"]:
        assert set(clause) == set(schema["$defs"]["clause"]["required"])
        expected = "skipped" if clause["id"] in not_exercised else "passed"
        assert clause["outcome"] == expected, clause
        assert clause["reproduce"] == f"feed-harness verify --seed 0 --clauses {clause['id']}"
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == (str(len(ids)), "0")
    assert [c.get("name") for c in suite.findall("testcase")] == ids
    page = report.read_text()
    assert all(f"#{clause_id}'" in page for clause_id in ids)
    assert f"{passed} passed, 0 failed, 1 skipped (reference connector, seed 0" in out
    assert "run 1/" in err
    assert "handler failed" not in err, "the in-process connector's logs stay off the terminal"


def test_verify_runs_every_run_whatever_the_selection(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A selection judges fewer clauses, on the evidence of every run (so the verdict of a
    clause alone is its verdict in a full verification)."""
    assert main(["verify", "--clauses", "CREATE-*,connect-ready"]) == EXIT_OK
    out, err = capsys.readouterr()
    table = [line.split()[0] for line in out.splitlines()[2:] if line and line[0].isupper()]
    assert table == [
        "CREATE-OK",
        "CREATE-IDEMPOTENT",
        "CREATE-PERSISTS-ID",
        "CREATE-INVALID-CONFIG",
        "CONNECT-READY",
    ]
    from harness.clauses.runs import RUNS

    lines = err.splitlines()
    assert lines[-1] == "checking 5 clause(s)"
    assert lines[:-1] == [f"run {i}/{len(RUNS)}: {name}" for i, name in enumerate(RUNS, 1)]


def test_an_unknown_clause_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--clauses", "BATCH-*,NO-SUCH"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "'NO-SUCH' matches no clause; known clauses: WIRE-SCHEMA, WIRE-STATUS" in err


def test_the_real_command_exits_3_when_the_connector_cannot_start() -> None:
    result = _run("verify", "--cmd", "false", "--clauses", "CREATE-OK")
    assert result.returncode == EXIT_UNREACHABLE
    assert "exited with code 1 before answering GET /v1/status" in result.stderr


@pytest.mark.slow
def test_verify_drives_serve_connector_over_loopback() -> None:
    command = f"{shlex.quote(PYTHON)} -m harness serve-connector"
    clauses = "CREATE-OK,UPDATE-GROUPING,BATCH-EMPTY,PII-HASHED"  # the lifecycle run alone
    result = _run("verify", "--cmd", command, "--clauses", clauses, timeout=120)
    assert result.returncode == EXIT_OK, result.stdout + result.stderr
    assert "4 passed, 0 failed, 0 skipped (--cmd " in result.stdout


@pytest.mark.slow
def test_serve_then_verify_the_plugin_at_its_url(
    served: tuple[subprocess.Popen[str], dict[str, str], list[str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The documented flow: start a plugin with the exports of `serve`, stop `serve`, then
    `verify --url` (which serves its own gateway on the same port) drives that plugin."""
    process, exports, _ = served
    plugin_url = f"http://127.0.0.1:{exports['PLUGIN_PORT']}"
    plugin = subprocess.Popen(
        [PYTHON, "-m", "harness", "serve-connector"],
        env={**os.environ, **exports},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(f"{plugin_url}/v1/status")
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
        for name, value in exports.items():
            monkeypatch.setenv(name, value)
        clauses = "CREATE-OK,CONNECT-READY,TROUBLESHOOT-AUDIENCE"
        code = main(["verify", "--url", plugin_url, "--clauses", clauses])
        out = capsys.readouterr().out
        assert code == EXIT_OK, out
        assert f"3 passed, 0 failed, 0 skipped ({plugin_url}, seed 0" in out
    finally:
        plugin.terminate()
        plugin.wait(10)


def _wait_for(url: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer 200 within {seconds} s"
        time.sleep(0.05)


def test_a_warning_clause_warns_with_exit_0_and_fails_under_strict(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """CONNECT-TRANSIENT (severity warning): a connection error under a partner 429 is
    reported ``warned``, exit 0, a JUnit case that passes; ``--strict`` makes it exit 1."""
    spec = "tests.conformance.faulty:ConnectErrorOnTransient"
    junit = tmp_path / "junit.xml"
    args = ["verify", "--connector", spec, "--clauses", "CONNECT-TRANSIENT"]
    assert main([*args, "--junit-xml", str(junit)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "CONNECT-TRANSIENT  warned" in out
    assert "1 warned" in out
    case = ET.parse(junit).getroot().find("testcase")
    assert case is not None
    assert case.find("failure") is None
    assert main([*args, "--strict"]) == 1
