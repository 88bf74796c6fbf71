"""The instance context every connector method receives, and its per-feed cache."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from contracts.gateway import AudienceSegmentExternalFeed, PropertyModel, StringProperty

__all__ = ["BaseInstanceContext", "ContextCache", "PropertiesWrapper"]

Clock = Callable[[], float]


class PropertiesWrapper:
    """A feed's properties by technical name (the SDK's ``PropertiesWrapper``)."""

    __slots__ = ("_by_name", "values")

    def __init__(self, values: Sequence[PropertyModel]) -> None:
        self.values: tuple[PropertyModel, ...] = tuple(values)
        self._by_name = {prop.technical_name: prop for prop in self.values}

    def get(self, technical_name: str) -> PropertyModel | None:
        """The property named ``technical_name``, or None."""
        return self._by_name.get(technical_name)

    def find_string_property(self, technical_name: str) -> str | None:
        """The value of the ``STRING`` property ``technical_name``; None if absent or not STRING."""
        prop = self._by_name.get(technical_name)
        if isinstance(prop, StringProperty):
            return prop.value.value
        return None

    def __contains__(self, technical_name: object) -> bool:
        return technical_name in self._by_name

    def __iter__(self) -> Iterator[PropertyModel]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class BaseInstanceContext:
    """What the SDK's default ``instanceContextBuilder`` gives: the feed and its properties."""

    feed: AudienceSegmentExternalFeed
    feed_properties: PropertiesWrapper


CtxT = TypeVar("CtxT")


@dataclass
class _Entry(Generic[CtxT]):
    expires_at: float
    task: asyncio.Future[CtxT]


class ContextCache(Generic[CtxT]):
    """Instance contexts per feed, kept ``ttl * (1 + jitter * U[0,1))`` seconds on ``clock``.

    Concurrent requests for one feed share one build; a failed build is not kept.
    """

    def __init__(
        self,
        build: Callable[[str], Awaitable[CtxT]],
        *,
        clock: Clock,
        ttl: float = 600.0,
        jitter: float = 0.1,
        rng: random.Random | None = None,
    ) -> None:
        self._build = build
        self._clock = clock
        self.ttl = ttl
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._entries: dict[str, _Entry[CtxT]] = {}

    def __contains__(self, feed_id: object) -> bool:
        return feed_id in self._entries

    def clear(self) -> None:
        """Forget every context (the next request of each feed rebuilds)."""
        self._entries.clear()

    def discard(self, feed_id: str) -> None:
        """Forget one feed's context."""
        self._entries.pop(feed_id, None)

    async def get(self, feed_id: str, *, force_refresh: bool = False) -> CtxT:
        """The feed's context, built when absent, expired or ``force_refresh``."""
        now = self._clock()
        entry = self._entries.get(feed_id)
        if entry is not None and not force_refresh and entry.expires_at > now:
            task = entry.task
            if task.done():
                if not task.cancelled() and task.exception() is None:
                    return task.result()
            elif task.get_loop() is asyncio.get_running_loop():
                return await self._await(feed_id, entry)
        expires_at = now + self.ttl * (1.0 + self.jitter * self._rng.random())
        entry = _Entry(expires_at, asyncio.ensure_future(self._build(feed_id)))
        self._entries[feed_id] = entry
        return await self._await(feed_id, entry)

    async def _await(self, feed_id: str, entry: _Entry[CtxT]) -> CtxT:
        try:
            return await asyncio.shield(entry.task)
        except BaseException:
            if entry.task.done() and self._entries.get(feed_id) is entry:
                del self._entries[feed_id]
            raise
