"""Every clause of ``clauses.md``: importing this module registers all the checks."""

from harness.clauses import checks_core, checks_faults

__all__ = ["checks_core", "checks_faults"]
