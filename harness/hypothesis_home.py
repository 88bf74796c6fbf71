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

__all__ = ["cache_directory", "hypothesis_home", "no_local_constants"]

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


@contextmanager
def no_local_constants() -> Iterator[None]:
    """Keep hypothesis from drawing the literals of the modules loaded so far, inside the block.

    Hypothesis 6.13x+ sometimes draws a constant found in the source of the "local" modules
    in ``sys.modules`` (ours, the user's connector, whatever the process imported), and
    caches the pool per process. What a seed generates then depends on which modules this
    process happened to load before: a ``-j`` worker started by ``python -m harness`` drew
    other stateful examples than the same seed run in one process, so a replay command
    could not replay. Inside the block the local pool is empty and the pool cache is a
    fresh one; the global constants (hypothesis' own list) are still drawn. Left alone on a
    hypothesis without these internals.
    """
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:  # pragma: no cover - another hypothesis layout
        yield
        return
    saved_pool = getattr(providers, "_get_local_constants", None)
    saved_cache = getattr(providers, "CONSTANTS_CACHE", None)
    if saved_pool is None or saved_cache is None:  # pragma: no cover
        yield
        return
    empty = Constants()
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE = type(saved_cache)(1024)
    try:
        yield
    finally:
        providers._get_local_constants = saved_pool
        providers.CONSTANTS_CACHE = saved_cache
