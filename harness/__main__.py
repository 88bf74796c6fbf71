"""``python -m harness`` is the ``feed-harness`` command."""

import sys

from harness.cli import main

if __name__ == "__main__":  # not when a ``-j`` worker (spawn) imports it as ``__mp_main__``
    sys.exit(main())
