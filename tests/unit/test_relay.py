"""The bridge's Relay against in-memory fakes of its ports: what it promises about commits
(docs/ARCHITECTURE.md § Semantics 6): an offset is committed only once every message up to it is
confirmed or dead-lettered, batches are committed in the order they were read, returned messages
are retried and then dead-lettered, nacked ones retried until confirmed, malformed records
dead-lettered with their reason, everything in flight settled before a revoke or at shutdown,
and a shutdown during a retry leaves that batch, and every later one, uncommitted."""

from __future__ import annotations

import pytest
from clickstream_common.metrics import Metrics
from clickstream_rabbit_bridge.relay import RETURNED_ATTEMPTS, Interrupted, Relay

from tests.unit.relay_fakes import (
    DLQ,
    TOPIC,
    Event,
    FakeDeadLetters,
    FakePublisher,
    FakeShutdown,
    FakeSource,
    event_id,
    raw_record,
    vip_record,
)

RETURNED = "returned: 312 NO_ROUTE"


class Bench:
    """A Relay wired to fakes sharing one event log."""

    def __init__(
        self,
        batches: list[list],
        *,
        failures: dict[str, tuple[str, int]] | None = None,
        settled_at_once: bool = True,
        max_batches_in_flight: int = 8,
    ) -> None:
        self.events: list[Event] = []
        self.source = FakeSource(self.events, batches)
        self.publisher = FakePublisher(self.events, failures or {}, settled_at_once)
        self.dead_letters = FakeDeadLetters(self.events)
        self.shutdown = FakeShutdown()
        self.relay = Relay(
            source=self.source,
            publisher=self.publisher,
            dead_letters=self.dead_letters,
            dead_letter_topic=DLQ,
            metrics=Metrics(prefix="test"),
            shutdown=self.shutdown,  # type: ignore[arg-type]
            batch_size=100,
            max_batches_in_flight=max_batches_in_flight,
        )

    def steps(self, count: int) -> None:
        for _ in range(count):
            self.relay.step(0.5)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events if kind != "poll"]


def test_a_batch_is_committed_only_once_its_messages_are_confirmed() -> None:
    batch = [vip_record(0, 0), vip_record(0, 1), vip_record(1, 7), vip_record(0, 2)]
    bench = Bench([batch], settled_at_once=False)
    bench.steps(3)
    assert bench.publisher.submitted == [[event_id(r.partition, r.offset) for r in batch]]
    assert bench.source.commits == []  # published, not confirmed yet
    bench.publisher.pendings[0].done = True
    bench.steps(1)
    # The next offset to read of each partition, past the highest one in the batch.
    assert bench.source.commits == [{(TOPIC, 0): 3, (TOPIC, 1): 8}]
    bench.steps(2)
    assert len(bench.source.commits) == 1, "a batch is committed once"


def test_batches_are_committed_in_the_order_they_were_read_whatever_the_confirm_order() -> None:
    bench = Bench(
        [[vip_record(0, 0)], [vip_record(0, 1)], [vip_record(0, 2)]], settled_at_once=False
    )
    bench.steps(3)
    assert len(bench.publisher.submitted) == 3, "later batches are published while one waits"
    first, second, third = bench.publisher.pendings
    second.done = third.done = True
    bench.steps(2)
    assert bench.source.commits == [], "nothing is committed past an unconfirmed batch"
    first.done = True
    bench.steps(1)
    assert bench.source.commits == [{(TOPIC, 0): 1}, {(TOPIC, 0): 2}, {(TOPIC, 0): 3}]


def test_with_too_many_batches_in_flight_the_oldest_is_waited_for() -> None:
    bench = Bench(
        [[vip_record(0, n)] for n in range(3)], settled_at_once=False, max_batches_in_flight=2
    )
    bench.steps(2)
    assert bench.source.commits == []
    bench.steps(1)  # a third in flight: one too many
    assert [p.waited for p in bench.publisher.pendings] == [True, False, False]
    assert bench.source.commits == [{(TOPIC, 0): 1}]


def test_a_returned_message_is_retried_then_dead_lettered_before_the_commit() -> None:
    batch = [vip_record(0, n) for n in range(4)]
    failures = {event_id(0, 1): ("nacked", 2), event_id(0, 3): (RETURNED, 1_000)}
    bench = Bench([batch], failures=failures)
    bench.steps(1)
    # Returned: published RETURNED_ATTEMPTS times in all, then given up; nacked: until confirmed.
    assert bench.publisher.attempts[event_id(0, 3)] == RETURNED_ATTEMPTS
    assert bench.publisher.republished == [[event_id(0, 1), event_id(0, 3)]] * (
        RETURNED_ATTEMPTS - 1
    )
    assert sorted(bench.publisher.confirmed) == [event_id(0, n) for n in range(3)]
    # The dead letter is the record the broker kept returning, with the broker's reason.
    assert bench.dead_letters.reasons() == {3: f"rabbitmq: {RETURNED}"}
    (dead,) = bench.dead_letters.sent
    assert (dead.topic, dead.value) == (DLQ, batch[3].value)
    # Dead letters are flushed before the offsets that cover them are committed.
    assert bench.kinds()[-3:] == ["dead-letter", "flush", "commit"]
    assert bench.source.commits == [{(TOPIC, 0): 4}]


def test_a_nacked_message_is_retried_with_a_growing_pause_until_confirmed() -> None:
    failing = RETURNED_ATTEMPTS + 3  # more attempts than a returned message would get
    bench = Bench(
        [[vip_record(0, 0), vip_record(0, 1)]], failures={event_id(0, 1): ("nacked", failing)}
    )
    bench.steps(1)
    assert bench.publisher.attempts[event_id(0, 1)] == failing + 1
    assert bench.dead_letters.sent == []
    assert bench.source.commits == [{(TOPIC, 0): 2}]
    assert bench.shutdown.waits == sorted(bench.shutdown.waits)
    assert bench.shutdown.waits[-1] > bench.shutdown.waits[0]


def test_the_retry_pause_stops_growing_at_five_seconds() -> None:
    bench = Bench([[vip_record(0, 0)]], failures={event_id(0, 0): ("connection lost", 12)})
    bench.steps(1)
    assert max(bench.shutdown.waits) == 5.0
    assert bench.source.commits == [{(TOPIC, 0): 1}]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "null value"),
        (b"{not json", "not JSON"),
        (b'["a", "list"]', "not a JSON object"),
        (b'{"action": "checkout"}', "missing field: event_id"),
        (b'{"event_id": "", "action": "checkout"}', "missing field: event_id"),
    ],
)
def test_a_malformed_record_is_dead_lettered_with_its_reason_and_not_published(
    value: bytes | None, reason: str
) -> None:
    bench = Bench([[vip_record(0, 0), raw_record(0, 1, value), vip_record(0, 2)]])
    bench.steps(1)
    assert bench.publisher.submitted == [[event_id(0, 0), event_id(0, 2)]]
    # The same reasons as a malformed click's: the JSON format's, then the bridge's own.
    reasons = bench.dead_letters.reasons()
    assert list(reasons) == [1]
    assert reasons[1].startswith(reason)
    (dead,) = bench.dead_letters.sent
    headers = dict(dead.headers)
    assert (dead.topic, dead.value) == (DLQ, value)
    assert (headers["dlq.source.topic"], headers["dlq.source.partition"]) == (TOPIC, "0")
    assert bench.kinds()[-3:] == ["dead-letter", "flush", "commit"]
    assert bench.source.commits == [{(TOPIC, 0): 3}]


def test_a_batch_of_only_malformed_records_is_still_committed() -> None:
    bench = Bench([[raw_record(0, 0, None), raw_record(0, 1, b"[]")]])
    bench.steps(1)
    assert bench.dead_letters.reasons() == {0: "null value", 1: "not a JSON object: list"}
    assert bench.source.commits == [{(TOPIC, 0): 2}]


def test_a_revoke_inside_a_poll_settles_and_commits_every_batch_in_flight_first() -> None:
    bench = Bench([[vip_record(0, 0)], [vip_record(1, 0)]], settled_at_once=False)
    revoked_at: list[int] = []

    def revoke_on_third_poll(poll: int) -> None:
        if poll == 3:
            revoked_at.append(len(bench.events))
            bench.relay.on_revoke([(TOPIC, 0), (TOPIC, 1)])

    bench.source.on_poll = revoke_on_third_poll
    bench.steps(2)
    assert bench.source.commits == []
    bench.steps(1)
    assert all(p.waited for p in bench.publisher.pendings)
    assert bench.source.commits == [{(TOPIC, 0): 1}, {(TOPIC, 1): 1}]
    # Both committed inside the revoke, before the poll returned.
    after_revoke = [kind for kind, _ in bench.events[revoked_at[0] :]]
    assert after_revoke == ["settled", "commit", "settled", "commit", "poll"]
    bench.steps(2)
    assert len(bench.source.commits) == 2, "nothing is settled twice"


def test_at_shutdown_run_settles_and_commits_every_batch_in_flight() -> None:
    bench = Bench([[vip_record(0, n)] for n in range(3)], settled_at_once=False)
    bench.source.on_poll = lambda poll: bench.shutdown.request() if poll == 3 else None
    bench.relay.run()
    assert bench.source.polls == 3, "run stops polling once shutdown is requested"
    assert all(p.waited for p in bench.publisher.pendings)
    assert bench.source.commits == [{(TOPIC, 0): 1}, {(TOPIC, 0): 2}, {(TOPIC, 0): 3}]


def test_a_shutdown_during_a_retry_commits_nothing_of_that_batch_or_any_later_one() -> None:
    first = [vip_record(0, 0), vip_record(0, 1)]
    bench = Bench(
        [first, [vip_record(0, 2)]],
        failures={event_id(0, 1): (RETURNED, 1_000)},
        settled_at_once=False,
    )
    bench.steps(2)
    bench.publisher.pendings[1].done = True  # the later batch is confirmed
    bench.shutdown.request()
    bench.publisher.pendings[0].done = True
    with pytest.raises(Interrupted):
        bench.steps(1)
    assert bench.source.commits == []
    assert bench.dead_letters.sent == [], "interrupted before its attempts ran out"


def test_run_ends_quietly_when_shutdown_interrupts_a_retry() -> None:
    bench = Bench(
        [[vip_record(0, 0)]], failures={event_id(0, 0): ("nacked", 1_000)}, settled_at_once=False
    )
    bench.steps(1)
    bench.shutdown.request()
    bench.relay.run()  # Interrupted is caught: the batch will be read again after the restart
    assert bench.source.commits == []
    assert bench.publisher.pendings[0].waited
