"""user-state's activity board: session and day rows as the windowed queries write them, who is
on the site by the stream's clock, a user's business day, retention, and refused rows."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from clickstream_common.contracts import BadRecord, User, format_event_time, parse_event_time
from clickstream_common.http import HttpServer, Router
from clickstream_common.records import Record
from clickstream_user_state.activity import ActivityBoard
from clickstream_user_state.activity_api import build_activity_routes
from clickstream_user_state.activity_rows import decode_day, decode_session
from clickstream_user_state.activity_views import Views
from clickstream_user_state.store import UserStore

MINUTE = 60_000
GAP = 30 * MINUTE
T0 = parse_event_time("2026-12-03T10:00:00.000Z")


Routes = Callable[..., tuple[HttpServer, ActivityBoard, UserStore]]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(value: object) -> Record:
    body = json.dumps(value).encode() if not isinstance(value, bytes) else value
    return Record("vip-session", 0, 0, b"u", body, 0)


def session(
    user: str,
    start_min: float,
    last_min: float,
    clicks: int,
    *,
    final: bool = False,
    retract: bool = False,
    checkouts: int = 0,
    carts: int = 0,
) -> Record:
    start, last = T0 + int(start_min * MINUTE), T0 + int(last_min * MINUTE)
    return record(
        {
            "user_id": user,
            "name": user.title(),
            "session_start": format_event_time(start),
            "clicks": None if retract else clicks,
            "checkouts": None if retract else checkouts,
            "carts": None if retract else carts,
            "window_start": format_event_time(start),
            "window_end": format_event_time(last + GAP),
            "last_event_time": None if retract else format_event_time(last),
            "final": final,
            "retract": retract,
        }
    )


def board(zone: str = "UTC", retention_days: int = 2) -> tuple[ActivityBoard, Clock]:
    clock = Clock()
    return ActivityBoard(ZoneInfo(zone), retention_days * 24 * 60 * MINUTE, clock), clock


def test_who_is_on_the_site_follows_updates_finals_and_retractions() -> None:
    activity, _ = board()
    activity.apply_sessions(
        decode_session(r)
        for r in [
            session("a", 0, 10, 3),
            session("b", 5, 12, 2, carts=1),
            session("c", 0, 1, 1),
            session("c", 0, 1, 1, final=True),  # closed
            session("d", 20, 20, 1),
            session("d", 20, 0, 0, retract=True),  # merged away
        ]
    )
    now = activity.now_ms()
    assert now == T0 + 20 * MINUTE  # d's click: retracted (merged), but the stream saw it
    assert [(s.user_id, s.clicks) for s in activity.on_site(now)] == [("a", 3), ("b", 2)]
    # a's last click was 10:10: a gap later, a is no longer on the site, b still is.
    assert [s.user_id for s in activity.on_site(T0 + 40 * MINUTE)] == ["b"]


def test_the_stream_clock_moves_on_with_the_wall_clock() -> None:
    activity, clock = board()
    assert activity.now_ms() is None
    activity.apply_sessions([decode_session(session("a", 0, 10, 3))])
    clock.now += 90
    assert activity.now_ms() == T0 + 10 * MINUTE + 90_000


def test_a_users_day_totals_its_sessions_or_takes_the_day_row() -> None:
    activity, _ = board()
    activity.apply_sessions(
        decode_session(r)
        for r in [
            session("a", 0, 10, 3, final=True, checkouts=1),
            session("a", 120, 150, 5, checkouts=0),
            session("a", -24 * 60, -24 * 60 + 5, 9, final=True),  # the day before
        ]
    )
    day = activity.user_day("a", date(2026, 12, 3))
    assert day is not None
    assert [s.clicks for s in day.sessions] == [3, 5]
    assert (day.clicks, day.checkouts, day.ms_on_site, day.final) == (8, 1, 40 * MINUTE, False)
    assert activity.user_day("a", date(2026, 12, 1)) is None
    assert activity.user_day("nobody", date(2026, 12, 3)) is None

    start, end = activity.day_bounds(date(2026, 12, 3))
    day_row = {
        "user_id": "a",
        "day_start": format_event_time(start),
        "clicks": 8,
        "checkouts": 1,
        "window_start": format_event_time(start),
        "window_end": format_event_time(end),
        "last_event_time": format_event_time(T0 + 150 * MINUTE),
        "final": True,
        "retract": False,
    }
    activity.apply_days([decode_day(record(day_row))])
    day = activity.user_day("a", date(2026, 12, 3))
    assert day is not None and day.final


def test_business_days_follow_the_time_zone_across_daylight_saving() -> None:
    activity, _ = board("Europe/Berlin")
    start, end = activity.day_bounds(date(2026, 3, 29))  # clocks go forward: 23 hours
    assert format_event_time(start) == "2026-03-28T23:00:00.000Z"
    assert end - start == 23 * 60 * MINUTE
    assert activity.business_day(parse_event_time("2026-12-03T23:30:00.000Z")) == date(2026, 12, 4)


def test_rows_past_the_retention_are_dropped() -> None:
    activity, _ = board(retention_days=1)
    activity.apply_sessions([decode_session(session("old", 0, 5, 1, final=True))])
    activity.apply_sessions([decode_session(session("new", 3 * 24 * 60, 3 * 24 * 60, 1))])
    assert activity.sessions == 1
    assert activity.user_day("old", date(2026, 12, 3)) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{", "not JSON"),
        ({"user_id": "a"}, "not a window row"),
        (
            {"user_id": "a", "window_start": "yesterday", "window_end": "today"},
            "ISO-8601",
        ),
        (
            {
                "user_id": "a",
                "window_start": "2026-12-03T10:00:00Z",
                "window_end": "2026-12-03T10:30:00Z",
                "last_event_time": "2026-12-03T10:00:00Z",
            },
            "missing clicks",
        ),
        (
            {
                "user_id": "a",
                "window_start": "2026-12-03T10:00:00Z",
                "window_end": "2026-12-03T09:00:00Z",
            },
            "window_end must be after window_start",
        ),
    ],
)
def test_a_malformed_row_is_refused_with_the_reason(value: object, reason: str) -> None:
    with pytest.raises(BadRecord, match=reason):
        decode_session(record(value))


@pytest.fixture
def routes() -> Iterator[Callable[..., tuple[HttpServer, ActivityBoard, UserStore]]]:
    """`routes(ready=True)`: the activity routes served on a free port."""
    servers: list[HttpServer] = []

    def serve(ready: bool = True) -> tuple[HttpServer, ActivityBoard, UserStore]:
        activity, _ = board()
        store = UserStore()
        store.apply("a", User("a", "Ann", "PLATINUM"), 0)
        router = Router()
        views = Views(activity, store, wall_clock=lambda: T0 / 1000)
        build_activity_routes(router, views, lambda: ready)
        server = HttpServer(router, "127.0.0.1", 0)
        server.start()
        servers.append(server)
        return server, activity, store

    yield serve
    for server in servers:
        server.stop()


def get(server: HttpServer, target: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{target}") as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_active_vips_carry_this_session_and_today(routes: Routes) -> None:
    server, activity, _ = routes()
    status, body = get(server, "/v1/vips/active")
    assert (status, body["count"], body["now"]) == (200, 0, "2026-12-03T10:00:00.000Z")
    activity.apply_sessions(
        decode_session(r)
        for r in [
            session("a", 0, 10, 3, final=True, checkouts=1),
            session("a", 60, 75, 4, carts=2),
            session("ghost", 70, 74, 1),
        ]
    )
    status, body = get(server, "/v1/vips/active")
    assert status == 200
    assert (body["now"], body["date"], body["count"]) == (
        "2026-12-03T11:15:00.000Z",
        "2026-12-03",
        2,
    )
    ann, ghost = body["vips"]  # type: ignore[misc]
    assert ann == {
        "user_id": "a",
        "name": "Ann",
        "level": "PLATINUM",
        "session_start": "2026-12-03T11:00:00.000Z",
        "last_event_time": "2026-12-03T11:15:00.000Z",
        "session_end": "2026-12-03T11:45:00.000Z",
        "seconds_on_site": 900.0,
        "clicks": 4,
        "carts": 2,
        "checkouts": 0,
        "today_sessions": 2,
        "today_seconds_on_site": 1500.0,
        "today_clicks": 7,
        "today_checkouts": 1,
    }
    assert (ghost["user_id"], ghost["name"], ghost["level"]) == ("ghost", None, None)


def test_a_users_activity_by_date(routes: Routes) -> None:
    server, activity, _ = routes()
    activity.apply_sessions([decode_session(session("a", 0, 10, 3, final=True, checkouts=1))])
    status, body = get(server, "/v1/users/a/activity?date=2026-12-03")
    assert status == 200
    assert (body["clicks"], body["checkouts"], body["seconds_on_site"]) == (3, 1, 600.0)
    assert body["day_start"] == "2026-12-03T00:00:00.000Z"
    assert [s["final"] for s in body["sessions"]] == [True]  # type: ignore[attr-defined]
    assert get(server, "/v1/users/a/activity")[1]["date"] == "2026-12-03"
    empty = get(server, "/v1/users/a/activity?date=2026-12-01")
    assert empty == (200, {**empty[1], "sessions": [], "clicks": 0})


@pytest.mark.parametrize(
    ("target", "status", "error"),
    [
        ("/v1/users/nobody/activity", 404, "user unknown"),
        ("/v1/users/a/activity?date=2026-13-01", 400, "date must be a calendar date"),
        ("/v1/users/a/activity?date=yesterday", 400, "date must be a calendar date"),
        ("/v1/users/a/activity?date=%EF%BC%92026-12-01", 400, "date must be a calendar date"),
        ("/v1/users/a/activity?date=0001-01-01", 400, "date must be from 1970-01-02"),
        ("/v1/users/a/activity?date=9999-12-31", 400, "date must be from 1970-01-02"),
    ],
)
def test_bad_activity_requests(routes: Routes, target: str, status: int, error: str) -> None:
    server, _, _ = routes()
    got, body = get(server, target)
    assert got == status
    assert str(body["error"]).startswith(error)


def test_activity_answers_503_until_caught_up(routes: Routes) -> None:
    server, _, _ = routes(ready=False)
    assert get(server, "/v1/vips/active")[0] == 503
    assert get(server, "/v1/users/a/activity")[0] == 503


def test_the_on_site_history_is_derived_from_the_sessions() -> None:
    activity, _ = board()
    activity.apply_sessions(
        decode_session(r)
        for r in [
            session("a", 0, 10, 3, final=True),  # on the site from 0 to 40
            session("b", 20, 25, 2),  # 20 to 55
            session("c", 50, 50, 1, retract=True),  # forgotten
        ]
    )
    history = activity.on_site_history(T0 + 60 * MINUTE, 60 * MINUTE, 7)
    assert history == [
        (T0 + m * MINUTE, n) for m, n in zip(range(0, 61, 10), [1, 1, 2, 2, 1, 1, 0], strict=True)
    ]
