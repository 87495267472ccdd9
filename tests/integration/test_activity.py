"""user-state's activity routes over real windowed queries (queries/vip-sessions.sql's form and
queries/vip-days.sql, exactly once) reading the same VipActions, compared with DuckDB's
sessionization of those actions: who is on the site at the answer's `now`, with today's figures;
then, once every window is closed, each user's day, session by session."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from clickstream_common.contracts import parse_event_time
from confluent_kafka import Producer

from tests.support.eventually import eventually
from tests.support.oracle import read_topic
from tests.support.pipeline import Names, Pipeline
from tests.support.services import Service
from tests.support.sessions import (
    DAY,
    SESSIONS_SQL,
    Action,
    Session,
    expected_sessions,
    user_record,
    vip_actions,
)

START_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z: visits run past midnight UTC
PARTITIONS = 4
UNKNOWN = {"vip-000", "vip-001"}  # VipActions of users user-state has never seen
MALFORMED = b'{"user_id": "vip-003", "window_start": "yesterday", "window_end": "today"}'


def _get(service: Service, path: str) -> Any:
    with urllib.request.urlopen(service.url + path, timeout=10) as response:
        return json.loads(response.read())


def _caught_up(user_state: Service, kind: str, topic: str, bootstrap: str) -> Callable[[], bool]:
    def check() -> bool:
        rows = len(read_topic(bootstrap, topic))
        taken = user_state.metric(f"user_state_{kind}_rows_applied_total") + user_state.metric(
            f"user_state_{kind}_rows_dead_lettered_total"
        )
        return taken >= rows > 1

    return check


def _date(epoch_ms: int) -> str:
    """The business day (UTC here) of an event time."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).date().isoformat()


def test_activity_matches_duckdb(
    brokers: Any,
    names: Names,
    pipeline: Pipeline,
    new_topic: Callable[..., str],
    kafka_producer: Callable[..., Producer],
) -> None:
    source = new_topic(PARTITIONS, name=names.vip)
    new_topic(PARTITIONS, name=names.sessions)
    new_topic(1, name=names.users, compact=True)
    actions = vip_actions(seed=5, users=40, start_ms=START_MS)
    producer = kafka_producer()
    for user in sorted({a.user_id for a in actions} - UNKNOWN):
        producer.produce(names.users, user_record(user, "PLATINUM"), user.encode())
    # The first half now, so that many VIPs are mid-visit when the stream's clock stops.
    first = actions[: len(actions) // 2]
    for action in first:
        producer.produce(source, action.value(), action.user_id.encode())
    producer.produce(names.sessions, MALFORMED, b"vip-003")
    producer.flush(30)

    user_state = pipeline.start_user_state()
    windowed = {"CLICKS_STREAM": "VipActions", "CLICKS_TOPIC": source}
    windowed["ENRICHER_DELIVERY"] = "exactly_once"
    sessions_query = pipeline.start(
        "enricher",
        log_name="vip-sessions",
        ENRICHER_QUERY=SESSIONS_SQL,
        OUTPUT_STREAM="VipSessions",
        OUTPUT_TOPIC=names.sessions,
        CONSUMER_GROUP=f"{names.run}.sessions",
        **windowed,
    )
    days_query = pipeline.start(
        "enricher",
        log_name="vip-days",
        ENRICHER_QUERY_FILE="queries/vip-days.sql",
        OUTPUT_STREAM="VipDays",
        OUTPUT_TOPIC=names.days,
        CONSUMER_GROUP=f"{names.run}.days",
        **windowed,
    )
    for query in (sessions_query, days_query):
        query.wait_ready()
        eventually(
            lambda q=query: q.metric("enricher_records_aggregated_total") >= len(first),  # type: ignore[misc]
            timeout=120,
            message=query.log_tail,
        )
    eventually(_caught_up(user_state, "sessions", names.sessions, brokers.kafka), timeout=60)
    eventually(_caught_up(user_state, "days", names.days, brokers.kafka), timeout=60)

    # The malformed row went to the DLQ with its reason; nothing else did.
    dead = read_topic(brokers.kafka, f"{names.sessions}.dlq")
    assert [row.value for row in dead] == [MALFORMED]
    assert "window_start" in dead[0].headers["dlq.error"]

    _check_on_site(user_state, first, expected_sessions(first))

    # The rest, then every window closed: one action two days ahead on every partition.
    for action in actions[len(first) :]:
        producer.produce(source, action.value(), action.user_id.encode())
    sessions = expected_sessions(actions)
    last = max(a.event_ms for a in actions)
    for p in range(PARTITIONS):
        user = f"zz-sentinel-{p}"
        ahead = Action(user, last + 2 * DAY, "view", 0)
        producer.produce(source, ahead.value(), user.encode(), partition=p)
    producer.flush(30)
    days = Counter((a.user_id, _date(a.event_ms)) for a in actions)
    checkouts = Counter((a.user_id, _date(a.event_ms)) for a in actions if a.action == "checkout")
    for query, windows in ((sessions_query, len(sessions)), (days_query, len(days))):
        eventually(
            lambda q=query, n=windows: q.metric("enricher_windows_final_total") >= n,  # type: ignore[misc]
            timeout=120,
            message=query.log_tail,
        )
    eventually(_caught_up(user_state, "sessions", names.sessions, brokers.kafka), timeout=60)
    eventually(_caught_up(user_state, "days", names.days, brokers.kafka), timeout=60)

    by_day: dict[tuple[str, str], list[Session]] = defaultdict(list)
    for s in sessions:
        by_day[(s[0], s[1][:10])].append(s)
    assert len(by_day) > 40
    for user, day in sorted(set(by_day) | set(days)):
        expected = sorted(by_day.get((user, day), []))
        got = _get(user_state, f"/v1/users/{user}/activity?date={day}")
        assert [
            (
                user,
                v["session_start"],
                v["session_end"],
                v["clicks"],
                v["checkouts"],
                v["carts"],
                v["last_event_time"],
                v["final"],
            )
            for v in got["sessions"]
        ] == [(s[0], s[1], s[2], s[3], s[4], s[5], s[7], True) for s in expected], (user, day)
        # The day's totals are the per-day query's (clicks by their own day), closed.
        assert (got["clicks"], got["checkouts"], got["final"]) == (
            days[(user, day)],
            checkouts[(user, day)],
            True,
        ), (user, day)
        on_site_ms = sum(parse_event_time(s[7]) - parse_event_time(s[1]) for s in expected)
        assert got["seconds_on_site"] == on_site_ms / 1000
    left = _get(user_state, "/v1/vips/active")["vips"]
    assert sorted(v["user_id"] for v in left) == [f"zz-sentinel-{p}" for p in range(PARTITIONS)]
    known = sorted({a.user_id for a in actions} - UNKNOWN)[0]
    assert _get(user_state, f"/v1/users/{known}/activity?date=2001-01-01")["sessions"] == []
    try:
        _get(user_state, "/v1/users/nobody/activity?date=2025-11-24")
        raise AssertionError("an unknown user with no session answered 200")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
    assert sessions_query.terminate() == 0
    assert days_query.terminate() == 0


def _check_on_site(user_state: Service, actions: list[Action], sessions: set[Session]) -> None:
    """The sessions whose last click is within the gap of the answer's `now`, each with its
    user and today's figures (sessions by the day they started, clicks by their own day)."""
    active = _get(user_state, "/v1/vips/active")
    now = parse_event_time(active["now"])
    today = active["date"]
    assert today == _date(now)
    gap_ms = 30 * 60_000
    open_now = [s for s in sessions if now - parse_event_time(s[7]) < gap_ms]
    assert len(open_now) >= 3
    expected = {}
    for s in open_now:
        user = s[0]
        started_today = [t for t in sessions if t[0] == user and t[1][:10] == today]
        todays = [a for a in actions if a.user_id == user and _date(a.event_ms) == today]
        expected[user] = {
            "user_id": user,
            "name": None if user in UNKNOWN else user.title(),
            "level": None if user in UNKNOWN else "PLATINUM",
            "session_start": s[1],
            "last_event_time": s[7],
            "session_end": s[2],
            "seconds_on_site": (parse_event_time(s[7]) - parse_event_time(s[1])) / 1000,
            "clicks": s[3],
            "carts": s[5],
            "checkouts": s[4],
            "today_sessions": len(started_today),
            "today_seconds_on_site": sum(
                parse_event_time(t[7]) - parse_event_time(t[1]) for t in started_today
            )
            / 1000,
            "today_clicks": len(todays),
            "today_checkouts": sum(1 for a in todays if a.action == "checkout"),
        }
    assert {v["user_id"]: v for v in active["vips"]} == expected
    assert active["count"] == len(expected)
    starts = [v["session_start"] for v in active["vips"]]
    assert starts == sorted(starts), "longest on the site first"
