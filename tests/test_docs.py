"""The project's own docs (``docs/``, README) stay true: their examples are run here.

- ``writing-a-connector.md``: the complete connector is extracted and verified, and its
  outcome is exactly what the page says (every clause passed but the listed skips);
- ``scenarios.md``: every TOML/JSON example loads, and every key, matcher, effect and preset
  of the scenario model is documented;
- ``partner-api.md``: every route and error code is documented, its members example is
  accepted by the fake partner;
- ``ci.md``: the jobs are valid YAML, their ``feed-harness verify`` commands parse and the
  JUnit file they publish is the one they write;
- no page points at design notes a clone does not have; relative links resolve.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
import yaml
from pydantic import BaseModel

from fake_partner import Partner, Scenario, parse_scenario
from fake_partner.errors import ErrorCode
from fake_partner.faults import EFFECT_KINDS, Effect, FaultRule, Window
from fake_partner.presets import PRESETS
from fake_partner.routes import ADMIN_ROUTES, PARTNER_ROUTES
from fake_partner.scenario import AccountSpec, ClientSpec, Limits, RefreshTokenSpec
from harness.clauses.registry import all_clauses
from harness.cli import EXIT_OK, build_parser, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PENDING_CLAUSES = frozenset({"CONNECT-TRANSIENT"})


def _read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def _documented(text: str) -> set[str]:
    """Every `code span` of a page."""
    return set(re.findall(r"`([^`\n]+)`", text))


# --------------------------------------------------------------------------- writing a connector


def _complete_connector(text: str) -> str:
    marker = "<!-- complete-connector: my_connector.py"
    after = text.split(marker, 1)[1]
    (code,) = _blocks(after, "python")[:1]
    return code


def _expected_skips(text: str) -> set[str]:
    section = text.split("<!-- expected-skips -->", 1)[1].split("\n\n", 1)[0]
    skips: set[str] = set()
    for line in section.splitlines():
        if line.startswith("- "):
            head = line[2:].split(":", 1)[0]
            skips.update(re.findall(r"`([A-Z0-9-]+)`", head))
    return skips


def test_the_complete_connector_of_the_guide_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The page's connector, copied to a file as a reader would, verified by the documented
    command (`feed-harness verify --connector my_connector:MyConnector` in its directory)."""
    text = _read("writing-a-connector.md")
    (tmp_path / "my_connector.py").write_text(_complete_connector(text), encoding="utf-8")
    assert "\n    feed-harness verify --connector my_connector:MyConnector\n" in text
    monkeypatch.setattr(sys, "path", list(sys.path))  # main() adds the directory
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "my_connector", raising=False)
    verdict = tmp_path / "verdict.json"
    code = main(["verify", "--connector", "my_connector:MyConnector", "--json", str(verdict)])
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    outcomes = {c["id"]: c["outcome"] for c in json.loads(verdict.read_text())["clauses"]}
    assert outcomes.keys() == {c.id for c in all_clauses()}
    skips = _expected_skips(text)
    assert skips, "the page lists the clauses it expects skipped"
    assert {cid for cid, outcome in outcomes.items() if outcome != "passed"} == skips, out
    assert all(outcomes[cid] == "skipped" for cid in skips), out


def test_the_complete_connector_is_self_contained() -> None:
    """It imports only what an install of feed-harness provides (and the standard library)."""
    code = _complete_connector(_read("writing-a-connector.md"))
    modules = {m.split(".")[0] for m in re.findall(r"^(?:from|import) ([\w.]+)", code, re.M)}
    allowed = {"contracts", "harness", "httpx", "__future__"} | set(sys.stdlib_module_names)
    assert modules <= allowed, modules - allowed


# --------------------------------------------------------------------------- scenarios


def test_every_scenario_example_loads() -> None:
    text = _read("scenarios.md")
    examples = [(block, "toml") for block in _blocks(text, "toml")]
    examples += [(block, "json") for block in _blocks(text, "json")]
    assert len(examples) >= 5
    for block, kind in examples:
        scenario = parse_scenario(block, kind, "docs/scenarios.md")
        Partner(scenario)  # a partner accepts it (presets expand, rules compile)
    python = _blocks(text, "python")
    for block in python:
        exec(compile(block, "docs/scenarios.md", "exec"), {})


def _fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def test_every_scenario_key_matcher_effect_and_preset_is_documented() -> None:
    documented = _documented(_read("scenarios.md"))
    keys = _fields(Scenario) | _fields(Limits) | _fields(AccountSpec) | _fields(ClientSpec)
    keys |= _fields(RefreshTokenSpec) | _fields(FaultRule) | _fields(Window)
    for effect in get_args(get_args(Effect)[0]):
        keys |= _fields(effect) - {"kind"}
    missing = sorted(keys - documented)
    assert not missing, f"scenario keys docs/scenarios.md does not name: {missing}"
    assert set(EFFECT_KINDS) <= documented, set(EFFECT_KINDS) - documented
    assert set(PRESETS) <= documented, set(PRESETS) - documented


# --------------------------------------------------------------------------- partner API


def test_every_partner_route_and_error_code_is_documented() -> None:
    text = _read("partner-api.md")
    for route in (*PARTNER_ROUTES, *ADMIN_ROUTES):
        shape = re.sub(r"\{[^}]+\}", "{", route.template)
        paths = {re.sub(r"\{[^}]+\}", "{", p) for p in re.findall(r"(/[\w/{}.-]+)", text)}
        assert shape in paths, f"{route.key} is not in docs/partner-api.md"
    codes = {v for k, v in vars(ErrorCode).items() if k.isupper()}
    missing = sorted(codes - _documented(text))
    assert not missing, missing


def test_the_members_example_is_accepted() -> None:
    text = _read("partner-api.md")
    (body,) = [b for b in _blocks(text, "json") if '"operations"' in b]
    partner = Partner(Scenario(provisioning_delay=0))
    creds = partner.credentials
    with httpx.Client(transport=partner.transport(), base_url="https://partner.test") as http:
        form = {"grant_type": "refresh_token", "refresh_token": creds.refresh_token}
        form |= {"client_id": creds.client_id, "client_secret": creds.client_secret}
        token = http.post("/oauth/token", data=form).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        segment = http.post("/v1/accounts/acc-1/segments", json={"name": "docs"}, headers=headers)
        assert segment.status_code == 201
        path = f"/v1/segments/{segment.json()['id']}/members"
        answer = http.post(path, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["received"], answer.json()["accepted"]) == (2, 2)


# --------------------------------------------------------------------------- CI


def _verify_commands(job: Any) -> list[str]:
    """The `feed-harness verify ...` commands of a parsed CI file, continuation lines joined."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            for line in value.replace("\\\n", " ").splitlines():
                if line.strip().startswith("feed-harness verify"):
                    found.append(line.strip())

    walk(job)
    return found


def test_ci_jobs_parse_and_publish_the_junit_file_they_write() -> None:
    jobs = [yaml.safe_load(block) for block in _blocks(_read("ci.md"), "yaml")]
    assert len(jobs) == 2
    parser = build_parser()
    for job in jobs:
        (command,) = _verify_commands(job)
        args = parser.parse_args(shlex.split(command)[1:])
        assert args.cmd == "node dist/index.js"
        assert args.junit_xml
        assert args.profile == "ci"
        # written by verify, then named again by the step or key that publishes it
        assert json.dumps(job).count(args.junit_xml) >= 2, "the JUnit file is not published"


def test_the_ci_verdict_snippet_runs(tmp_path: Path) -> None:
    text = _read("ci.md")
    (snippet,) = [b for b in _blocks(text, "sh") if "verdict.json" in b]
    verdict = {"clauses": [{"id": "A", "outcome": "failed"}, {"id": "B", "outcome": "passed"}]}
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "verdict.json").write_text(json.dumps(verdict))
    done = subprocess.run(
        snippet.replace("python3 ", f"{shlex.quote(sys.executable)} ", 1),
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "A"), done.stderr


# --------------------------------------------------------------------------- every page


def _pages() -> list[Path]:
    return [
        ROOT / "README.md",
        *sorted(DOCS.glob("*.md")),
        ROOT / "examples/node-connector/README.md",
    ]


def _slug(heading: str) -> str:
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower())
    return re.sub(r"\s", "-", text)


def test_relative_links_resolve() -> None:
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            assert file.exists(), f"{page.name}: link to {target} (no such file)"
            if anchor and file.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", file.read_text(encoding="utf-8"), re.M)
                assert anchor in {_slug(h) for h in headings}, f"{page.name}: {target}"


def test_no_page_points_at_notes_a_clone_does_not_have() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in (".png", ".lock") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if re.search(r"(\.\./)?shared/(specs|seed)\b", text):
            offenders.append(name)
    assert not offenders, f"files pointing at design notes outside the clone: {offenders}"


def test_clause_ids_named_in_the_docs_exist() -> None:
    known = {c.id for c in all_clauses()} | PENDING_CLAUSES
    pattern = r"`((?:WIRE|CREATE|CONNECT|UPDATE|BATCH|TOKEN|RATE|TRANSIENT|PARTIAL|PII|SECRET|"
    pattern += (
        r"ACCOUNT|TROUBLESHOOT|AUTH|DYNAMIC|NOT|CONVERGENCE|RETRY|DELETE|STATEFUL)-[A-Z0-9-]*)`"
    )
    for page in _pages():
        for clause_id in re.findall(pattern, page.read_text(encoding="utf-8")):
            if clause_id.endswith("-"):  # a pattern such as `BATCH-*`
                continue
            assert clause_id in known, f"{page.name} names {clause_id}, which is no clause"


def test_the_license_is_the_apache_2_0_text() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert 'license = { text = "Apache-2.0" }' in (ROOT / "pyproject.toml").read_text()


# --------------------------------------------------------------------------- partner dialects


def test_the_dialect_examples_run() -> None:
    blocks = _blocks(_read("partner-dialects.md"), "python")
    assert len(blocks) == 2
    for block in blocks:
        exec(compile(block, "partner-dialects.md", "exec"), {})


def test_the_dialect_page_names_every_preset_and_dialect() -> None:
    from fake_partner.faces import DIALECTS
    from fake_partner.ledger import SIGNALS

    documented = _documented(_read("partner-dialects.md"))
    assert set(PRESETS) <= documented, set(PRESETS) - documented
    assert set(DIALECTS) <= documented
    assert set(SIGNALS) <= documented, set(SIGNALS) - documented
    assert "partner-dialects.md" in _read("partner-api.md")
