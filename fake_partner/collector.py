"""The garbage collector during a load: its young generation collected rarely (and what
exists frozen out of its scans), until the outermost load of any thread ends.

A load (the simulator's initial load of users, or one upload of 10,000 operations to the
partner) allocates millions of short-lived, acyclic objects: with the default thresholds
``(700, 10, 10)`` the collector runs every 700 of them and, now and then, scans every
survivor, the partner's million members included (half of the served partner's ingest
at 1M members in ``python -m bench``, a sixth with these thresholds). The harness's loads
and the partner's requests share this one state, so a request handled inside a load
(in-process) changes nothing.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["LOAD_GC_THRESHOLDS", "load_gc"]

LOAD_GC_THRESHOLDS = (10_000, 20, 100)
"""Collector thresholds during a load (default ``(700, 10, 10)``). Not higher: an
``httpx.Response`` sits in reference cycles, so an answer body read through httpx lives
until a young collection frees it, and a connector answering 50 MB bodies would pile them
up (10,000: 20 collections instead of 390 in a 10k-user load, GC 3-4% instead of 9-14%)."""

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] = (700, 10, 10)
_frozen = False


@contextmanager
def load_gc(*, freeze: bool = True) -> Iterator[None]:
    """During a load: collect the young generation rarely and, with ``freeze``, freeze
    what exists out of the collector's scans; restored when the outermost load of any
    thread ends (a load inside another changes nothing). Cyclic garbage is still
    collected, just less often.

    The partner's requests do not freeze: frozen once per request, the young garbage of
    the requests between (in reference cycles) was promoted to the oldest generation at
    each thaw, and the served partner's ingest at 1M members peaked 130 MiB higher
    (``python -m bench --only ingest``: 475 MiB against 344 MiB, thresholds alone 345 MiB).
    """
    global _depth, _saved, _frozen
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            if freeze:
                gc.freeze()
            _frozen = freeze
            gc.set_threshold(*LOAD_GC_THRESHOLDS)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
                if _frozen:
                    gc.unfreeze()
                _frozen = False
