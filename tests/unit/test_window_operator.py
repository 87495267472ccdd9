"""The window operator: assignment, session merges and their retractions, late records, HAVING,
replays skipped by offset, eviction, and state restored from its own changelog."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from clickstream_common.contracts import format_event_time, parse_event_time
from clickstream_enricher.query import StreamNames, compile_query
from clickstream_enricher.windows.operator import ChangelogEntry, Emission, WindowOperator
from clickstream_enricher.windows.plan import AggregateQuery
from clickstream_enricher.windows.watermarks import Watermarks

VIP = StreamNames(clicks="VipActions", output="VipSessions")
MINUTE = 60_000
T0 = parse_event_time("2026-12-03T10:00:00.000Z")
SESSIONS = """SELECT user_id, COUNT(*) AS clicks,
    COUNT(*) FILTER (WHERE action = 'checkout') AS checkouts
    FROM VipActions GROUP BY SESSION(event_time, INTERVAL '30' MINUTE), user_id"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def operator(
    sql: str = SESSIONS, *, lateness: int = 0, idle: int = 60_000, zone: str | None = None
) -> tuple[WindowOperator, Clock]:
    query = compile_query(sql, VIP)
    assert isinstance(query, AggregateQuery)
    clock = Clock()
    op = WindowOperator(query, Watermarks(lateness, idle, clock), ZoneInfo(zone) if zone else None)
    op.assign(0, [])
    return op, clock


class Feed:
    """Adds rows to partition 0 with increasing offsets."""

    def __init__(self, op: WindowOperator) -> None:
        self.op = op
        self.offset = 0

    def __call__(self, user: str, minute: float, action: str = "view") -> str | None:
        event_ms = T0 + int(minute * MINUTE)
        row = {"user_id": user, "action": action, "event_time": format_event_time(event_ms)}
        late = self.op.add(0, self.offset, event_ms, row, None)
        self.offset += 1
        return late


def rows(emission: Emission) -> list[tuple[str, str, bool, bool, object]]:
    return [
        (
            r.user_id,
            str(r.value["window_start"])[11:16],
            bool(r.value["final"]),
            bool(r.value["retract"]),
            r.value.get("clicks"),
        )
        for r in emission.rows
    ]


def test_a_session_is_updated_then_closed_once_the_watermark_passes_its_end() -> None:
    op, _ = operator()
    feed = Feed(op)
    feed("u1", 0)
    feed("u1", 10, "checkout")
    assert rows(op.flush()) == [("u1", "10:00", False, False, 2)]
    feed("u2", 45)  # the watermark reaches 10:45: u1's session ended at 10:40
    emission = op.flush()
    assert ("u1", "10:00", True, False, 2) in rows(emission)
    final = next(r for r in emission.rows if r.value["final"])
    assert final.value["window_end"] == "2026-12-03T10:40:00.000Z"
    assert final.value["last_event_time"] == "2026-12-03T10:10:00.000Z"
    assert final.value["checkouts"] == 1
    assert op.open_windows == 1


def test_a_click_bridging_two_sessions_merges_them_and_retracts_the_later_one() -> None:
    op, _ = operator(lateness=60 * MINUTE)
    feed = Feed(op)
    feed("u1", 0)
    feed("u1", 50)
    assert rows(op.flush()) == [("u1", "10:00", False, False, 1), ("u1", "10:50", False, False, 1)]
    feed("u1", 25)  # within 30 minutes of both
    assert rows(op.flush()) == [
        ("u1", "10:50", True, True, None),
        ("u1", "10:00", False, False, 3),
    ]
    assert op.open_windows == 1


def test_an_earlier_click_moving_the_start_retracts_the_row_under_the_old_start() -> None:
    op, _ = operator(lateness=60 * MINUTE)
    feed = Feed(op)
    feed("u1", 40)
    op.flush()
    feed("u1", 20)
    assert rows(op.flush()) == [("u1", "10:40", True, True, None), ("u1", "10:20", False, False, 2)]


def test_a_click_behind_the_watermark_is_late_with_its_reason() -> None:
    op, _ = operator()
    feed = Feed(op)
    feed("u1", 100)
    op.flush()
    reason = feed("u2", 10)
    assert reason is not None and reason.startswith("late: event_time 2026-12-03T10:10:00.000Z")
    assert "11:40:00.000Z" in reason
    # ...but a click that joins a session still open is not late, even behind the watermark.
    feed("u1", 80)
    op.flush()
    assert feed("u1", 75) is None


def test_the_allowed_lateness_holds_the_watermark_back() -> None:
    op, _ = operator(lateness=30_000)
    feed = Feed(op)
    feed("u1", 0)
    feed("u2", 30.4)  # watermark 10:29:54: u1's session (until 10:30) stays open
    assert all(not r.value["final"] for r in op.flush().rows)
    feed("u2", 30.6)
    assert any(r.value["final"] for r in op.flush().rows)


def test_the_watermark_moves_with_the_wall_clock_when_no_click_arrives() -> None:
    op, clock = operator()
    feed = Feed(op)
    feed("u1", 0)
    op.flush()
    clock.now += 29 * 60
    assert op.flush().rows == []
    clock.now += 2 * 60
    assert rows(op.flush()) == [("u1", "10:00", True, False, 1)]


def test_a_replayed_record_is_skipped_by_its_offset() -> None:
    op, _ = operator()
    row = {"user_id": "u1", "action": "view"}
    assert op.add(0, 5, T0, row, None) is None
    assert op.add(0, 5, T0, row, None) is None
    assert op.add(0, 4, T0, row, None) is None
    assert rows(op.flush()) == [("u1", "10:00", False, False, 1)]


def test_having_hides_a_window_until_it_holds_and_retracts_it_when_it_stops() -> None:
    op, _ = operator(SESSIONS + " HAVING COUNT(*) >= 2")
    feed = Feed(op)
    feed("u1", 0)
    assert op.flush().rows == []
    feed("u1", 1)
    assert rows(op.flush()) == [("u1", "10:00", False, False, 2)]
    feed("u2", 100)
    assert ("u1", "10:00", True, False, 2) in rows(op.flush())


def test_tumbling_days_follow_the_business_time_zone() -> None:
    op, _ = operator(
        "SELECT user_id, COUNT(*) AS clicks FROM VipActions "
        "GROUP BY TUMBLE(event_time, INTERVAL '1' DAY), user_id",
        zone="America/New_York",
    )
    feed = Feed(op)
    feed("u1", 0)  # 05:00 in New York
    [row] = op.flush().rows
    assert row.value["window_start"] == "2026-12-03T05:00:00.000Z"
    assert row.value["window_end"] == "2026-12-04T05:00:00.000Z"


def test_hopping_windows_count_a_click_in_each_window_it_falls_in() -> None:
    op, _ = operator(
        "SELECT user_id, COUNT(*) AS clicks FROM VipActions "
        "GROUP BY HOP(event_time, INTERVAL '30' MINUTE, INTERVAL '1' HOUR), user_id"
    )
    Feed(op)("u1", 40)
    assert sorted(rows(op.flush())) == [
        ("u1", "10:00", False, False, 1),
        ("u1", "10:30", False, False, 1),
    ]


def test_closed_keys_are_evicted_once_the_input_is_committed_past_them() -> None:
    op, _ = operator()
    feed = Feed(op)
    feed("u1", 0)
    feed("u2", 100)
    emission = op.flush()
    assert any(r.value["final"] for r in emission.rows)
    op.committed(0, 1)  # u1's last record (offset 0) can no longer be replayed
    tombstones = [e for e in op.flush().changelog if e.value is None]
    assert tombstones == [ChangelogEntry(0, b'["u1"]', None)]


def test_state_restored_from_the_changelog_carries_on_exactly() -> None:
    op, _ = operator(lateness=60 * MINUTE)
    feed = Feed(op)
    feed("u1", 0)
    feed("u1", 50)
    feed("u2", 5, "checkout")
    changelog = [(e.key, e.value) for e in op.flush().changelog]

    restored, _ = operator(lateness=60 * MINUTE)
    assert restored.assign(0, changelog) == len(changelog)
    assert restored.open_windows == 3
    assert restored.add(0, 1, T0 + 50 * MINUTE, {"user_id": "u1"}, None) is None  # a replay
    restored.add(0, 3, T0 + 25 * MINUTE, {"user_id": "u1", "action": "view"}, None)
    assert rows(restored.flush()) == [
        ("u1", "10:50", True, True, None),
        ("u1", "10:00", False, False, 3),
    ]


def test_a_partition_keeps_its_windows_closed_when_the_watermark_goes_back() -> None:
    """Partition 0 closed u1's session; then partition 1 is taken over far behind, pulling the
    watermark back: a click of u1's closed session is still late, while partition 1's clicks
    are not."""
    op, _ = operator()
    feed = Feed(op)
    feed("u1", 0)
    feed("u1", 100)  # closes u1's first session (10:00-10:30)
    op.flush()
    op.assign(1, [(b"watermark", b'{"max_event_ms": %d, "closed_through": null}' % T0)])
    op.flush()
    assert feed("u1", 5) is not None  # behind what partition 0 has closed
    row = {"user_id": "u2", "action": "view"}
    assert op.add(1, 0, T0 + 5 * MINUTE, row, None) is None


def test_a_partition_taken_over_is_judged_by_the_watermark_it_brings_at_once() -> None:
    """The operator's watermark is recomputed on assignment, not at the next flush: the first
    records of a partition taken over behind are not late by the others' watermark."""
    op, _ = operator()
    feed = Feed(op)
    feed("u1", 0)
    feed("u1", 100)
    op.flush()
    op.assign(1, [(b"watermark", b'{"max_event_ms": %d, "closed_through": null}' % T0)])
    row = {"user_id": "u2", "action": "view"}
    assert op.add(1, 0, T0 + 5 * MINUTE, row, None) is None
