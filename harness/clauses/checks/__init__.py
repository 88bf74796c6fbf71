"""The checks of every clause, one module per group of ``clauses.md``.

Importing this package registers every check (``registry.clause``); each check is a
plain function of the evidence, judged wherever its premise occurs in any run.
"""

from harness.clauses import stateful
from harness.clauses.checks import (
    auth,
    batches,
    creation,
    data_protection,
    faults,
    troubleshoot,
    updates,
    wire,
)

__all__ = [
    "auth",
    "batches",
    "creation",
    "data_protection",
    "faults",
    "stateful",
    "troubleshoot",
    "updates",
    "wire",
]
