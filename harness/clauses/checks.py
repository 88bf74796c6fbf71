"""The checks of every clause of ``clauses.md``, registered by decorator."""
