"""The ``feed-harness`` command line.

Exit codes: 0 success (every clause passed), 1 a clause failed, 2 usage or scenario
error, 3 the connector could not be started or reached. Imports stay inside the
commands so ``feed-harness --help`` is fast.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from harness import __version__, catalogue

if TYPE_CHECKING:
    from fake_partner import Partner
    from harness.gateway import Gateway
    from harness.report import Report

    Writer = Callable[[Report, str], None]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130

DEFAULT_CONNECTOR = "harness.reference:ReferenceConnector"
DEMO_FEED_ID = "9001"
DEMO_SEGMENT_ID = "9101"

Command = Callable[[argparse.Namespace], int]

VERIFY_EPILOG = """\
connector (at most one; default: the built-in reference connector, in-process):
  --connector MODULE:ATTR   a Python connector class / factory / ASGI app, in-process
  --cmd "COMMAND"           a command started once per run on a free loopback port with
                            PLUGIN_PORT, GATEWAY_HOST, GATEWAY_PORT, PLUGIN_WORKER_ID and
                            PLUGIN_AUTHENTICATION_TOKEN set (e.g. "node dist/index.js",
                            "feed-harness serve-connector my_pkg:MyConnector")
  --url URL                 a connector you started yourself. It must point at
                            GATEWAY_HOST=127.0.0.1 and GATEWAY_PORT=N; give that port as
                            --gateway-port N (or keep $GATEWAY_PORT set): each run serves a
                            fresh gateway there (the partner on a free port). PLUGIN_WORKER_ID and
                            PLUGIN_AUTHENTICATION_TOKEN must be set in this shell to the
                            values the connector got. `feed-harness serve` prints such
                            values; stop it before verifying (verify needs the port).

seed sweep:
  --seeds 0..49 | 0,3,7 | 5 a whole verification per seed; prints per clause the seeds it
                            failed on ("flaky" when some seeds only) and writes the first
                            failing seed's verification (--json adds a "seeds" section)
  -j N, --jobs N            seeds at once in worker processes (default: the cores); each
                            --cmd worker starts its own connector; --url sweeps run serially

exit codes: 0 every clause passed, 1 a clause failed, 2 usage or scenario error,
3 the connector could not be started or reached (or was lost on the way: the runs that
ended before are still reported), 128+N stopped by signal N (SIGINT 130, SIGTERM 143:
the connector is stopped and what was judged is reported).
"""

SERVE_EPILOG = f"""\
Start your plugin with the printed `export` lines, try it by hand against the fake
partner and gateway (feed {DEMO_FEED_ID} is registered), then stop this server (Ctrl-C) and verify
the still-running plugin, in a shell with the same exports:
  feed-harness verify --url http://127.0.0.1:$PLUGIN_PORT --gateway-port $GATEWAY_PORT
PLUGIN_WORKER_ID / PLUGIN_AUTHENTICATION_TOKEN already set in the environment are reused.
"""


# --------------------------------------------------------------------------- verify


def _verify(args: argparse.Namespace) -> int:
    from fake_partner import ScenarioError
    from harness.clauses.registry import UnknownClauseError
    from harness.drivers import DEFAULT_DEADLINE, ConnectorLoadError, ConnectorStartError
    from harness.engine import ConnectorLostError, VerificationInterrupted
    from harness.report import write_html, write_json, write_junit_xml
    from harness.verify import (
        ConnectorUnreachableError,
        VerifyUsageError,
        make_target,
        verify,
    )

    outputs = [
        (option, path, writer)
        for option, path, writer in (
            ("--junit-xml", args.junit_xml, write_junit_xml),
            ("--json", args.json, write_json),
            ("--report", args.report, write_html),
        )
        if path is not None
    ]
    if args.jobs is not None and args.seeds is None:
        return _usage(
            f"-j {args.jobs} without --seeds: -j sets how many seeds of a sweep are verified "
            "at once; one verification runs its runs one after another. Add --seeds "
            "(e.g. --seeds 0..9) or drop -j"
        )
    for option, path, _ in outputs:
        if not Path(path).parent.is_dir():
            return _usage(f"{option} {path}: directory {str(Path(path).parent)!r} does not exist")
    clauses = [c for c in (args.clauses or "").split(",") if c.strip()] or None
    _quiet_in_process_connector_logs()
    if args.connector:
        importable_cwd()
    try:
        target = make_target(
            args.connector, cmd=args.cmd, url=args.url, gateway_port=args.gateway_port
        )
        if args.seeds is not None:
            return _sweep(args, target, clauses, outputs)
        with _progress_line(sys.stderr) as progress, _stop_signals():
            report = verify(
                target,
                clauses=clauses,
                seed=args.seed,
                scenario=args.scenario,
                profile=args.profile,
                progress=progress,
                call_timeout=args.call_timeout,
                deadline=args.deadline if args.deadline is not None else DEFAULT_DEADLINE,
                partner=args.partner,
            )
    except UnknownClauseError as exc:
        return _usage(str(exc))
    except ScenarioError as exc:
        return _usage(f"--scenario: {exc}")
    except VerifyUsageError as exc:
        return _usage(str(exc))
    except ConnectorLostError as exc:
        print(f"feed-harness verify: {exc}", file=sys.stderr)
        return _finish(exc.report, outputs, EXIT_UNREACHABLE, verbose=args.verbose)
    except VerificationInterrupted as exc:
        print(f"feed-harness verify: {exc}; the connector was stopped", file=sys.stderr)
        return _finish(exc.report, outputs, 128 + exc.signum, verbose=args.verbose)
    except (ConnectorStartError, ConnectorLoadError, ConnectorUnreachableError) as exc:
        print(
            f"feed-harness verify: the connector could not be started or reached: {exc}",
            file=sys.stderr,
        )
        return EXIT_UNREACHABLE
    except KeyboardInterrupt as exc:  # a stop signal after the runs, while judging
        print("feed-harness verify: interrupted", file=sys.stderr)
        return 128 + int(getattr(exc, "signum", signal.SIGINT))
    code = EXIT_FAILED if report.failed or (args.strict and report.warned) else EXIT_OK
    return _finish(report, outputs, code, verbose=args.verbose)


def _sweep(
    args: argparse.Namespace,
    target: Any,
    clauses: list[str] | None,
    outputs: Sequence[tuple[str, str, Writer]],
) -> int:
    """``verify --seeds``: a verification per seed (``-j`` at a time), the representative
    report's table and files, then a line per clause that failed on some seed."""
    from harness.drivers import DEFAULT_DEADLINE
    from harness.report import write_json
    from harness.sweep import default_jobs, parse_seeds, sweep

    seeds = parse_seeds(args.seeds)
    jobs = args.jobs if args.jobs is not None else (1 if args.url else default_jobs())
    with _progress_line(sys.stderr) as progress, _stop_signals():
        result = sweep(
            target,
            seeds,
            jobs=jobs,
            clauses=clauses,
            scenario=args.scenario,
            profile=args.profile,
            call_timeout=args.call_timeout,
            deadline=args.deadline if args.deadline is not None else DEFAULT_DEADLINE,
            strict=args.strict,
            progress=progress,
            partner=args.partner,
        )
    report = result.representative()
    code = result.exit_code
    if report is None:
        for line in result.lines():
            print(line, file=sys.stderr)
        return code

    def with_seeds(report: Report, path: str) -> None:
        import json

        write_json(report, path)
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        document["seeds"] = result.to_json()
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        Path(path).write_text(text, encoding="utf-8")

    files = [(o, p, with_seeds if o == "--json" else w) for o, p, w in outputs]
    print(f"seed {report.seed} (the first seed with a failed clause, else the first seed):")
    code = _finish(report, files, code, verbose=args.verbose)
    print()
    for line in result.lines():
        print(line)
    return code


def _finish(
    report: Report,
    outputs: Sequence[tuple[str, str, Writer]],
    code: int,
    *,
    verbose: bool = False,
) -> int:
    """Print the clause table (and with ``verbose`` the failing exchanges), write the
    reports asked for, a line each; ``code`` unless one cannot be written."""
    from harness.report import format_exchanges, format_table

    out = OutputStyle.of(sys.stdout)
    print(format_table(report, width=out.width, full=not out.tty, color=out.color))
    if verbose:
        shown = format_exchanges(report)
        if shown:
            print(f"\nfailing exchanges (redacted):\n{shown}")
    for option, path, writer in outputs:
        try:
            writer(report, path)
        except OSError as exc:
            return _usage(f"{option} {path}: cannot write it: {exc.strerror}")
        print(f"wrote {option} {Path(path).resolve()}")
    return code


@contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGTERM (what ``timeout`` and CI runners send) and SIGINT stop the verification:
    the connector's process group is stopped and what was judged is still reported. A
    second signal while it stops is ignored (the stop itself is bounded)."""
    from harness.engine import StopSignal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        if not received:
            received.append(signum)
            raise StopSignal(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class OutputStyle:
    """How to print to a stream: full wrapped messages and no colour unless it is a terminal
    (colour also never with ``$NO_COLOR`` or ``TERM=dumb``)."""

    def __init__(self, tty: bool, color: bool, width: int) -> None:
        self.tty = tty
        self.color = color
        self.width = width

    @classmethod
    def of(cls, stream: TextIO, env: Mapping[str, str] | None = None) -> OutputStyle:
        env = os.environ if env is None else env
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        color = tty and not env.get("NO_COLOR") and env.get("TERM") != "dumb"
        width = shutil.get_terminal_size((100, 24)).columns
        return cls(tty, color, max(60, width))


def importable_cwd() -> None:
    """Make the current directory importable (as ``python -m`` does), so ``--connector
    myconn:MyConnector`` works from the folder holding ``myconn/``; it comes after what is
    installed, so a folder of the same name never shadows an installed package."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def _quiet_in_process_connector_logs() -> None:
    """Keep an in-process connector's log lines (expected in the fault runs) off the terminal
    unless logging is configured; the report shows what happened."""
    import logging

    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())


_PARSERS: dict[str, argparse.ArgumentParser] = {}
"""Each sub-command's parser (filled by ``build_parser``), for its usage line."""


def _usage(message: str, command: str = "verify") -> int:
    """A usage error: the sub-command's usage line, then the reason; exit code 2."""
    parser = _PARSERS.get(command)
    if parser is not None:
        parser.print_usage(sys.stderr)
    print(f"feed-harness {command}: {message}", file=sys.stderr)
    return EXIT_USAGE


@contextmanager
def _progress_line(stream: TextIO) -> Iterator[Callable[[str], None]]:
    """A progress reporter: one line rewritten in place on a terminal, plain lines otherwise."""
    tty = stream.isatty()
    shown = False

    def show(text: str) -> None:
        nonlocal shown
        if tty:
            stream.write(f"\r\x1b[K{text}")
            shown = True
        else:
            stream.write(f"{text}\n")
        stream.flush()

    try:
        yield show
    finally:
        if shown:
            stream.write("\r\x1b[K")
            stream.flush()


# --------------------------------------------------------------------------- serve-connector


def _serve_connector(args: argparse.Namespace) -> int:
    from harness.drivers import ConnectorLoadError, load_connector
    from harness.sdk.settings import PluginSettings, SettingsError

    try:
        settings = PluginSettings.from_env()
    except SettingsError as exc:
        return _usage(
            f"{exc} (export the variables `feed-harness serve` prints, or run this "
            "through `feed-harness verify --cmd`, which sets them)",
            "serve-connector",
        )
    importable_cwd()
    try:
        app = load_connector(args.connector, settings)
    except ConnectorLoadError as exc:
        return _usage(str(exc), "serve-connector")
    from fake_partner.loopback import (
        JsonErrorHttpToolsProtocol,
        listen,
        on_stop_signals,
        restore_signals,
        serve_asgi,
    )

    try:
        sock = listen(args.host, settings.port)
    except OSError as exc:
        return _usage(
            f"cannot listen on {args.host}:{settings.port} (PLUGIN_PORT): {exc.strerror}; "
            "choose another PLUGIN_PORT",
            "serve-connector",
        )
    stop = threading.Event()
    previous = on_stop_signals(stop)
    try:
        log = None if args.quiet else request_log("connector")
        # llhttp parses requests (~70 us less per request than h11, which the partner and
        # gateway keep); one it cannot parse gets the SDK's JSON error, not plain text
        with serve_asgi(app, sock, http=JsonErrorHttpToolsProtocol, log=log):
            host = f"[{args.host}]" if ":" in args.host else args.host
            print(
                f"serving {args.connector} on http://{host}:{settings.port} "
                f"(gateway {settings.gateway_url}); Ctrl-C to stop",
                flush=True,
            )
            stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        restore_signals(previous)
    return EXIT_OK


def request_log(name: str, stream: TextIO | None = None) -> Callable[[str], None]:
    """A request logger for the serve commands: ``HH:MM:SS name METHOD /path -> status``."""
    lock = threading.Lock()

    def log(line: str) -> None:
        target = stream if stream is not None else sys.stderr
        with lock:
            target.write(f"{time.strftime('%H:%M:%S')} {name} {line}\n")
            target.flush()

    return log


# --------------------------------------------------------------------------- serve


def _serve(args: argparse.Namespace) -> int:
    from fake_partner import Partner, ScenarioError, load_scenario, serve
    from fake_partner.loopback import on_stop_signals, restore_signals
    from fake_partner.server import clock_note
    from harness.dialects import resolve_dialect
    from harness.drivers import free_port
    from harness.errors import VerifyUsageError
    from harness.gateway import Gateway, GatewaySetupError, ServeError, serve_gateway
    from harness.gateway.core import JOURNAL_PATH

    try:
        scenario = load_scenario(args.scenario)
        partner = Partner(scenario, dialect=resolve_dialect(args.partner, scenario))
    except ScenarioError as exc:
        return _usage(f"--scenario: {exc}", "serve")
    except VerifyUsageError as exc:
        return _usage(str(exc), "serve")
    worker_id = os.environ.get("PLUGIN_WORKER_ID") or "worker-1"
    token = os.environ.get("PLUGIN_AUTHENTICATION_TOKEN") or None
    try:
        gateway = Gateway(worker_id, token)
    except GatewaySetupError as exc:
        return _usage(f"PLUGIN_WORKER_ID: {exc}", "serve")
    plugin_port = args.plugin_port or free_port()
    stop = threading.Event()
    previous = on_stop_signals(stop)
    try:
        with (
            serve(partner, log=_log_unless(args.quiet, "partner")) as served_partner,
            # the port is bound again by `verify --url` later: keep it out of the ephemeral range
            serve_gateway(
                gateway,
                port=args.gateway_port or free_port(),
                log=_log_unless(args.quiet, "gateway"),
            ) as served_gateway,
        ):
            account = _configure_gateway(gateway, partner, served_partner.base_url)
            variables = {
                "PLUGIN_PORT": str(plugin_port),
                **served_gateway.env,
            }
            lines = [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]
            dialect = (
                ""
                if partner.dialect == "generic"
                else f", speaking {partner.dialect} (technical_config says where)"
            )
            lines += [
                f"# partner: {served_partner.base_url} (admin token {partner.admin_token})"
                + dialect,
                f"# gateway: {served_gateway.base_url}; feed {DEMO_FEED_ID} (segment "
                f"{DEMO_SEGMENT_ID}, partner_account_id {account}) is registered",
                f"# gateway journal: GET {served_gateway.base_url}{JOURNAL_PATH} (basic auth "
                "$PLUGIN_WORKER_ID:$PLUGIN_AUTHENTICATION_TOKEN) lists every call it answered",
                *clock_note(partner.admin_token, served_partner.base_url),
                "# verify the plugin afterwards (stop this first: verify serves its own gateway):",
                f"#   feed-harness verify --url http://127.0.0.1:{plugin_port} "
                f"--gateway-port {served_gateway.port}"
                + ("" if partner.dialect == "generic" else f" --partner {partner.dialect}"),
                "# Ctrl-C to stop" + ("" if args.quiet else "; one line per request follows"),
            ]
            print("\n".join(lines), flush=True)
            stop.wait()
    except (ServeError, OSError) as exc:
        return _usage(
            f"cannot listen on --gateway-port {args.gateway_port}: {exc}; choose another "
            "port (0 picks a free one)",
            "serve",
        )
    except KeyboardInterrupt:
        pass
    finally:
        restore_signals(previous)
    return EXIT_OK


def _configure_gateway(gateway: Gateway, partner: Partner, partner_url: str) -> str:
    """Give the gateway the files a connector reads and one demo feed; returns its account."""
    from harness.gateway import FeedSetup
    from harness.gateway.feeds import DEFAULT_DATAMART_ID
    from harness.platform import configure_gateway
    from harness.users import DEFAULT_IDENTIFYING

    configure_gateway(gateway, partner, partner_url)
    accounts = partner.scenario.accounts
    account = accounts[0].id if accounts else "acc-1"
    gateway.add_feed(
        FeedSetup(
            feed_id=DEMO_FEED_ID,
            segment={
                "id": DEMO_SEGMENT_ID,
                "name": f"Demo segment {DEMO_SEGMENT_ID}",
                "datamart_id": DEFAULT_DATAMART_ID,
            },
            properties={"partner_account_id": account},
            selected_identifying_resources=DEFAULT_IDENTIFYING,
        )
    )
    return account


# --------------------------------------------------------------------------- others


def _serve_partner(args: argparse.Namespace) -> int:
    from fake_partner import ScenarioError, load_scenario
    from fake_partner.server import serve_from_command_line
    from harness.dialects import resolve_dialect
    from harness.errors import VerifyUsageError

    dialect = args.partner
    if dialect is not None and args.scenario is not None:
        try:  # both given: they must agree (a bad scenario is reported below, as ever)
            resolve_dialect(dialect, load_scenario(args.scenario))
        except VerifyUsageError as exc:
            return _usage(str(exc), "serve-partner")
        except ScenarioError:
            pass
    return serve_from_command_line(
        args.port,
        args.scenario,
        args.host,
        log=_log_unless(args.quiet, "partner"),
        dialect=dialect,
    )


def _log_unless(quiet: bool, name: str) -> Callable[[str], None] | None:
    return None if quiet else request_log(name)


def _contract(args: argparse.Namespace) -> int:
    import json

    from contracts.openapi import openapi_document

    text = json.dumps(openapi_document(), indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        return _usage(f"--output {args.output}: cannot write it: {exc.strerror}", "contract")
    return EXIT_OK


# --------------------------------------------------------------------------- parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"{value} is not a port: use 0..65535")
    return value


def _jobs(text: str) -> int:
    """An argparse type: a number of worker processes, at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers: use 1 or more")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text}: give a positive number of seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one sub-command per job."""
    parser = argparse.ArgumentParser(
        prog="feed-harness",
        description="Contract tests and partner simulation for audience-feed connectors.",
    )
    parser.add_argument("--version", action="version", version=f"feed-harness {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_verify(sub)
    _add_serve_connector(sub)
    _add_serve(sub)
    partner = sub.add_parser(
        "serve-partner",
        help="serve the fake partner on loopback and print its URL and credentials",
    )
    partner.add_argument("--port", type=_port, default=0, help="port to listen on (0: a free one)")
    partner.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    partner.add_argument(
        "--scenario", metavar="FILE", default=None, help="scenario .toml/.json file or preset name"
    )
    _add_partner(partner)
    _add_quiet(partner)
    partner.set_defaults(run=_serve_partner)
    contract = sub.add_parser(
        "contract",
        help="print the plugin API as an OpenAPI 3.1 document",
        description="Print the OpenAPI 3.1 document of every plugin route (JSON).",
    )
    contract.add_argument("--output", "-o", metavar="FILE", help="write it to FILE instead")
    contract.set_defaults(run=_contract)
    catalogue.add_command(sub)  # feed-harness clauses (harness/catalogue.py)
    _PARSERS.clear()
    _PARSERS.update(sub.choices)
    return parser


def _add_partner(parser: argparse.ArgumentParser) -> None:
    from fake_partner import DIALECTS

    parser.add_argument(
        "--partner",
        choices=DIALECTS,
        default=None,
        help="the partner dialect the fake partner speaks (default: the scenario's partner "
        "key, else generic; docs/partner-dialects.md)",
    )


def _add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no log line per request (stderr)"
    )


def connector_spec(text: str) -> str:
    """An argparse type: ``MODULE:ATTR`` (a usage error, exit 2, otherwise)."""
    module, sep, attr = text.partition(":")
    names = [*module.split("."), *attr.split(".")]
    if not sep or not all(name.isidentifier() for name in names):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not MODULE:ATTR; write it like myconn:MyConnector (run from the "
            "folder holding myconn/) or harness.reference:ReferenceConnector"
        )
    return text


def _add_verify(sub: Any) -> None:
    verify = sub.add_parser(
        "verify",
        help="verify a connector against the conformance clauses",
        description="Drive a connector through the conformance runs and judge every clause; "
        "prints the clause table (progress goes to stderr).",
        epilog=VERIFY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = verify.add_mutually_exclusive_group()
    which.add_argument(
        "--connector",
        type=connector_spec,
        metavar="MODULE:ATTR",
        help="a Python connector, in-process (the current directory is importable)",
    )
    which.add_argument("--cmd", metavar="COMMAND", help="a command that serves the connector")
    which.add_argument("--url", metavar="URL", help="a running connector (needs --gateway-port)")
    verify.add_argument(
        "--gateway-port",
        type=_port,
        metavar="N",
        help="with --url: the port the connector's GATEWAY_PORT names (default $GATEWAY_PORT)",
    )
    verify.add_argument(
        "--scenario",
        metavar="FILE",
        help="partner scenario (.toml/.json) or preset name (runs with a preset keep theirs)",
    )
    _add_partner(verify)
    verify.add_argument(
        "--clauses", metavar="IDS", help="comma-separated clause ids or patterns (BATCH-*)"
    )
    seeding = verify.add_mutually_exclusive_group()
    seeding.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed of users and choices (default 0)"
    )
    seeding.add_argument(
        "--seeds",
        metavar="SEEDS",
        help="a seed sweep: a whole verification per seed (0..49, 0,3,7 or 5); reports per "
        "clause the seeds it failed on, 'flaky' when it fails on some seeds only",
    )
    verify.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        metavar="N",
        help="with --seeds: seeds verified at once, in worker processes (default: the number "
        "of cores; each --cmd worker starts its own connector; --url sweeps run serially)",
    )
    verify.add_argument(
        "--profile",
        choices=("fast", "ci", "thorough"),
        default="fast",
        help="how hard hypothesis-based clauses search (default fast)",
    )
    verify.add_argument(
        "--strict",
        action="store_true",
        help="a warning clause that fails (outcome warned) fails the verification (exit 1)",
    )
    verify.add_argument(
        "--call-timeout",
        type=_seconds,
        metavar="S",
        help="real seconds the connector may take to answer one call (default 10); a later "
        "answer fails WIRE-LATENCY, and after 3 unanswered calls in a row the harness gives up",
    )
    verify.add_argument(
        "--deadline",
        type=_seconds,
        metavar="S",
        help="real seconds the whole verification may take (default 600); the runs left "
        "then are not run and their clauses fail saying so",
    )
    verify.add_argument("--junit-xml", metavar="PATH", help="write JUnit XML, one case per clause")
    verify.add_argument("--json", metavar="PATH", help="write the verdict as JSON")
    verify.add_argument("--report", metavar="PATH", help="write a self-contained HTML report")
    verify.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print the exchanges of each failed clause (redacted, bodies cut)",
    )
    verify.set_defaults(run=_verify)


def _add_serve_connector(sub: Any) -> None:
    serve_connector = sub.add_parser(
        "serve-connector",
        help="serve a Python connector on 127.0.0.1:$PLUGIN_PORT like an SDK plugin",
        description="Serve a Python connector with uvicorn on 127.0.0.1:$PLUGIN_PORT, "
        "configured from GATEWAY_HOST, GATEWAY_PORT, PLUGIN_WORKER_ID and "
        "PLUGIN_AUTHENTICATION_TOKEN as an SDK plugin is; e.g. "
        '`feed-harness verify --cmd "feed-harness serve-connector"`.',
    )
    serve_connector.add_argument(
        "connector",
        nargs="?",
        default=DEFAULT_CONNECTOR,
        type=connector_spec,
        metavar="MODULE:ATTR",
        help=f"the connector (default {DEFAULT_CONNECTOR})",
    )
    serve_connector.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    _add_quiet(serve_connector)
    serve_connector.set_defaults(run=_serve_connector)


def _add_serve(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="serve the fake partner and gateway for a plugin; print its environment",
        description="Serve the fake partner and the fake plugin gateway on loopback and print "
        "the environment a plugin must be started with, until interrupted.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--scenario", metavar="FILE", default=None, help="scenario .toml/.json file or preset name"
    )
    serve.add_argument(
        "--gateway-port", type=_port, default=0, metavar="N", help="gateway port (0: a free one)"
    )
    serve.add_argument(
        "--plugin-port",
        type=_port,
        default=0,
        metavar="N",
        help="the PLUGIN_PORT to print (0: a free one)",
    )
    _add_partner(serve)
    _add_quiet(serve)
    serve.set_defaults(run=_serve)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # argparse would print the top-level usage: give the sub-command's
        own = _PARSERS.get(str(getattr(args, "command", None) or ""), parser)
        own.error(f"unrecognized arguments: {' '.join(extras)}")
    run: Command | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return run(args)
