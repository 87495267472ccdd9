"""What the activity routes and the live stream answer with: msgspec Structs (the OpenAPI
document's schemas are generated from them) and their builders over the board and the users
table, shared so the page's stream and `/v1/vips/active` can never disagree."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

import msgspec
from clickstream_common.contracts import format_event_time
from clickstream_common.lookup import Found

from clickstream_user_state.activity import ActivityBoard, Session, SessionKind, UserDay
from clickstream_user_state.store import UserStore


class ActiveVip(msgspec.Struct):
    """A VIP on the site now: this session so far, and their business day so far."""

    user_id: str
    name: str | None
    level: str | None
    session_start: str
    last_event_time: str
    session_end: str
    """The last click plus the session gap: on the site until then, unless they click again."""
    seconds_on_site: float
    """From the session's first click to its last, so far."""
    clicks: int
    carts: int | None
    checkouts: int | None
    today_sessions: int
    today_seconds_on_site: float
    today_clicks: int
    today_checkouts: int | None


class ActiveVips(msgspec.Struct):
    now: str
    """The stream's clock: the latest click time seen, moved on by the wall time since."""
    date: str
    """Today, the business day of `now` (BUSINESS_TIMEZONE)."""
    count: int
    vips: list[ActiveVip]


class SessionView(msgspec.Struct):
    session_start: str
    session_end: str
    """The last click plus the session gap, as Flink ends a session."""
    last_event_time: str
    seconds_on_site: float
    clicks: int
    carts: int | None
    checkouts: int | None
    final: bool
    """Closed: no click will join this session any more."""


class UserActivity(msgspec.Struct):
    user_id: str
    date: str
    day_start: str
    day_end: str
    sessions: list[SessionView]
    seconds_on_site: float
    clicks: int
    checkouts: int | None
    final: bool
    """The per-day query closed the day: these figures will not change."""


class SessionChanged(msgspec.Struct):
    """The stream's `session` event: a VIP's session as it now stands."""

    kind: SessionKind
    vip: ActiveVip


class Views:
    """The views of one board and users table, by the board's stream clock."""

    def __init__(
        self,
        board: ActivityBoard,
        store: UserStore,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.board = board
        self._store = store
        self._wall_clock = wall_clock

    def now_ms(self) -> int:
        """The stream's clock; the wall clock before any session row."""
        stream = self.board.now_ms()
        return stream if stream is not None else int(self._wall_clock() * 1000)

    def user(self, user_id: str) -> Found:
        return self._store.latest(user_id).found

    def active_vip(self, session: Session, today: date) -> ActiveVip:
        found = self._store.latest(session.user_id)
        user = found.user if found.found is Found.FOUND else None
        day = self.board.user_day(session.user_id, today)
        return ActiveVip(
            session.user_id,
            user.name if user else None,
            user.level if user else None,
            format_event_time(session.start_ms),
            format_event_time(session.last_ms),
            format_event_time(session.end_ms),
            (session.last_ms - session.start_ms) / 1000,
            session.clicks,
            session.carts,
            session.checkouts,
            len(day.sessions) if day else 1,
            day.ms_on_site / 1000 if day else 0.0,
            day.clicks if day else session.clicks,
            day.checkouts if day else session.checkouts,
        )

    def active(self) -> ActiveVips:
        now = self.now_ms()
        today = self.board.business_day(now)
        vips = [self.active_vip(s, today) for s in self.board.on_site(now)]
        return ActiveVips(format_event_time(now), today.isoformat(), len(vips), vips)

    def session_changed(self, kind: SessionKind, session: Session) -> SessionChanged:
        today = self.board.business_day(self.now_ms())
        return SessionChanged(kind, self.active_vip(session, today))

    def user_day(self, user_id: str, day: date) -> UserActivity | None:
        """None when the user has no session that day."""
        found = self.board.user_day(user_id, day)
        return None if found is None else user_activity(found)

    def empty_day(self, user_id: str, day: date) -> UserActivity:
        start, end = self.board.day_bounds(day)
        return user_activity(UserDay(user_id, day, start, end, [], 0, 0, 0, False))


def _session_view(session: Session) -> SessionView:
    return SessionView(
        format_event_time(session.start_ms),
        format_event_time(session.end_ms),
        format_event_time(session.last_ms),
        (session.last_ms - session.start_ms) / 1000,
        session.clicks,
        session.carts,
        session.checkouts,
        session.final,
    )


def user_activity(day: UserDay) -> UserActivity:
    return UserActivity(
        day.user_id,
        day.day.isoformat(),
        format_event_time(day.start_ms),
        format_event_time(day.end_ms),
        [_session_view(s) for s in day.sessions],
        day.ms_on_site / 1000,
        day.clicks,
        day.checkouts,
        day.final,
    )
