"""``python -m harness`` is the ``feed-harness`` command."""

import sys

from harness.cli import main

sys.exit(main())
