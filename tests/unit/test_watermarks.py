"""Event-time progress: the minimum over partitions, idle partitions let go after the timeout,
the wall clock moving a quiet input on, and never going back."""

from __future__ import annotations

from clickstream_enricher.windows.watermarks import Watermarks


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def watermarks(lateness: int = 1000, idle: int = 10_000) -> tuple[Watermarks, Clock]:
    clock = Clock()
    marks = Watermarks(lateness, idle, clock)
    marks.assign(0)
    marks.assign(1)
    return marks, clock


def test_the_slowest_partition_holds_the_watermark() -> None:
    marks, _ = watermarks()
    marks.observe(0, 50_000)
    assert marks.advance() is None  # partition 1 has shown no event time yet
    marks.observe(1, 20_000)
    assert marks.advance() == 19_000
    marks.observe(1, 60_000)
    assert marks.advance() == 49_000


def test_an_idle_partition_stops_holding_it_back_after_the_timeout() -> None:
    marks, clock = watermarks()
    marks.observe(0, 20_000)
    marks.observe(1, 20_000)
    marks.advance()
    clock.now = 5.0
    marks.observe(0, 500_000)
    assert marks.advance() == 20_000 + 5_000 - 1000  # partition 1 moved with the wall clock
    clock.now = 10.0
    marks.observe(0, 510_000)
    assert marks.advance() == 509_000  # partition 1 idle for 10 s: no longer counted


def test_a_partition_never_seen_holds_until_idle() -> None:
    marks, clock = watermarks()
    marks.observe(0, 50_000)
    assert marks.advance() is None
    clock.now = 10.0
    marks.observe(0, 50_000)
    assert marks.advance() == 50_000 + 10_000 - 1000


def test_when_nothing_arrives_the_wall_clock_moves_it() -> None:
    marks, clock = watermarks()
    marks.observe(0, 50_000)
    marks.observe(1, 40_000)
    assert marks.advance() == 39_000
    clock.now = 60.0  # both idle: the furthest one, moved on by the wall clock
    assert marks.advance() == 50_000 + 60_000 - 1000


def test_a_partition_taken_over_far_behind_holds_it_back() -> None:
    """Its records are not late in bulk; the operator keeps the other partitions' closed windows
    closed (tests/unit/test_window_operator.py)."""
    marks, _ = watermarks()
    marks.observe(0, 50_000)
    marks.observe(1, 50_000)
    assert marks.advance() == 49_000
    marks.revoke([1])
    marks.assign(1, max_event_ms=10_000)
    assert marks.advance() == 9_000


def test_a_partition_taken_over_resumes_from_its_remembered_event_time() -> None:
    marks = Watermarks(0, 10_000, Clock())
    marks.assign(3, max_event_ms=70_000)
    assert marks.advance() == 70_000
    assert marks.max_event_ms(3) == 70_000
