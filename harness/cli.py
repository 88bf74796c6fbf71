"""The ``feed-harness`` command line.

Exit codes: 0 success (every clause passed), 1 a clause failed, 2 usage or scenario
error, 3 the connector could not be started or reached.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from harness import __version__

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

Command = Callable[[argparse.Namespace], int]


def _not_yet(name: str) -> Command:
    def run(_: argparse.Namespace) -> int:
        print(
            f"feed-harness {name}: not available in this version ({__version__}) yet.",
            file=sys.stderr,
        )
        return EXIT_USAGE

    return run


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one sub-command per job."""
    parser = argparse.ArgumentParser(
        prog="feed-harness",
        description="Contract tests and partner simulation for audience-feed connectors.",
    )
    parser.add_argument("--version", action="version", version=f"feed-harness {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    verify = sub.add_parser("verify", help="verify a connector against the conformance clauses")
    verify.set_defaults(run=_not_yet("verify"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Command | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return run(args)
