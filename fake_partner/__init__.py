"""A stateful, deterministic fake of an ad partner's audience API (``partner-api.md``).

Knows nothing of mediarithmics: it never imports ``contracts`` or ``harness``.
"""
