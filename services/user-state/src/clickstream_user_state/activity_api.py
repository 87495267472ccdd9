"""user-state's activity routes, over the sessions and business days the windowed queries write:

  GET /v1/vips/active                        VIPs on the site now (by the stream's clock), each
                                             with this session's and today's figures
  GET /v1/users/{user_id}/activity?date=D    that user's sessions on business day D
                                             (YYYY-MM-DD, default: today), and the day's totals
Both answer 503 until the users table and the activity topics have caught up.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import date

import msgspec
from clickstream_common.contracts import format_event_time
from clickstream_common.http import Request, Response, Router
from clickstream_common.lookup import Found

from clickstream_user_state.activity import ActivityBoard, Session, UserDay
from clickstream_user_state.store import UserStore

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Epoch milliseconds hold these, in every time zone, with the day after.
_FIRST_DAY, _LAST_DAY = date(1970, 1, 2), date(9999, 12, 30)


class ActiveVip(msgspec.Struct):
    """A VIP on the site now: this session so far, and their business day so far."""

    user_id: str
    name: str | None
    level: str | None
    session_start: str
    last_event_time: str
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


ACTIVITY_SCHEMAS = (ActiveVips, UserActivity)
_encoder = msgspec.json.Encoder()


def _view(session: Session) -> SessionView:
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


def _user_activity(day: UserDay) -> UserActivity:
    return UserActivity(
        day.user_id,
        day.day.isoformat(),
        format_event_time(day.start_ms),
        format_event_time(day.end_ms),
        [_view(s) for s in day.sessions],
        day.ms_on_site / 1000,
        day.clicks,
        day.checkouts,
        day.final,
    )


def build_activity_routes(
    router: Router,
    board: ActivityBoard,
    store: UserStore,
    ready: Callable[[], bool],
    wall_clock: Callable[[], float] = time.time,
) -> None:
    def not_ready() -> Response:
        return Response.error(
            503, "bootstrapping: the users table or the activity topics have not caught up yet"
        )

    def now_ms() -> int:
        stream = board.now_ms()
        return stream if stream is not None else int(wall_clock() * 1000)

    def active(_: Request) -> Response:
        if not ready():
            return not_ready()
        now = now_ms()
        today = board.business_day(now)
        vips = []
        for session in board.on_site(now):
            found = store.latest(session.user_id)
            user = found.user if found.found is Found.FOUND else None
            day = board.user_day(session.user_id, today)
            vips.append(
                ActiveVip(
                    session.user_id,
                    user.name if user else None,
                    user.level if user else None,
                    format_event_time(session.start_ms),
                    format_event_time(session.last_ms),
                    (session.last_ms - session.start_ms) / 1000,
                    session.clicks,
                    session.carts,
                    session.checkouts,
                    len(day.sessions) if day else 1,
                    day.ms_on_site / 1000 if day else 0.0,
                    day.clicks if day else session.clicks,
                    day.checkouts if day else session.checkouts,
                )
            )
        answer = ActiveVips(format_event_time(now), today.isoformat(), len(vips), vips)
        return Response(200, _encoder.encode(answer))

    def user_activity(request: Request) -> Response:
        if not ready():
            return not_ready()
        user_id = request.path_params["user_id"]
        dates = request.query.get("date")
        if dates is None:
            day = board.business_day(now_ms())
        else:
            text = dates[0].strip()
            try:
                if _DATE.fullmatch(text) is None:
                    raise ValueError(text)
                day = date.fromisoformat(text)
            except ValueError:
                return Response.error(400, "date must be a calendar date, YYYY-MM-DD")
            if not _FIRST_DAY <= day <= _LAST_DAY:
                return Response.error(400, f"date must be from {_FIRST_DAY} to {_LAST_DAY}")
        found = board.user_day(user_id, day)
        if found is None:
            user = store.latest(user_id)
            if user.found is not Found.FOUND:
                return Response.error(404, f"user {user.found.value}")
            start, end = board.day_bounds(day)
            found = UserDay(user_id, day, start, end, [], 0, 0, 0, False)
        return Response(200, _encoder.encode(_user_activity(found)))

    router.add("GET", "/v1/vips/active", active)
    router.add("GET", "/v1/users/{user_id}/activity", user_activity)
