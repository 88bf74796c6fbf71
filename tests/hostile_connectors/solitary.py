"""The reference connector as ``feed-harness serve-connector`` serves it, but only one
instance at a time may run: ``python solitary.py LOCKFILE``.

It holds an exclusive lock on ``LOCKFILE`` while it serves; an instance started while
another holds it prints why and exits with code 4 at once (a connector with a fixed port
or file of its own). With ``--once``, only the first instance ever started may serve
(``LOCKFILE`` is never released): later ones exit with code 4 too.
"""

from __future__ import annotations

import fcntl
import os
import sys

from harness.cli import main


def hold(path: str, once: bool) -> int:
    if once:
        try:
            return os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            print(f"{path} exists: this connector has been started before", flush=True)
            sys.exit(4)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"{path} is locked: another instance is serving", flush=True)
        sys.exit(4)
    return fd


if __name__ == "__main__":
    lock = hold(sys.argv[1], "--once" in sys.argv[2:])
    sys.exit(main(["serve-connector", "--quiet"]))
