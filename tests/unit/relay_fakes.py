"""In-memory stand-ins for the bridge Relay's own ports (record source, publisher, dead-letter sink,
shutdown): they script outcomes and record every call, in one shared log of events, so tests can
check the order in which the relay touches them. They model our ports, not a broker."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import orjson
from clickstream_common.rabbit import OutboundMessage, PublishOutcome
from clickstream_common.records import OutRecord, PartitionKey, Record

TOPIC = "vip-action"
DLQ = "vip-action.dlq"

Event = tuple[str, object]


def vip_record(partition: int, offset: int, action: str = "checkout") -> Record:
    """A well-formed VipAction record; its event_id is `e<partition>-<offset>`."""
    value = orjson.dumps({"event_id": event_id(partition, offset), "action": action})
    return Record(TOPIC, partition, offset, b"user", value, 0)


def event_id(partition: int, offset: int) -> str:
    return f"e{partition}-{offset}"


def raw_record(partition: int, offset: int, value: bytes | None) -> Record:
    return Record(TOPIC, partition, offset, b"user", value, 0)


class FakeSource:
    """Hands out the scripted batches one poll at a time, then empty ones; records commits.

    `on_poll` runs inside a poll before it returns, as a rebalance callback or a signal would.
    """

    def __init__(self, events: list[Event], batches: Iterable[list[Record]] = ()) -> None:
        self.events = events
        self.batches: deque[list[Record]] = deque(batches)
        self.commits: list[dict[PartitionKey, int]] = []
        self.polls = 0
        self.on_poll: Callable[[int], None] | None = None

    def poll_batch(self, max_records: int, timeout: float) -> list[Record]:
        self.polls += 1
        if self.on_poll is not None:
            self.on_poll(self.polls)
        batch = self.batches.popleft() if self.batches else []
        assert len(batch) <= max_records, "a script batch larger than the relay asked for"
        self.events.append(("poll", len(batch)))
        return batch

    def commit_async(self, next_offsets: Mapping[PartitionKey, int]) -> None:
        self.commits.append(dict(next_offsets))
        self.events.append(("commit", dict(next_offsets)))


@dataclass
class FakePending:
    outcome: PublishOutcome
    events: list[Event]
    done: bool = False
    waited: bool = False
    settled_at: float | None = None

    def wait(self) -> PublishOutcome:
        """As the real one: blocks until the batch is settled; here it settles at once."""
        self.waited = True
        self.done = True
        self.events.append(("settled", self.outcome.confirmed))
        return self.outcome


@dataclass
class FakePublisher:
    """Confirms every message except those scripted in `failures`: message_id -> (reason, how
    many attempts fail). `settled_at_once` says whether a submitted batch is confirmed before the
    relay next looks (else the test sets `pendings[i].done` itself)."""

    events: list[Event]
    failures: dict[str, tuple[str, int]] = field(default_factory=dict)
    settled_at_once: bool = True
    pendings: list[FakePending] = field(default_factory=list)
    submitted: list[list[str]] = field(default_factory=list)
    republished: list[list[str]] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    confirmed: list[str] = field(default_factory=list)

    def submit(self, messages: Sequence[OutboundMessage], timeout: float = 30) -> FakePending:
        self.submitted.append([m.message_id for m in messages])
        self.events.append(("submit", len(messages)))
        pending = FakePending(self._outcome(messages), self.events, done=self.settled_at_once)
        self.pendings.append(pending)
        return pending

    def publish_batch(
        self, messages: Sequence[OutboundMessage], timeout: float = 30
    ) -> PublishOutcome:
        self.republished.append([m.message_id for m in messages])
        self.events.append(("republish", len(messages)))
        return self._outcome(messages)

    def _outcome(self, messages: Sequence[OutboundMessage]) -> PublishOutcome:
        failed: list[tuple[int, str]] = []
        for index, message in enumerate(messages):
            self.attempts[message.message_id] += 1
            reason, failing = self.failures.get(message.message_id, ("", 0))
            if self.attempts[message.message_id] <= failing:
                failed.append((index, reason))
            else:
                self.confirmed.append(message.message_id)
        return PublishOutcome(confirmed=len(messages) - len(failed), failed=tuple(failed))


class FakeDeadLetters:
    """Records what was sent and when it was flushed (the relay's promise: before the commit)."""

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.sent: list[OutRecord] = []
        self.unflushed = 0

    def send_all(self, records: Iterable[OutRecord]) -> None:
        batch = list(records)
        self.sent += batch
        self.unflushed += len(batch)
        self.events.append(("dead-letter", len(batch)))

    def flush(self, timeout: float = 30) -> None:
        self.unflushed = 0
        self.events.append(("flush", None))

    def reasons(self) -> dict[int, str]:
        """Source offset -> the reason each dead letter carries."""
        return {
            int(dict(r.headers)["dlq.source.offset"]): dict(r.headers)["dlq.error"]
            for r in self.sent
        }


class FakeShutdown:
    """Never sleeps: `wait` records the back-off asked for and answers at once."""

    def __init__(self) -> None:
        self.requested = False
        self.waits: list[float] = []

    def request(self) -> None:
        self.requested = True

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        return self.requested
