"""The fan-out behind the live stream: events published from the loader threads reach every
connected client's queue on the HTTP server's event loop.

Each client has a bounded queue (events are shared, so its cost is references). One that falls
that far behind (a stalled browser tab, a slow network) is dropped rather than let grow or slow
the others: its stream ends, EventSource reconnects, and the new stream starts from a fresh
snapshot, so nothing it shows is wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FeedEvent:
    name: str
    data: str
    """JSON, encoded once for every client."""
    seq: int


class Subscription:
    def __init__(self, loop: asyncio.AbstractEventLoop, max_events: int) -> None:
        self.loop = loop
        self._max_events = max_events
        self._batches: asyncio.Queue[Sequence[FeedEvent]] = asyncio.Queue()
        self._queued = 0
        self.lost = False
        """Events were dropped: the stream must end."""
        self.closed = False

    def offer(self, events: Sequence[FeedEvent]) -> None:
        """On the subscriber's loop. The events of one publish stay together (the batch the
        loader read): a fast client takes a burst whole, only one this far behind is dropped."""
        if self.lost:
            return
        if self._queued + len(events) > self._max_events:
            self.lost = True
            self._batches.put_nowait(())  # wakes the reader, which ends the stream
            return
        self._queued += len(events)
        self._batches.put_nowait(events)

    def close(self) -> None:
        """On the subscriber's loop: the stream ends (the service is stopping)."""
        self.closed = True
        self._batches.put_nowait(())

    async def next_events(self) -> Sequence[FeedEvent]:
        """The next published events; empty once lost or closed."""
        events = await self._batches.get()
        self._queued -= len(events)
        return () if self.lost or self.closed else events


class LiveFeed:
    def __init__(self, max_events: int = 20_000) -> None:
        """`max_events`: how far behind (queued, not yet sent) a client may fall."""
        self._max_events = max_events
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self.dropped = 0
        self._closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscription:
        """From a coroutine on the loop that will read the subscription."""
        subscription = Subscription(asyncio.get_running_loop(), self._max_events)
        with self._lock:
            self._subscribers.add(subscription)
            if self._closed:
                subscription.close()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)
        if subscription.lost:
            self.dropped += 1

    def close(self) -> None:
        """End every stream, so the server stops without cutting them off mid-event; a stream
        opened later ends at once."""
        with self._lock:
            self._closed = True
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            with contextlib.suppress(RuntimeError):
                subscription.loop.call_soon_threadsafe(subscription.close)

    def publish(self, events: Sequence[tuple[str, str]]) -> None:
        """(name, JSON data) pairs, from any thread; one hop onto each subscriber's loop."""
        if not events:
            return
        with self._lock:
            subscribers = list(self._subscribers)
            numbered = [FeedEvent(name, data, next(self._seq)) for name, data in events]
        for subscription in subscribers:
            with contextlib.suppress(RuntimeError):  # its loop closed: the server is stopping
                subscription.loop.call_soon_threadsafe(subscription.offer, numbered)
