"""Pacing against a fake clock: the long-run rate holds and sends come in batches."""

from __future__ import annotations

from clickstream_generator.pacing import MAX_BATCH, Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run(pacer: Pacer, clock: FakeClock, seconds: float) -> tuple[int, int]:
    sent = sleeps = 0
    while clock.now < 100.0 + seconds:
        granted = pacer.grant(pacer.batch_size)
        if granted:
            sent += granted
        else:
            clock.now += pacer.wait_seconds(pacer.batch_size)
            sleeps += 1
    return sent, sleeps


def test_long_run_rate_is_exact_with_few_sleeps():
    clock = FakeClock()
    pacer = Pacer(1000.0, clock)
    sent, sleeps = _run(pacer, clock, 10.0)
    assert abs(sent - 10_000) <= pacer.batch_size
    assert sleeps <= 10_000 / pacer.batch_size + 1


def test_low_rate_still_sends_something_at_once():
    clock = FakeClock()
    pacer = Pacer(2.0, clock)
    assert pacer.batch_size == 1
    assert pacer.grant(1) == 1
    assert pacer.grant(1) == 0
    assert pacer.wait_seconds(1) == 0.5


def test_zero_rate_is_unlimited():
    clock = FakeClock()
    pacer = Pacer(0.0, clock)
    assert pacer.batch_size == MAX_BATCH
    assert pacer.grant(MAX_BATCH) == MAX_BATCH
    assert pacer.wait_seconds(MAX_BATCH) == 0.0


def test_a_stall_does_not_cause_a_burst():
    clock = FakeClock()
    pacer = Pacer(100.0, clock)
    pacer.grant(5)
    clock.now += 60.0
    assert pacer.grant(10_000) <= 1
    clock.now += 1.0
    assert pacer.grant(10_000) == 100
