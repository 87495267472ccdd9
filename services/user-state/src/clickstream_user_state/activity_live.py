"""VIP activity as it happens: the board's changes and the VipActions, as the events of
`GET /v1/vips/stream`, and a sample of how many VIPs are on the site every few seconds.

A stream starts with a `snapshot` (who is on the site, the latest actions, the on-site counts
of the last hour), then carries `session` (a session opened, updated, closed or retracted, with
the VIP's figures as `/v1/vips/active` shows them), `action` (a VipAction) and `count` (VIPs on
the site now, every few seconds) events.
The page applies each event as a replacement keyed by (user_id, session_start), so an event that
the snapshot already reflects does no harm: a client subscribes first, then takes the snapshot.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable

import msgspec
from clickstream_common.contracts import format_event_time
from clickstream_common.http import Event
from clickstream_common.lifecycle import Shutdown

from clickstream_user_state.activity_rows import ActionRow, DayChange, SessionChange
from clickstream_user_state.activity_views import ActiveVips, Views
from clickstream_user_state.live_feed import LiveFeed

HISTORY_MS = 3_600_000
HISTORY_POINTS = 61
RECENT_ACTIONS = 50
# EventSource waits this long before reconnecting after a stream ends (a restart, a drop).
RETRY_MS = 1000
READY_POLL_SECONDS = 0.2


class Sample(msgspec.Struct):
    """How many VIPs were on the site at `time`, by the stream's clock."""

    time: str
    count: int


class Snapshot(msgspec.Struct):
    """The first event of every stream."""

    active: ActiveVips
    actions: list[ActionRow]
    """The latest VipActions, oldest first."""
    history: list[Sample]
    """On-site counts over the last hour of the stream's clock, a minute apart, oldest first
    (derived from the sessions held, so a restart keeps them)."""


_encoder = msgspec.json.Encoder()


class LiveActivity:
    def __init__(
        self,
        views: Views,
        feed: LiveFeed,
        sample_seconds: float = 10.0,
    ) -> None:
        self._views = views
        self._feed = feed
        self._sample_seconds = sample_seconds
        # Read partition by partition: kept wider than shown, then the latest by time.
        self._actions: deque[ActionRow] = deque(maxlen=4 * RECENT_ACTIONS)
        self._lock = threading.Lock()  # the actions: a loader thread appends, the loop reads
        self._ready: Callable[[], bool] = lambda: True

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

    def sample_when(self, ready: Callable[[], bool]) -> None:
        """Sample only once the tables have caught up (a half-read board counts too few)."""
        self._ready = ready

    def sample(self) -> Sample | None:
        if not self._ready():
            return None
        now = self._views.now_ms()
        taken = Sample(format_event_time(now), len(self._views.board.on_site(now)))
        self._feed.publish([("count", _json(taken))])
        return taken

    def history(self) -> list[Sample]:
        now = self._views.now_ms()
        points = self._views.board.on_site_history(now, HISTORY_MS, HISTORY_POINTS)
        return [Sample(format_event_time(t), count) for t, count in points]

    def run(self, shutdown: Shutdown) -> None:
        """Samples until shutdown (the service runs it on a thread of its own), then ends the
        streams."""
        while not shutdown.wait(self._sample_seconds):
            self.sample()
        self._feed.close()

    # -- the stream -------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        active, history = self._views.active(), self.history()
        with self._lock:
            actions = sorted(self._actions, key=lambda row: row.event_time)[-RECENT_ACTIONS:]
        return Snapshot(active, actions, history)

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
