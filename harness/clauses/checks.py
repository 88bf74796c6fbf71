"""Every clause of ``clauses.md`` (and the stateful one): importing this registers all checks."""

from harness.clauses import checks_core, checks_faults, stateful

__all__ = ["checks_core", "checks_faults", "stateful"]
