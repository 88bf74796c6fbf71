"""The ``feed-harness`` command line.

Exit codes: 0 success (every clause passed), 1 a clause failed, 2 usage or scenario
error, 3 the connector could not be started or reached. Imports stay inside the
commands so ``feed-harness --help`` is fast.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from harness import __version__, catalogue

if TYPE_CHECKING:
    from fake_partner import Partner
    from harness.gateway import Gateway

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

exit codes: 0 every clause passed, 1 a clause failed, 2 usage or scenario error,
3 the connector could not be started or reached.
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
    from harness.drivers import ConnectorLoadError, ConnectorStartError
    from harness.report import format_table, write_html, write_json, write_junit_xml
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
    for option, path, _ in outputs:
        if not Path(path).parent.is_dir():
            return _usage(f"{option} {path}: directory {str(Path(path).parent)!r} does not exist")
    clauses = [c for c in (args.clauses or "").split(",") if c.strip()] or None
    _quiet_in_process_connector_logs()
    _import_from_cwd()
    try:
        target = make_target(
            args.connector, cmd=args.cmd, url=args.url, gateway_port=args.gateway_port
        )
        with _progress_line(sys.stderr) as progress:
            report = verify(
                target,
                clauses=clauses,
                seed=args.seed,
                scenario=args.scenario,
                profile=args.profile,
                progress=progress,
            )
    except UnknownClauseError as exc:
        return _usage(str(exc))
    except ScenarioError as exc:
        return _usage(f"--scenario: {exc}")
    except VerifyUsageError as exc:
        return _usage(str(exc))
    except (ConnectorStartError, ConnectorLoadError, ConnectorUnreachableError) as exc:
        print(
            f"feed-harness verify: the connector could not be started or reached: {exc}",
            file=sys.stderr,
        )
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        print("feed-harness verify: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    width = shutil.get_terminal_size((100, 24)).columns
    print(format_table(report, width=max(60, width)))
    for option, path, writer in outputs:
        try:
            writer(report, path)
        except OSError as exc:
            return _usage(f"{option} {path}: cannot write it: {exc.strerror}")
    return EXIT_FAILED if report.failed else EXIT_OK


def _quiet_in_process_connector_logs() -> None:
    """Keep an in-process connector's log lines (expected in the fault runs) off the terminal
    unless logging is configured; the report shows what happened."""
    import logging

    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())


def _import_from_cwd() -> None:
    """``--connector MODULE:ATTR`` also finds modules of the current directory, as ``python -m``
    would (after everything installed, so nothing installed is shadowed)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def _usage(message: str, command: str = "verify") -> int:
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
    _import_from_cwd()
    try:
        app = load_connector(args.connector, settings)
    except ConnectorLoadError as exc:
        return _usage(str(exc), "serve-connector")
    import uvicorn

    uvicorn.run(app, host=args.host, port=settings.port, log_level="warning", access_log=False)
    return EXIT_OK


# --------------------------------------------------------------------------- serve


def _serve(args: argparse.Namespace) -> int:
    from fake_partner import Partner, ScenarioError, load_scenario, serve
    from fake_partner.server import on_stop_signals, restore_signals
    from harness.drivers import free_port
    from harness.gateway import Gateway, GatewaySetupError, ServeError, serve_gateway

    try:
        partner = Partner(load_scenario(args.scenario))
    except ScenarioError as exc:
        return _usage(f"--scenario: {exc}", "serve")
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
            serve(partner) as served_partner,
            # the port is bound again by `verify --url` later: keep it out of the ephemeral range
            serve_gateway(gateway, port=args.gateway_port or free_port()) as served_gateway,
        ):
            account = _configure_gateway(gateway, partner, served_partner.base_url)
            variables = {
                "PLUGIN_PORT": str(plugin_port),
                **served_gateway.env,
            }
            lines = [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]
            lines += [
                f"# partner: {served_partner.base_url} (admin token {partner.admin_token})",
                f"# gateway: {served_gateway.base_url}; feed {DEMO_FEED_ID} (segment "
                f"{DEMO_SEGMENT_ID}, partner_account_id {account}) is registered",
                "# verify the plugin afterwards (stop this first: verify serves its own gateway):",
                f"#   feed-harness verify --url http://127.0.0.1:{plugin_port} "
                f"--gateway-port {served_gateway.port}",
                "# Ctrl-C to stop",
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
    from fake_partner.server import serve_from_command_line

    return serve_from_command_line(args.port, args.scenario, args.host)


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
    partner.set_defaults(run=_serve_partner)
    contract = sub.add_parser(
        "contract",
        help="print the plugin API as an OpenAPI 3.1 document",
        description="Print the OpenAPI 3.1 document of every plugin route (JSON).",
    )
    contract.add_argument("--output", "-o", metavar="FILE", help="write it to FILE instead")
    contract.set_defaults(run=_contract)
    catalogue.add_command(sub)  # feed-harness clauses (harness/catalogue.py)
    return parser


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
    which.add_argument("--connector", metavar="MODULE:ATTR", help="a Python connector, in-process")
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
    verify.add_argument(
        "--clauses", metavar="IDS", help="comma-separated clause ids or patterns (BATCH-*)"
    )
    verify.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed of users and choices (default 0)"
    )
    verify.add_argument(
        "--profile",
        choices=("fast", "ci", "thorough"),
        default="fast",
        help="how hard hypothesis-based clauses search (default fast)",
    )
    verify.add_argument("--junit-xml", metavar="PATH", help="write JUnit XML, one case per clause")
    verify.add_argument("--json", metavar="PATH", help="write the verdict as JSON")
    verify.add_argument("--report", metavar="PATH", help="write a self-contained HTML report")
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
        metavar="MODULE:ATTR",
        help=f"the connector (default {DEFAULT_CONNECTOR})",
    )
    serve_connector.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
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
    serve.set_defaults(run=_serve)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Command | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return run(args)
