"""VIP activity: the sessions and business days the windowed queries write, kept per user for the
activity views (who is on the site now; a user's day).

"Now" is the stream's clock, not the host's: the latest click time any session row carries, moved
on by the wall time since it was seen. A demo compressing a day into minutes
(GENERATOR_TIME_SCALE) then still shows who is on the site in its own time, and a live stream's
clock is the wall clock give or take the pipeline's delay.

A VIP is on the site while their session is open (not final) and their last click is less than
the session gap before now; the gap is each row's own (`window_end - last_event_time`, as Flink
ends a session). A session belongs to the business day it started in (BUSINESS_TIMEZONE, as the
per-day query aligns its windows). Rows older than the retention (by the stream's clock) are
dropped, so the board holds a bounded number of days.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from clickstream_user_state.activity_rows import DayChange, SessionChange

Session = SessionChange
Day = DayChange


@dataclass(frozen=True)
class UserDay:
    """A user's business day: its sessions (by start) and totals."""

    user_id: str
    day: date
    start_ms: int
    end_ms: int
    sessions: list[Session]
    clicks: int
    checkouts: int | None
    ms_on_site: int
    final: bool
    """The per-day query closed this day: its figures will not change."""


SessionKind = Literal["opened", "updated", "closed", "retracted"]


@dataclass(frozen=True)
class SessionEvent:
    """What a session row changed: a session `opened` (first row), `updated`, `closed` (its
    final row) or `retracted` (merged into another, or its start moved)."""

    kind: SessionKind
    session: Session


class ActivityBoard:
    def __init__(
        self,
        zone: ZoneInfo,
        retention_ms: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._zone = zone
        self._retention_ms = retention_ms
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, dict[int, Session]] = {}
        self._open: dict[tuple[str, int], Session] = {}
        self._days: dict[str, dict[int, Day]] = {}
        self._latest_ms: int | None = None
        self._latest_at = 0.0

    # -- changes ------------------------------------------------------------------------------

    def apply_sessions(self, changes: Iterable[SessionChange]) -> list[SessionEvent]:
        with self._lock:
            events = [self._apply_session(change) for change in changes]
            self._evict()
        return events

    def apply_days(self, changes: Iterable[DayChange]) -> None:
        with self._lock:
            for change in changes:
                days = self._days.setdefault(change.user_id, {})
                if change.retract:
                    days.pop(change.start_ms, None)
                else:
                    days[change.start_ms] = change

    def _apply_session(self, change: SessionChange) -> SessionEvent:
        key = (change.user_id, change.start_ms)
        sessions = self._sessions.setdefault(change.user_id, {})
        if change.retract:
            sessions.pop(change.start_ms, None)
            self._open.pop(key, None)
            return SessionEvent("retracted", change)
        kind: SessionKind = "updated" if change.start_ms in sessions else "opened"
        sessions[change.start_ms] = change
        if change.final:
            self._open.pop(key, None)
            kind = "closed"
        else:
            self._open[key] = change
        if self._latest_ms is None or change.last_ms > self._latest_ms:
            self._latest_ms = change.last_ms
            self._latest_at = self._clock()
        return SessionEvent(kind, change)

    def _evict(self) -> None:
        now = self._now()
        if now is None:
            return
        horizon = now - self._retention_ms
        for table in (self._sessions, self._days):
            for user_id in list(table):
                rows = table[user_id]
                for start in [s for s, row in rows.items() if row.end_ms < horizon]:
                    del rows[start]
                    self._open.pop((user_id, start), None)
                if not rows:
                    del table[user_id]

    # -- views --------------------------------------------------------------------------------

    def now_ms(self) -> int | None:
        """The stream's clock; None before any session row."""
        with self._lock:
            return self._now()

    def _now(self) -> int | None:
        if self._latest_ms is None:
            return None
        return self._latest_ms + int((self._clock() - self._latest_at) * 1000)

    def on_site(self, now_ms: int) -> list[Session]:
        """Open sessions whose last click is within their gap of `now_ms`, longest first."""
        with self._lock:
            found = [s for s in self._open.values() if now_ms - s.last_ms < s.end_ms - s.last_ms]
        return sorted(found, key=lambda s: (s.start_ms, s.user_id))

    def on_site_history(self, now_ms: int, span_ms: int, points: int) -> list[tuple[int, int]]:
        """How many were on the site at `points` times evenly up to `now_ms` over `span_ms`:
        derived from the sessions held (from first click to last click plus gap), so it
        survives a restart and every replica draws the same."""
        since = now_ms - span_ms
        with self._lock:
            spans = [
                (row.start_ms, row.end_ms)
                for rows in self._sessions.values()
                for row in rows.values()
                if row.end_ms > since and row.start_ms <= now_ms
            ]
        step = span_ms / max(1, points - 1)
        times = [int(since + i * step) for i in range(points)]
        return [(t, sum(1 for start, end in spans if start <= t < end)) for t in times]

    def day_bounds(self, day: date) -> tuple[int, int]:
        """The business day's [start, end) in epoch milliseconds (23 or 25 hours across a
        daylight-saving change)."""
        start = datetime(day.year, day.month, day.day, tzinfo=self._zone)
        end = datetime.combine(day + timedelta(days=1), start.timetz())
        return int(start.timestamp() * 1000), int(end.timestamp() * 1000)

    def business_day(self, epoch_ms: int) -> date:
        return datetime.fromtimestamp(epoch_ms / 1000, tz=self._zone).date()

    def user_day(self, user_id: str, day: date) -> UserDay | None:
        """None when the user has no session that day."""
        start, end = self.day_bounds(day)
        with self._lock:
            sessions = sorted(
                (s for s in self._sessions.get(user_id, {}).values() if start <= s.start_ms < end),
                key=lambda s: s.start_ms,
            )
            day_row = self._days.get(user_id, {}).get(start)
        if not sessions and day_row is None:
            return None
        if day_row is not None:
            clicks, checkouts, final = day_row.clicks, day_row.checkouts, day_row.final
        else:
            clicks = sum(s.clicks for s in sessions)
            counted = [s.checkouts for s in sessions if s.checkouts is not None]
            checkouts = sum(counted) if len(counted) == len(sessions) else None
            final = False
        on_site = sum(s.last_ms - s.start_ms for s in sessions)
        return UserDay(user_id, day, start, end, sessions, clicks, checkouts, on_site, final)

    @property
    def open_sessions(self) -> int:
        return len(self._open)

    @property
    def sessions(self) -> int:
        return sum(len(rows) for rows in self._sessions.values())
