"""A broker not up yet is waited for; one that refuses, or a shutdown, ends the wait."""

from __future__ import annotations

import logging

import pytest
from clickstream_common.startup import StoppedWhileWaiting, wait_for


class Unavailable(Exception):
    pass


class Refused(Unavailable):
    pass


class FakeStopping:
    """Shutdown that never sleeps for real: it counts the pauses and can be requested after N."""

    def __init__(self, stop_after_pauses: int | None = None) -> None:
        self.pauses: list[float] = []
        self._stop_after = stop_after_pauses

    @property
    def requested(self) -> bool:
        return self._stop_after is not None and len(self.pauses) >= self._stop_after

    def wait(self, timeout: float | None = None) -> bool:
        self.pauses.append(timeout or 0.0)
        return self.requested


def flaky(failures: int, error: type[Exception] = Unavailable) -> tuple[list[int], object]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise error(f"not yet ({len(calls)})")
        return "up"

    return calls, attempt


def test_waits_while_unavailable_then_returns_the_result(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    stopping = FakeStopping()
    calls, attempt = flaky(4)
    assert wait_for("Kafka", attempt, unavailable=Unavailable, stopping=stopping) == "up"  # type: ignore[arg-type]
    assert len(calls) == 5
    assert len(stopping.pauses) == 4
    # backoff grows and is capped
    assert stopping.pauses == sorted(stopping.pauses)
    assert max(stopping.pauses) <= 5.0
    waiting = [r for r in caplog.records if "waiting for Kafka" in r.getMessage()]
    assert len(waiting) == 1, "one line says what it waits for, not one per attempt"
    assert any("Kafka answers" in r.getMessage() for r in caplog.records)


def test_no_log_and_no_pause_when_the_broker_answers_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    stopping = FakeStopping()
    _, attempt = flaky(0)
    assert wait_for("Kafka", attempt, unavailable=Unavailable, stopping=stopping) == "up"  # type: ignore[arg-type]
    assert stopping.pauses == []
    assert "waiting for" not in caplog.text


def test_a_refusal_is_raised_at_once() -> None:
    stopping = FakeStopping()
    calls, attempt = flaky(3, Refused)
    with pytest.raises(Refused):
        wait_for("RabbitMQ", attempt, unavailable=Unavailable, refused=Refused, stopping=stopping)  # type: ignore[arg-type]
    assert len(calls) == 1 and stopping.pauses == []


def test_other_errors_are_not_waited_for() -> None:
    stopping = FakeStopping()
    calls, attempt = flaky(3, ValueError)
    with pytest.raises(ValueError):
        wait_for("Kafka", attempt, unavailable=Unavailable, stopping=stopping)  # type: ignore[arg-type]
    assert len(calls) == 1


def test_shutdown_ends_the_wait_as_a_clean_stop() -> None:
    stopping = FakeStopping(stop_after_pauses=3)
    calls, attempt = flaky(1_000)
    with pytest.raises(StoppedWhileWaiting, match="stopped while waiting for Kafka"):
        wait_for("Kafka", attempt, unavailable=Unavailable, stopping=stopping)  # type: ignore[arg-type]
    assert len(calls) == 3
