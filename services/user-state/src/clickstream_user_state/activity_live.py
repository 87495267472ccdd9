"""VIP activity as it happens: the board's changes and the VipActions, as the events of
`GET /v1/vips/stream`, and a sample of how many VIPs are on the site every few seconds.

A stream starts with a `snapshot` (who is on the site, the latest actions, the last hour's
samples), then carries `session` (a session opened, updated, closed or retracted, with the VIP's
figures as `/v1/vips/active` shows them), `action` (a VipAction) and `count` (a sample) events.
The page applies each event as a replacement keyed by (user_id, session_start), so an event that
the snapshot already reflects does no harm: a client subscribes first, then takes the snapshot.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

import msgspec
from clickstream_common.contracts import format_event_time
from clickstream_common.http import Event
from clickstream_common.lifecycle import Shutdown

from clickstream_user_state.activity_rows import ActionRow, DayChange, SessionChange
from clickstream_user_state.activity_views import ActiveVips, Views
from clickstream_user_state.live_feed import LiveFeed

HISTORY_SECONDS = 3600
RECENT_ACTIONS = 50
# EventSource waits this long before reconnecting after a stream ends (a restart, a drop).
RETRY_MS = 1000
READY_POLL_SECONDS = 0.2


class Sample(msgspec.Struct):
    """How many VIPs were on the site (by the stream's clock `now`) at wall time `time`."""

    time: str
    now: str
    count: int


class Snapshot(msgspec.Struct):
    """The first event of every stream."""

    active: ActiveVips
    actions: list[ActionRow]
    """The latest VipActions, oldest first."""
    history: list[Sample]
    """On-site counts over the last hour, oldest first."""


_encoder = msgspec.json.Encoder()


class LiveActivity:
    def __init__(
        self,
        views: Views,
        feed: LiveFeed,
        sample_seconds: float = 10.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._views = views
        self._feed = feed
        self._sample_seconds = sample_seconds
        self._wall_clock = wall_clock
        self._actions: deque[ActionRow] = deque(maxlen=RECENT_ACTIONS)
        self._history: deque[Sample] = deque(maxlen=int(HISTORY_SECONDS / sample_seconds))
        self._lock = threading.Lock()  # the deques: loader threads append, the loop reads

    # -- what the loaders apply -------------------------------------------------------------

    def apply_sessions(self, changes: list[SessionChange]) -> None:
        events = self._views.board.apply_sessions(changes)
        if self._feed.subscribers:  # not during the restore, when nobody is listening
            self._feed.publish(
                [("session", _json(self._views.session_changed(e.kind, e.session))) for e in events]
            )

    def apply_days(self, changes: list[DayChange]) -> None:
        self._views.board.apply_days(changes)

    def apply_actions(self, rows: list[ActionRow]) -> None:
        with self._lock:
            self._actions.extend(rows)
        if self._feed.subscribers:
            self._feed.publish([("action", _json(row)) for row in rows])

    # -- the sampler ------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return True

    @property
    def clients(self) -> int:
        return self._feed.subscribers

    @property
    def dropped(self) -> int:
        return self._feed.dropped

    def sample(self) -> Sample:
        now = self._views.now_ms()
        count = len(self._views.board.on_site(now))
        taken = Sample(
            format_event_time(int(self._wall_clock() * 1000)), format_event_time(now), count
        )
        with self._lock:
            self._history.append(taken)
        self._feed.publish([("count", _json(taken))])
        return taken

    def run(self, shutdown: Shutdown) -> None:
        """Samples until shutdown (the service runs it on a thread of its own), then ends the
        streams."""
        while not shutdown.wait(self._sample_seconds):
            self.sample()
        self._feed.close()

    # -- the stream -------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        active = self._views.active()
        with self._lock:
            return Snapshot(active, list(self._actions), list(self._history))

    async def stream(self, ready: Callable[[], bool]) -> AsyncIterator[Event]:
        """Opens at once (EventSource gives up on an error status, so a restarted user-state
        must not answer 503 here) and sends the snapshot once `ready`."""
        while not ready():
            await asyncio.sleep(READY_POLL_SECONDS)
        subscription = self._feed.subscribe()
        try:
            yield Event(_json(self.snapshot()), event="snapshot", retry=RETRY_MS)
            while events := await subscription.next_events():
                for event in events:
                    yield Event(event.data, event=event.name, id=str(event.seq))
        finally:
            self._feed.unsubscribe(subscription)


def _json(value: object) -> str:
    return _encoder.encode(value).decode()
