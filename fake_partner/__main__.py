"""``python -m fake_partner``: serve the fake partner on loopback until Ctrl-C.

``--partner generic|linkedin|meta`` picks the dialect (default: the scenario's, else
generic); ``--scenario`` a TOML/JSON scenario file; ``--port`` (0: a free one).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fake_partner.faces import DIALECTS
from fake_partner.server import serve_from_command_line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fake_partner", description="Serve the fake partner on loopback."
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--scenario", default=None, help="a scenario file (TOML or JSON)")
    parser.add_argument(
        "--partner",
        choices=DIALECTS,
        default=None,
        help="the dialect to speak (default: the scenario's partner key, else generic)",
    )
    parser.add_argument("--quiet", action="store_true", help="no line per request")
    args = parser.parse_args(argv)
    log = None if args.quiet else (lambda line: print(f"partner: {line}", flush=True))
    return serve_from_command_line(
        args.port, args.scenario, args.host, log=log, dialect=args.partner
    )


if __name__ == "__main__":
    sys.exit(main())
