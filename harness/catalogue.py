"""The clause catalogue: every registered clause with what a connector author needs to know.

``feed-harness clauses`` prints it (``--format text|md|json``); ``docs/clauses.md`` is its
Markdown face, committed and kept equal to the registry by a test. The statement,
severity, runs and routes come from the registry (``harness.clauses.registry``); the
example violation message of each clause lives here, in :data:`EXAMPLES`, keyed by clause
id. A registered clause without an example fails the project's tests, so a new clause is
documented when it is added.

Importing this module is cheap: the registry is loaded only when the catalogue is built.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import __version__

if TYPE_CHECKING:
    from harness.clauses.registry import Clause

FORMATS = ("text", "md", "json")

FAULTY_MODULE = "tests/conformance/faulty.py"


@dataclass(frozen=True)
class Example:
    """What a violation of a clause looks like in a report.

    ``fault`` names the faulty connector of ``tests/conformance/faulty.py`` whose
    verification produced ``message`` (its first finding, cut there); empty when the
    message is written from the check's wording instead (a fault that takes real seconds
    to show, or a clause not yet registered).
    """

    message: str
    fault: str = ""


EXAMPLES: dict[str, Example] = {
    "WIRE-SCHEMA": Example(
        "45 invalid answers: [lifecycle] /v1/external_segment_connection answered 200 with a body "
        "that is not a ExternalSegmentConnectionResponse: message: Input should be a valid "
        "string; …",
        "WrongSchemaAnswer",
    ),
    "WIRE-STATUS": Example(
        "107 mismatches: [lifecycle] /v1/batch_update answered HTTP 500 with status 'RETRY': "
        "expected 503; …",
        "RetryAs500",
    ),
    "WIRE-DELAY-HEADER": Example(
        "13648 mismatches: [lifecycle] /v1/user_segment_update answered next_msg_delay_in_ms=50 "
        "without the x-mics-next-msg-delay header; …",
        "DropsDelayHeader",
    ),
    "WIRE-EMPTY-BODY": Example(
        "5 violations: [lifecycle] external_segment_creation with body '': crash (crash: "
        "RuntimeError: no body on /v1/external_segment_creation); …",
        "CrashesOnEmptyBody",
    ),
    "WIRE-LATENCY": Example(
        "1 slow answer: [lifecycle] timeout: POST /v1/batch_update took 1.00 s real "
        "(timeout): the limit is 1 s",
    ),
    "CREATE-OK": Example(
        "15 violations: [lifecycle] one creation call made the partner create 2 segments: "
        "expected exactly 1 for the feed; …",
        "SpareSegment",
    ),
    "CREATE-IDEMPOTENT": Example(
        "3 violations: [lifecycle] creation repeated for feed 7001 (2 calls) made 2 partner "
        "segments (seg-000001, seg-000002): expected exactly one, reused; …",
        "NewSegmentOnRetry",
    ),
    "CREATE-PERSISTS-ID": Example(
        "37 violations: [lifecycle] feed 7001: creation answered ok but the feed has no "
        "partner_segment_id property: expected it written back through the gateway (segment "
        "seg-000001); …",
        "ForgetsSegmentId",
    ),
    "CREATE-INVALID-CONFIG": Example(
        "1 violation: [invalid-config] missing-account: creation answered 200 'ok': "
        "expected status 'error'",
        "OkDespiteInvalidConfig",
    ),
    "CONNECT-NOT-READY": Example(
        "6 violations: [lifecycle] connection while partner segment seg-000001 was PROVISIONING "
        "answered 200 'ok': expected 502 external_segment_not_ready_yet; …",
        "ConnectsBeforeReady",
    ),
    "CONNECT-TRANSIENT": Example(
        "connection-faults: connection answered HTTP 500 error (seq 19) after the partner gave "
        "HTTP 429 to GET /v1/segments/seg-000001 (seq 20), expected "
        "external_segment_not_ready_yet (502) so the platform polls again",
        "ConnectErrorOnTransient",
    ),
    "CONNECT-READY": Example(
        "37 violations: [lifecycle] the partner segment answered 200 (ready) but connection "
        "answered 502 'external_segment_not_ready_yet': expected 200 ok; …",
        "ReadyOnePollLate",
    ),
    "UPDATE-ELIGIBLE": Example(
        "2549 violations: [lifecycle] feed main update #0 (UPSERT) answered 200 'ok': 1 of 4 "
        "eligible identifiers (e.g. MAID fcbd04c3-402…) reached neither the answer's data nor the "
        "partner; …",
        "DropsEligibleIdentifier",
    ),
    "UPDATE-GROUPING": Example(
        "13410 violations: [lifecycle] data[0] (BATCH_DELIVERY) has grouping_key='': expected a "
        "non-empty string; …",
        "NoGroupingKey",
    ),
    "UPDATE-STATS": Example(
        "13648 violations: [lifecycle] stats identifier someone-else is none of the request "
        "user's 12 identifier values; …",
        "ForeignStats",
    ),
    "BATCH-ACCOUNTING": Example(
        "102 violations: [lifecycle] OK answer: 183 success + 1 error = 184 for a batch of 183: "
        "expected the sum to be 183, both >= 0; …",
        "CountsDoNotAddUp",
    ),
    "BATCH-HONEST": Example(
        "147 violations: [lifecycle] feed main batch 7001-batch-3: OK reported 10 success but the "
        "partner accepted 0 operations in the 0 upload(s) of that call: expected equal; …",
        "SkipsAbsentRemovals",
    ),
    "BATCH-EMPTY": Example(
        "1 violation: [lifecycle] an empty batch answered 400 'ERROR' success=0 error=0: "
        "expected 200 OK 0 0",
        "ErrorOnEmptyBatch",
    ),
    "BATCH-LIMIT": Example(
        "8 violations: [oversized] an upload carried 10200 operations in 1346439 bytes: the "
        "partner takes at most 10000 operations and 5242880 bytes; …",
        "NoSplitting",
    ),
    "CONVERGENCE": Example(
        "177 violations: [lifecycle] feed main: the partner segment has 559 members, the model "
        "484 (0 missing, 75 unexpected); the partner's faults were all transient, so only a "
        "dead-lettered batch excuses a difference, and 75 of them not accounted as error or "
        "dead-lettered (e.g. unexpected EMAIL_SHA256 0d5367aeea12…, last sent by update #226 "
        "DELETE); …",
        "RemovesAsAdds",
    ),
    "RETRY-NO-DUPLICATE-SUCCESS": Example(
        "232 violations: [lifecycle] feed main batch 7001-batch-1: 366 success for 183 distinct "
        "items; …",
        "DuplicatesItems",
    ),
    "DELETE-ABSENT": Example(
        "17 violations: [lifecycle] feed main: the batch of 10 absent DELETEs reported 10 errors "
        "(OK), the partner rejected 0: removing an absent member is not an error; …",
        "ErrorOnAbsentDelete",
    ),
    "TOKEN-REFRESH": Example(
        "preset:token-expiry-mid-upload: POST /v1/segments/seg-000001/members answered 401 "
        "EXPIRED_ACCESS_TOKEN; 0 refresh request(s) before the next /v1 request (POST "
        "/v1/segments/seg-000001/members), expected exactly 1; …",
        "NeverRefreshes",
    ),
    "TOKEN-INVALID-GRANT": Example(
        "preset:invalid-grant: the platform call at seq 1 made 5 refresh attempts with a refresh "
        "token the partner refused with invalid_grant (retry storm; at most 1 per call); "
        "preset:invalid-grant: the platform call at seq 23 made 5 refresh attempts with a refresh "
        "token the partner refused with invalid_grant (retry storm; at most 1 per call); "
        "preset:invalid-grant: the platform call at seq 45 made 5; …",
        "RetriesRefusedGrant",
    ),
    "RATE-LIMIT": Example(
        "preset:rate-limit-burst: the partner answered 429 (Retry-After 30 s) to POST "
        "/v1/segments/seg-000001/members; batch_update answered HTTP 200 OK (seq 73), "
        "expected RETRY; …",
        "IgnoresRetryAfter",
    ),
    "TRANSIENT-5XX": Example(
        "preset:flaky-5xx: batch_update answered HTTP 400 ERROR (seq 283) after the partner "
        "gave HTTP 503 to POST /v1/segments/seg-000001/members (seq 284), expected RETRY; …",
        "ErrorOn5xx",
    ),
    "PARTIAL-FAILURE": Example(
        "preset:mixed-invalid-items: batch HTTP 200 OK (seq 73): 20 items, the partner accepted "
        "19 and rejected 1 of 20 operations in 2 uploads; the connector counted 0 success / 20 "
        "error, expected 19 / 1; preset:mixed-invalid-items: batch HTTP 200 OK (seq 125): 20 "
        "items, the partner accepted 19 and rejected 1 of 20 operations in 2 uploads; the "
        "connector counted 0 success / 20 error, expected 19 / 1;; …",
        "PartialFailureAllError",
    ),
    "PII-HASHED": Example(
        "44 violations: [lifecycle] partner request req-000009 carried 1 unhashed identifier(s), "
        "e.g. EMAIL_SHA256 <24-character value with '@'> (raw: contains '@'); …",
        "SendsRawEmail",
    ),
    "SECRET-NO-LEAK": Example(
        "60 violations: [lifecycle] POST /v1/external_segment_connection answered a secret in the "
        "body (masked in the trace as '***'); …",
        "LeaksRefreshToken",
    ),
    "ACCOUNT-ISOLATION": Example(
        "54 violations: [lifecycle] 3 partner request(s) answered 403 (e.g. POST "
        "/v1/accounts/acc-2/segments ACCOUNT_FORBIDDEN): the connector reached beyond its "
        "account; …",
        "TouchesForeignAccount",
    ),
    "TROUBLESHOOT-AUDIENCE": Example(
        "1 violation: [lifecycle] troubleshoot differs from the partner's snapshot: "
        "input_count=1475 (partner: 475); matched_count=1289 (partner: 289); …",
        "MadeUpAudience",
    ),
    "AUTH-STATUS": Example(
        "the first status HTTP 200 not_authenticated (seq 19) carries no login_url",
        "NoLoginUrl",
    ),
    "AUTH-STATE-TAMPER": Example(
        "/v1/authentication with a state with one character changed HTTP 200 ok (seq 35): "
        "expected error; /v1/authentication with a state with one character changed HTTP 200 ok "
        "(seq 35): the connector exchanged the code at the partner (1 authorization_code "
        "request(s); code used by the call: True); /v1/authentication with a state with one "
        "character changed HTTP 200 ok (seq 35): the connector wrote to the; …",
        "AcceptsForgedState",
    ),
    "AUTH-ROUNDTRIP": Example(
        "the status after logout answered HTTP 200 authenticated (seq 131), expected "
        "not_authenticated",
        "LogoutDoesNothing",
    ),
    "DYNAMIC-PROPERTIES": Example(
        "dynamic values without partner_account_id HTTP 200 ok (seq 107): partner_account_id: "
        "values repeated: acc-1; dynamic values with acc-1 HTTP 200 ok (seq 117): "
        "partner_account_id: values repeated: acc-1; dynamic values with acc-1 HTTP 200 ok (seq "
        "117): partner_segment_id: values repeated: seg-000001",
        "DuplicateEnumValues",
    ),
    "NOT-IMPLEMENTED-OK": Example(
        "auth: dynamic_property_values answered HTTP 500 'not implemented'; auth: "
        "dynamic_property_values answered HTTP 500 'not implemented'; an optional route that is "
        "not implemented answers 400 not_implemented or 404",
        "OptionalRouteAnswers500",
    ),
    "STATEFUL-LIFECYCLE": Example(
        "BATCH-ACCOUNTING broke under --seed 0: 1 violation: [stateful] OK answer: 1 success + 1 "
        "error = 2 for a batch of 1: expected the sum to be 1, both >= 0; …",
        "CountsDoNotAddUp",
    ),
}
"""The example violation message of each clause id (registered or about to be)."""


class MissingExampleError(LookupError):
    """A registered clause has no entry in :data:`EXAMPLES`."""


# --------------------------------------------------------------------------- the data


def example_of(clause_id: str) -> Example:
    """The example of a clause; the error says where to add one."""
    try:
        return EXAMPLES[clause_id]
    except KeyError:
        raise MissingExampleError(
            f"clause {clause_id} has no example violation message: add one to "
            "harness/catalogue.py EXAMPLES (run the faulty connector that breaks it and "
            "copy its first finding), then regenerate docs/clauses.md with "
            "`feed-harness clauses --format md --output docs/clauses.md`"
        ) from None


def _run_scenario(spec_scenario: object) -> tuple[str | None, bool]:
    """(the preset a run plays or None, whether the user's --scenario applies to it)."""
    if spec_scenario is None:
        return None, True
    if isinstance(spec_scenario, str):
        return spec_scenario, False
    return None, False


def runs_data() -> list[dict[str, Any]]:
    """Every conformance run: name, the preset it plays, whether ``--scenario`` applies."""
    from harness.clauses import runs as run_module

    rows = []
    for name, spec in run_module.RUNS.items():
        preset, user = _run_scenario(spec.scenario)
        rows.append(
            {
                "name": name,
                "scenario": preset,
                "uses_user_scenario": user,
                "description": spec.description,
            }
        )
    return rows


def clause_data(clause: Clause) -> dict[str, Any]:
    example = example_of(clause.id)
    return {
        "id": clause.id,
        "statement": clause.statement,
        "group": clause.group,
        "severity": clause.severity,
        "runs": list(clause.runs),
        "routes": list(clause.routes),
        "example": {"message": example.message, "fault": example.fault or None},
    }


def catalogue() -> dict[str, Any]:
    """The whole catalogue as plain data (what ``--format json`` prints)."""
    from harness.clauses.registry import all_clauses

    return {
        "harness_version": __version__,
        "clauses": [clause_data(c) for c in all_clauses()],
        "runs": runs_data(),
    }


# --------------------------------------------------------------------------- the faces


def render_json() -> str:
    return json.dumps(catalogue(), indent=2, ensure_ascii=False) + "\n"


def render_text() -> str:
    """One line per clause: id, severity, statement."""
    data = catalogue()["clauses"]
    width = max(len(c["id"]) for c in data)
    lines = [f"{c['id']:<{width}}  {c['severity']:<7}  {c['statement']}" for c in data]
    lines.append("")
    lines.append(
        f"{len(data)} clauses; `feed-harness clauses --format md` shows runs, routes and "
        "an example violation of each"
    )
    return "\n".join(lines) + "\n"


_MD_INTRO = """\
# Conformance clauses

<!-- Generated by `feed-harness clauses --format md --output docs/clauses.md` from the clause
registry and harness/catalogue.py; do not edit by hand (tests/test_docs.py fails on drift). -->

`feed-harness verify` judges a connector clause by clause. Each clause has a stable id (the
name you see in the terminal table, in JUnit test cases, in `--json` and in `--clauses`
patterns such as `BATCH-*`), a statement of what a conforming connector does, and a check
that reads what the conformance runs recorded: every HTTP exchange on the three legs
(platform to connector, connector to gateway, connector to partner), the platform's
accounting of each batch, and the fake partner's own ledger. A check never drives the
connector itself; the *runs* do. Every check is handed every run and judges its clause
wherever the clause's premise occurs; the runs listed under a clause are the ones made to
reach that premise (one that broke fails the clause, saying why).

Outcomes:

- `passed`: the runs gave the check something to look at, and nothing broke the clause;
- `failed`: a clause of severity `error` is broken; the message names the first
  findings (prefixed by the run, e.g. `[lifecycle]`) and `verify` exits 1;
- `warned`: a clause of severity `warning` is broken; reported, but the exit code stays 0;
- `skipped`: the clause could not be judged: the connector does not implement a route it
  needs (it answered 404, or 400 `not_implemented` where the route allows it), or nothing
  in the runs exercised it. A skip is never a pass; the message says which.

Every failed clause comes with the command that replays it alone, e.g.
`feed-harness verify --connector my_pkg:MyConnector --seed 0 --clauses BATCH-HONEST`: every
verification executes every run, so selecting clauses never changes a verdict.

Each example below is the start of a real message: the one the project's own faulty
connector (named, in `tests/conformance/faulty.py`) gets for that clause, unless it says
otherwise. `…` marks where further findings were cut.
"""


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] if text else text


def _heading(group: str) -> str:
    from harness.clauses.registry import GROUPS

    return GROUPS.get(group, _sentence(group))


def render_markdown() -> str:
    """``docs/clauses.md``."""
    data = catalogue()
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in data["clauses"]:
        groups.setdefault(c["group"], []).append(c)
    out = [_MD_INTRO]
    for group, clauses in groups.items():
        out.append(f"## {_heading(group)}\n")
        for c in clauses:
            out.append(_clause_md(c))
    out.append(_runs_md(data["runs"]))
    return "\n".join(out).rstrip("\n") + "\n"


def _clause_md(c: dict[str, Any]) -> str:
    runs = ", ".join(f"`{r}`" for r in c["runs"]) or "none"
    if c["routes"]:
        routes = ", ".join(f"`{r}`" for r in c["routes"])
        needs = f"- needs the route(s) {routes}; skipped when the connector lacks one\n"
    else:
        needs = ""
    example = c["example"]
    source = (
        f"faulty connector `{example['fault']}`"
        if example["fault"]
        else "written from the check's wording"
    )
    return (
        f"### {c['id']}\n\n"
        f"{_sentence(c['statement'])}\n\n"
        f"- severity: `{c['severity']}`\n"
        f"- runs made for it: {runs}\n"
        f"{needs}"
        f"- example violation ({source}):\n\n"
        f"  > {example['message']}\n"
    )


def _runs_md(runs: list[dict[str, Any]]) -> str:
    lines = [
        "## The runs\n",
        "A verification executes every run, whatever `--clauses` selects, and every clause "
        "judges all of them wherever its premise occurs; a clause's runs are those that "
        "exercise it by design. Runs named `preset:NAME` (and `connection-faults`) play a "
        "scenario of their own (see `docs/scenarios.md`) whatever `--scenario` says; the "
        "others play your `--scenario` (the well-behaved default partner without one), "
        "except `oversized`, which keeps the partner's default limits.\n",
        "| run | partner | what it drives |",
        "|---|---|---|",
    ]
    for r in runs:
        if r["scenario"]:
            partner = f"preset `{r['scenario']}`"
        elif r["uses_user_scenario"]:
            partner = "`--scenario` (or the default)"
        else:
            partner = "its own (default limits)"
        description = r["description"].replace("|", "\\|")
        lines.append(f"| `{r['name']}` | {partner} | {description} |")
    return "\n".join(lines) + "\n"


def render(fmt: str) -> str:
    if fmt == "json":
        return render_json()
    if fmt == "md":
        return render_markdown()
    if fmt == "text":
        return render_text()
    raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")


# --------------------------------------------------------------------------- the command


def add_command(sub: Any) -> None:
    """Register ``feed-harness clauses`` on the CLI's sub-parsers."""
    parser = sub.add_parser(
        "clauses",
        help="list every conformance clause (text, Markdown or JSON)",
        description="List every conformance clause: id, severity, statement, the runs that "
        "exercise it and an example violation message. `--format md` is docs/clauses.md.",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="text", help="output format (default text)"
    )
    parser.add_argument("--output", "-o", metavar="FILE", help="write it to FILE instead")
    parser.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    """``feed-harness clauses``: 0, or 2 when the output cannot be written."""
    try:
        text = render(args.format)
    except MissingExampleError as exc:
        print(f"feed-harness clauses: {exc}", file=sys.stderr)
        return 2
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(
            f"feed-harness clauses: --output {args.output}: cannot write it: {exc.strerror}",
            file=sys.stderr,
        )
        return 2
    return 0
