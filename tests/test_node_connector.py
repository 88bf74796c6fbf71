"""The Node.js example connector (``examples/node-connector``), built on the published
``@mediarithmics/plugins-nodejs-sdk`` 0.28.2, verified over loopback like any ``--cmd``
connector.

Opt-in (marker ``node``, left out of the default run): ``pytest -m node
tests/test_node_connector.py``; ``.ci/run`` runs it after ``npm ci`` in the example. Needs
``node`` (>= 20) and ``npm``; skipped with the reason when they are missing. The example's own
``node_modules`` is used when ``npm ci`` ran there; otherwise ``npm ci`` installs the lockfile
once per lockfile and Node version into a cache (``$FEED_HARNESS_NODE_CACHE``, default
``<tmp>/feed-harness-node-cache``). Each session runs a fresh copy of the sources next to that
``node_modules``.

0.28.2 serves creation, connection, user_segment_update, batch_update and troubleshoot; its
authentication routes do not exist (HTML 404), so their clauses must come out skipped
(NOT-IMPLEMENTED-OK), never failed. Every other clause must pass.

``linkedin.js`` is the same connector speaking LinkedIn's DMP segment API, verified against
the fake partner's LinkedIn face (``partner="linkedin"``) with the same expectations, plus
the clause that face cannot exercise (``CONNECT-NOT-READY``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from harness.report import Report
from harness.verify import make_target, verify

pytestmark = pytest.mark.node

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "node-connector"
SDK_PACKAGE = "@mediarithmics/plugins-nodejs-sdk"
SDK_VERSION = "0.28.2"
SOURCES = ("index.js", "linkedin.js", "src", "package.json", "package-lock.json")
AUTH_CLAUSES = ("AUTH-STATUS", "AUTH-STATE-TAMPER", "AUTH-ROUNDTRIP", "DYNAMIC-PROPERTIES")
"""Clauses of routes 0.28.2 does not have (authentication 0.30+): skipped, not failed."""
ABSENT_ROUTES = ("authentication_status", "dynamic_property_values", "logout")
"""Optional routes the ``auth`` run calls whatever the answers (``authentication`` only follows a
login URL): NOT-IMPLEMENTED-OK must see them absent."""
NOT_EXERCISED = {"WIRE-DELAY-HEADER": "not exercised"}
"""Clauses a batched connector gives nothing to judge (no ``next_msg_delay_in_ms`` in a body):
skipped as not exercised, like the reference connector's (with how the message starts)."""
LINKEDIN_NOT_OBSERVABLE = {
    "CONNECT-NOT-READY": "no connection call met a provisioning partner segment"
}
"""Clauses the LinkedIn face gives nothing to judge: its segment read shows ``PROCESSING``
before and after provisioning, so no connection can observe a provisioning segment (the
Python LinkedIn reference gets the same skip: ``DIALECT_SKIPS`` in
``tests/conformance/test_faulty.py``)."""
NPM_TIMEOUT = 600


def _node_major(node: str) -> int | None:
    try:
        out = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        return int(out.lstrip("v").split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


@pytest.fixture(scope="session")
def node_tools() -> tuple[str, str, int]:
    """``(node, npm, node major version)``, or the test is skipped saying what is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    missing = [name for name, path in (("node", node), ("npm", npm)) if path is None]
    if missing:
        pytest.skip(
            f"{' and '.join(missing)} not found on PATH: the Node.js example connector needs "
            "Node.js >= 20 and npm"
        )
    assert node is not None
    assert npm is not None
    major = _node_major(node)
    if major is None or major < 20:
        pytest.skip(f"{node} is Node.js {major or 'of unknown version'}; the example needs >= 20")
    return node, npm, major


def _cached_node_modules(npm: str, node_major: int) -> tuple[Path, float | None]:
    """The example's ``node_modules`` from ``npm ci``, cached by lockfile and Node version;
    with the seconds ``npm ci`` took (None: cache hit)."""
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((EXAMPLE / name).read_bytes())
    digest.update(f"node{node_major}-{sys.platform}".encode())
    root = Path(
        os.environ.get("FEED_HARNESS_NODE_CACHE")
        or Path(tempfile.gettempdir()) / "feed-harness-node-cache"
    )
    final = root / f"node-connector-{digest.hexdigest()[:16]}"
    stamp = final / "installed"
    if stamp.is_file():
        return final / "node_modules", None
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="installing-", dir=root))
    try:
        for name in ("package.json", "package-lock.json"):
            shutil.copy2(EXAMPLE / name, staging / name)
        started = time.perf_counter()
        # --ignore-scripts: the only install script in the tree is unix-dgram's node-gyp
        # build, an optional dependency of hot-shots (StatsD over unix sockets), unused here
        result = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=staging,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
            pytest.fail(f"npm ci failed in {staging} (exit {result.returncode}):\n{tail}")
        (staging / "installed").write_text(f"npm ci {seconds:.1f}s\n")
        try:
            staging.rename(final)
        except OSError:  # another session installed the same lockfile meanwhile
            if not stamp.is_file():
                raise
        return final / "node_modules", seconds
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@pytest.fixture(scope="session")
def connector_dir(
    node_tools: tuple[str, str, int], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A fresh copy of the example's sources beside the cached ``node_modules``."""
    _, npm, major = node_tools
    local = EXAMPLE / "node_modules"
    if (local / SDK_PACKAGE / "package.json").is_file():  # `npm ci` ran in the example (CI)
        modules, seconds = local, None
    else:
        modules, seconds = _cached_node_modules(npm, major)
    print(f"npm ci: {'done before' if seconds is None else f'{seconds:.1f}s'} ({modules})")
    work = tmp_path_factory.mktemp("node-connector")
    for name in SOURCES:
        source = EXAMPLE / name
        if source.is_dir():
            shutil.copytree(source, work / name)
        else:
            shutil.copy2(source, work / name)
    (work / "node_modules").symlink_to(modules, target_is_directory=True)
    return work


def _command(script: Path) -> str:
    return f"node {shlex.quote(str(script))}"


def _outcomes(report: Report) -> dict[str, tuple[str, str, str]]:
    return {r.id: (r.outcome, r.message, r.reproduce) for r in report.results}


def test_lockfile_pins_the_published_sdk(connector_dir: Path) -> None:
    """package.json pins 0.28.2 exactly; npm ci installed that version from the registry."""
    manifest = json.loads((EXAMPLE / "package.json").read_text())
    assert manifest["dependencies"] == {SDK_PACKAGE: SDK_VERSION}
    lock = json.loads((EXAMPLE / "package-lock.json").read_text())
    assert lock["packages"][f"node_modules/{SDK_PACKAGE}"]["version"] == SDK_VERSION
    foreign = sorted(
        entry["resolved"]
        for entry in lock["packages"].values()
        if "resolved" in entry and not entry["resolved"].startswith("https://registry.npmjs.org/")
    )
    assert not foreign, f"package-lock.json downloads from outside the npm registry: {foreign}"
    installed = connector_dir / "node_modules" / SDK_PACKAGE / "package.json"
    assert json.loads(installed.read_text())["version"] == SDK_VERSION


def _check_verdict(report: Report, skips: Mapping[str, str], partner: str) -> None:
    """Every clause passed but the authentication ones, skipped (routes absent: 404), never
    failed, and those of ``skips``, skipped with a message starting as given;
    NOT-IMPLEMENTED-OK saw the absent routes as absent."""
    assert report.partner == partner, report.partner
    outcomes = _outcomes(report)
    assert set(AUTH_CLAUSES) <= outcomes.keys()
    for clause_id, (outcome, message, _) in outcomes.items():
        print(f"  {clause_id:28} {outcome:8} {message[:110]}")

    not_passed = {
        clause_id: f"{outcome}: {message} (reproduce: {reproduce})"
        for clause_id, (outcome, message, reproduce) in outcomes.items()
        if clause_id not in (*AUTH_CLAUSES, *skips) and outcome != "passed"
    }
    assert not not_passed, f"clauses SDK 0.28.2 serves did not pass on {partner}:\n" + "\n".join(
        f"{clause_id}: {why}" for clause_id, why in not_passed.items()
    )
    for clause_id in AUTH_CLAUSES:
        outcome, message, _ = outcomes[clause_id]
        assert outcome == "skipped", f"{clause_id} {outcome}: {message}"
        assert message.startswith("not implemented by the connector"), message
        assert "answered 404" in message, message
    for clause_id, why in skips.items():
        outcome, message, _ = outcomes[clause_id]
        assert outcome == "skipped", f"{clause_id} {outcome}: {message}"
        assert message.startswith(why), message
    _, message, _ = outcomes["NOT-IMPLEMENTED-OK"]
    kinds = dict(part.split(": ", 1) for part in message.split(", ") if ": " in part)
    for route in ABSENT_ROUTES:
        assert kinds.get(route) == "absent", f"{route}: {message}"


def test_node_connector_verifies(connector_dir: Path) -> None:
    """Every clause passes but the authentication ones, which are skipped (routes absent:
    404), never failed, and WIRE-DELAY-HEADER, skipped as not exercised; NOT-IMPLEMENTED-OK
    sees those routes as absent."""
    started = time.perf_counter()
    report = verify(make_target(cmd=_command(connector_dir / "index.js")))
    print(f"verify: {time.perf_counter() - started:.1f}s, {report.summary}")
    _check_verdict(report, NOT_EXERCISED, "generic")


def test_node_linkedin_connector_verifies(connector_dir: Path) -> None:
    """The LinkedIn variant against the LinkedIn face, configured by ``technical_config``
    alone: as the generic one, and CONNECT-NOT-READY is skipped too (LinkedIn's segment read
    never shows a provisioning segment)."""
    started = time.perf_counter()
    report = verify(make_target(cmd=_command(connector_dir / "linkedin.js")), partner="linkedin")
    print(f"verify: {time.perf_counter() - started:.1f}s, {report.summary}")
    _check_verdict(report, {**NOT_EXERCISED, **LINKEDIN_NOT_OBSERVABLE}, "linkedin")


def test_bare_sdk_answers_an_empty_body_with_an_html_500(connector_dir: Path) -> None:
    """What the example's ``emptyBodyFilter`` override is for: SDK 0.28.2 as published
    registers its filter unbound, the filter reads ``this.logger`` and throws, and Express
    answers its default HTML 500 instead of 500 ``{"error": "Missing request body"}``: the
    harness fails WIRE-EMPTY-BODY. When a newer pinned SDK fixes it, this test says so and the
    override can go."""
    script = connector_dir / "bare-sdk.js"
    script.write_text(
        "'use strict';\n"
        "// the example connector with the SDK's own emptyBodyFilter\n"
        "const { PartnerAudienceFeed, main } = require('./index.js');\n"
        "delete PartnerAudienceFeed.prototype.emptyBodyFilter;\n"
        "main();\n"
    )
    report = verify(make_target(cmd=_command(script)), clauses=["WIRE-EMPTY-BODY"])
    (result,) = report.results
    assert result.outcome == "failed", result.message
    # each of the 5 feed routes, with b"" and with b"{}"
    assert result.message.startswith("10 violations"), result.message
    assert "answered 500 with b'<!DOCTYPE html>" in result.message, result.message
