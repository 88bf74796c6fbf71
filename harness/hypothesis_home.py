"""Where hypothesis keeps its files while feed-harness runs it: the user's cache directory.

Hypothesis writes caches (constants of local modules, the unicode charmap) and its example
database under ``./.hypothesis`` by default. A verification runs in the user's project, so
``verify`` moves that home to ``$XDG_CACHE_HOME/feed-harness/hypothesis`` (default
``~/.cache/...``) for its own duration; ``HYPOTHESIS_STORAGE_DIRECTORY``, when set, wins.
The verification's own settings keep no example database at all (``database=None``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["cache_directory", "hypothesis_home"]

_HOME_ATTRIBUTE = "__hypothesis_home_directory"


def cache_directory() -> Path:
    """``$XDG_CACHE_HOME/feed-harness/hypothesis``, or under ``~/.cache`` without it."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "feed-harness" / "hypothesis"


@contextmanager
def hypothesis_home() -> Iterator[None]:
    """Point hypothesis' storage at :func:`cache_directory` inside the block, then restore it."""
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        yield
        return
    from hypothesis import configuration

    previous = getattr(configuration, _HOME_ATTRIBUTE, None)
    configuration.set_hypothesis_home_dir(cache_directory())
    try:
        yield
    finally:
        configuration.set_hypothesis_home_dir(previous)
