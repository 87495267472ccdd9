"""The generator's visits mode: clicks leave when the simulated clock (GENERATOR_TIME_SCALE times
the wall clock) reaches their event time, level changes go to the users topic, and
GENERATOR_CLICKS stops it."""

from __future__ import annotations

from collections.abc import Iterable

from clickstream_common.contracts import decode_json
from clickstream_common.lifecycle import Shutdown
from clickstream_common.metrics import Metrics
from clickstream_common.records import OutRecord
from clickstream_generator import data
from clickstream_generator.runner import GeneratorRunner, _Tally
from clickstream_generator.settings import GeneratorSettings

START_S = 1_764_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeShutdown(Shutdown):
    """Waiting moves the fake clock on instead of sleeping."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self._clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        self._clock.now += timeout or 0
        return self.requested


class Producer:
    def __init__(self, clock: Clock) -> None:
        self.sent: list[tuple[float, OutRecord]] = []
        self._clock = clock

    def send_all(self, records: Iterable[OutRecord]) -> None:
        self.sent += [(self._clock.now, r) for r in records]

    def flush(self, timeout: float = 60) -> None:
        pass


def test_clicks_leave_at_their_simulated_time_and_level_changes_reach_the_users_topic() -> None:
    settings = GeneratorSettings.from_env(
        {"GENERATOR_TIME_SCALE": "600", "GENERATOR_CLICKS": "3000", "GENERATOR_USERS": "300"}
    )
    clock = Clock()
    producer = Producer(clock)
    runner = GeneratorRunner(
        settings,
        producer,  # type: ignore[arg-type]
        Metrics("generator"),
        FakeShutdown(clock),
        clock=clock,
        wall_clock=lambda: START_S,
    )
    tally = _Tally()
    runner._produce_visits(data.users(settings.data_config()), tally)

    clicks = [(t, r) for t, r in producer.sent if r.topic == settings.clicks_topic]
    assert tally.clicks == len(clicks) == 3000
    for sent_at, record in clicks:
        event_ms = decode_json(record.value or b"")["event_time"]
        simulated_ms = START_S * 1000 + sent_at * 1000 * 600
        assert event_ms <= simulated_ms < event_ms + 600 * 1000  # not early, at most 1 s late
    assert any(r.topic == settings.users_topic for _, r in producer.sent)
