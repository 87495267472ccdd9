"""confluent-kafka adapters: batch consume, checked and transactional produce, topic admin.

The services see `Record` / `OutRecord` only. Offsets are committed explicitly, and only by the
caller once the work they cover is done (or, exactly once, in the transaction holding that work's
outputs); delivery failures are raised, never swallowed.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from clickstream_common.bounded import CallOverran, call_within
from clickstream_common.records import BatchFenced, OutRecord, PartitionKey, Position, Record
from clickstream_common.settings import KafkaSettings

_librdkafka_log = logging.getLogger("librdkafka")


# How long `poll_batch` waits for more records after the first. None: a loop's own work (a lookup,
# a produce, confirms) lets the next batch gather, and a backlog fills batches anyway; the 5 ms it
# was cost the enricher 4 ms of p50 latency at 1,000 clicks/s, and the bridge as much again.
BATCH_LINGER_S = 0.0
COMMIT_RETRY_S = 120.0
# A transactional call gets at most this long from librdkafka (retriable timeouts are retried up
# to the whole transaction timeout), and is given up as stuck this much later still.
TXN_CALL_STEP_S = 5.0
TXN_CALL_OVERRUN_S = 3.0

_COORDINATOR_AWAY = frozenset(
    {
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._WAIT_COORD,
    }
)

_REBALANCING = frozenset(
    {
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError._ASSIGNMENT_LOST,
    }
)

_LEADER_MOVING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_PARTITION,
    }
)


class KafkaFatalError(RuntimeError):
    """The client reported an error it cannot recover from; the service must stop."""


class DeliveryError(RuntimeError):
    """At least one produced record was not acknowledged; its input must not be committed."""


class TransactionError(RuntimeError):
    """A transaction was aborted and could not be completed on retry; nothing of it is visible."""


class GroupFenced(TransactionError):
    """The offsets were refused because the group has a newer generation than the metadata they
    came with: trying again with it cannot succeed, so the transaction is aborted at once."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 4
    compact: bool = False


_new_tuple = tuple.__new__


def _to_record(message: Message) -> Record:
    topic = message.topic()
    partition = message.partition()
    offset = message.offset()
    assert topic is not None and partition is not None and offset is not None
    headers: Any = message.headers()
    # Fields in Record's order. tuple.__new__ skips the NamedTuple's Python-level __new__, which
    # cost a microsecond a record: a second of every million users restored.
    fields = (
        topic,
        partition,
        offset,
        message.key(),
        message.value(),
        message.timestamp()[1],
        tuple((name, value or b"") for name, value in headers) if headers else (),
    )
    return _new_tuple(Record, fields)


def ensure_topics(settings: KafkaSettings, specs: Iterable[TopicSpec], timeout: float = 30) -> None:
    """Create missing topics; existing ones are left as they are."""
    admin = AdminClient({**settings.client_config(), "logger": _librdkafka_log})  # type: ignore[dict-item]
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise KafkaFatalError(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {exc.args[0]}"
        ) from None
    wanted = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=-1,
            config={"cleanup.policy": "compact"} if spec.compact else {},
        )
        for spec in specs
        if spec.name not in existing
    ]
    if not wanted:
        return
    for topic, future in admin.create_topics(wanted, request_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise KafkaFatalError(f"cannot create topic {topic}: {exc}") from exc


class BatchConsumer:
    """A consumer in a group, read in batches, committed explicitly.

    Auto-commit is off: the only offsets that reach Kafka are the ones the caller hands to
    `commit` after the outputs for them are acknowledged, or that a `TransactionalProducer`
    commits with them. It reads committed records only (`read_committed`, librdkafka's default,
    stated here): aborted transactions and open ones past the last stable offset stay unseen.

    The rebalance callbacks run inside `poll_batch` (the client's poll), on the caller's thread.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        group_id: str,
        topics: Sequence[str],
        *,
        on_revoke: Callable[[list[PartitionKey]], None] | None = None,
        on_assign: Callable[[list[PartitionKey]], None] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        config: dict[str, Any] = {
            **settings.client_config(),
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": settings.session_timeout_ms,
            # librdkafka's 3 s, but always well inside the session.
            "heartbeat.interval.ms": min(3_000, settings.session_timeout_ms // 3),
            "logger": _librdkafka_log,
            **(options or {}),
        }
        self._consumer = Consumer({**config, "on_commit": self._committed_async})
        self._on_revoke = on_revoke
        self._on_assign = on_assign
        # Offsets handed to `commit_async`, the latest per partition, until one is accepted.
        self._unconfirmed: dict[PartitionKey, int] = {}
        self._commit_failure: KafkaError | None = None
        self._recommit = False
        self._consumer.subscribe(
            list(topics),
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_lost=self._lost,
        )

    def _assigned(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        if self._on_assign is not None and partitions:
            self._on_assign([(tp.topic, tp.partition) for tp in partitions])

    def _revoked(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        """The caller finishes its work first, then whatever it handed to `commit_async` for
        these partitions is committed synchronously, before they are given up."""
        keys = [(tp.topic, tp.partition) for tp in partitions]
        if self._on_revoke is not None and keys:
            self._on_revoke(keys)
        self.commit({key: self._unconfirmed[key] for key in keys if key in self._unconfirmed})
        self._forget(keys)

    def _lost(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        """Lost, not revoked: the group has moved on, a commit would be refused."""
        keys = [(tp.topic, tp.partition) for tp in partitions]
        if self._on_revoke is not None and keys:
            self._on_revoke(keys)
        self._forget(keys)

    def _forget(self, keys: list[PartitionKey]) -> None:
        for key in keys:
            self._unconfirmed.pop(key, None)

    def consumer_group_metadata(self) -> Any:
        """The group's generation and member id, opaque: a transaction commits offsets with it, so
        the broker refuses them from a member the group has since moved on from (a zombie)."""
        return self._consumer.consumer_group_metadata()

    def poll_batch(self, max_records: int, timeout: float) -> list[Record]:
        """Up to `max_records`: wait at most `timeout` for the first, then `BATCH_LINGER_S` for
        the rest. A backlog still comes in full batches, but a quiet stream is not held back until a
        batch fills (waiting the whole `timeout` cost 0.5 s of latency per hop)."""
        first = self._consumer.poll(timeout)
        if first is None:
            return []
        messages = [first]
        if max_records > 1:
            messages += self._consumer.consume(num_messages=max_records - 1, timeout=BATCH_LINGER_S)
        return _records(messages)

    def commit_async(self, next_offsets: Mapping[PartitionKey, int]) -> None:
        """Hand offsets to the coordinator without waiting for its answer.

        The answer comes back in a later poll. A refused commit is not lost: its partitions are
        sent again with the next call (a later offset of the same partition supersedes it), and
        what is not confirmed yet is committed synchronously when its partition is revoked and at
        `close`. An error that retrying cannot cure is raised here, by the next call.
        """
        self._raise_commit_failure()
        self._unconfirmed.update(next_offsets)
        offsets = self._unconfirmed if self._recommit else next_offsets
        self._recommit = False
        if offsets:
            self._consumer.commit(offsets=_partitions(offsets), asynchronous=True)

    def _committed_async(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """librdkafka's answer to a commit, served inside poll on the caller's thread."""
        if error is None or error.code() == KafkaError._NO_OFFSET:
            for tp in partitions:
                key = (tp.topic, tp.partition)
                if tp.error is None and self._unconfirmed.get(key) == tp.offset:
                    del self._unconfirmed[key]
            return
        if error.code() in _REBALANCING:
            _librdkafka_log.warning("commit refused during a rebalance: %s", error)
        elif error.retriable() or error.code() in _COORDINATOR_AWAY:
            _librdkafka_log.warning("commit failed, sending it again with the next: %s", error)
            self._recommit = True
        else:
            self._commit_failure = error

    def _raise_commit_failure(self) -> None:
        if self._commit_failure is not None:
            error, self._commit_failure = self._commit_failure, None
            raise KafkaException(error)

    def commit(self, next_offsets: Mapping[PartitionKey, int]) -> None:
        """Commit synchronously: `next_offsets` maps a partition to the next offset to read.

        A commit refused because the group is rebalancing (another replica joining or leaving)
        is not an error of this process: the outputs are already acknowledged, and whoever owns
        the partitions next resumes from the last accepted commit (at-least-once: the batch
        may be emitted again, with the same event ids). It is logged, not raised.
        """
        if not next_offsets:
            return
        offsets = _partitions(next_offsets)
        deadline = time.monotonic() + COMMIT_RETRY_S
        delay = 0.1
        while True:
            try:
                self._consumer.commit(offsets=offsets, asynchronous=False)
                for (t, p), o in next_offsets.items():
                    if self._unconfirmed.get((t, p)) == o:
                        del self._unconfirmed[(t, p)]
                return
            except KafkaException as exc:
                error = exc.args[0]
                if error.code() in _REBALANCING:
                    _librdkafka_log.warning("commit refused during a rebalance: %s", error)
                    return
                # A coordinator moving or loading (a broker restart) passes: wait it out.
                passing = error.retriable() or error.code() in _COORDINATOR_AWAY
                if not passing or time.monotonic() > deadline:
                    raise
                _librdkafka_log.warning("commit failed, retrying: %s", error)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def rewind(self, timeout: float = 120) -> list[PartitionKey]:
        """Send every assigned partition back to its committed offset (its start if none, as
        `auto.offset.reset` does), dropping whatever was fetched past it; returns them.

        A partition the group takes away meanwhile cannot be sought; its next owner starts from
        the commit anyway, and the revocation reaches the caller in a later poll.
        """
        assigned = self._consumer.assignment()
        if not assigned:
            return []
        rewound: list[PartitionKey] = []
        for tp in self._consumer.committed(assigned, timeout=timeout):
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            try:
                self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            except KafkaException as exc:
                _librdkafka_log.warning("cannot rewind %s [%d]: %s", tp.topic, tp.partition, exc)
                continue
            rewound.append((tp.topic, tp.partition))
        return rewound

    def committed(
        self, partitions: Iterable[PartitionKey], timeout: float = 10
    ) -> dict[PartitionKey, int]:
        result = self._consumer.committed(
            [TopicPartition(t, p) for t, p in partitions], timeout=timeout
        )
        return {(tp.topic, tp.partition): tp.offset for tp in result}

    def committed_positions(
        self, partitions: Iterable[PartitionKey], timeout: float = 60
    ) -> dict[PartitionKey, Position]:
        """The committed offset and its metadata, for the partitions that have one.

        Reading committed, the broker answers only once no transaction still holds an offset
        commit for them, so the answer is the last one that became visible.
        """
        result = self._consumer.committed(
            [TopicPartition(t, p) for t, p in partitions], timeout=timeout
        )
        return {
            (tp.topic, tp.partition): Position(tp.offset, tp.metadata or "")
            for tp in result
            if tp.error is None and tp.offset >= 0
        }

    def close(self) -> None:
        """Commit what `commit_async` left unconfirmed, then leave the group."""
        try:
            self._raise_commit_failure()
            self.commit(dict(self._unconfirmed))
        finally:
            self._consumer.close()


def _partitions(next_offsets: Mapping[PartitionKey, int]) -> list[TopicPartition]:
    return [TopicPartition(t, p, o) for (t, p), o in next_offsets.items()]


def _records(messages: list[Message]) -> list[Record]:
    records: list[Record] = []
    for message in messages:
        error = message.error()
        if error is None:
            records.append(_to_record(message))
        elif error.code() == KafkaError._PARTITION_EOF:
            continue
        elif error.fatal():
            raise KafkaFatalError(str(error))
        else:
            _librdkafka_log.warning("consumer error: %s", error)
    return records


class TableReader:
    """Reads a whole topic from the start, outside any group: every replica gets all of it."""

    def __init__(self, settings: KafkaSettings, topic: str, timeout: float = 30) -> None:
        self._consumer = Consumer(
            {
                **settings.client_config(),
                "group.id": "unused-table-reader",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                # Prefetch at most 16 MB, not librdkafka's 64 MB: the reader is held back by
                # the table's decoding anyway, and a bigger queue only adds to the peak memory.
                "queued.max.messages.kbytes": 16384,
                "logger": _librdkafka_log,
            }
        )
        try:
            metadata = self._consumer.list_topics(topic, timeout=timeout)
        except KafkaException as exc:
            raise KafkaFatalError(
                f"cannot reach Kafka at {settings.bootstrap_servers}: {exc.args[0]}"
            ) from None
        topic_meta = metadata.topics.get(topic)
        if topic_meta is None or topic_meta.error is not None or not topic_meta.partitions:
            raise KafkaFatalError(f"topic {topic!r} not found")
        self.partitions = sorted(topic_meta.partitions)
        self._topic = topic
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in self.partitions])

    def watermarks(self, timeout: float = 30) -> dict[int, tuple[int, int]]:
        """(low, high) of each partition; reading up to `high` as seen at start is 'caught up'.

        A topic created a moment ago may have no leader yet; that passes, so it is retried.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                return {
                    p: self._consumer.get_watermark_offsets(
                        TopicPartition(self._topic, p), timeout=timeout
                    )
                    for p in self.partitions
                }
            except KafkaException as exc:
                if exc.args[0].code() not in _LEADER_MOVING or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def positions(self) -> dict[int, int]:
        """The next offset to read per partition; it moves past control records too."""
        tps = self._consumer.position([TopicPartition(self._topic, p) for p in self.partitions])
        return {tp.partition: tp.offset for tp in tps}

    def poll_batch(self, max_records: int, timeout: float) -> list[Record]:
        return _records(self._consumer.consume(num_messages=max_records, timeout=timeout))

    def close(self) -> None:
        self._consumer.close()


def _produce(
    producer: Producer,
    record: OutRecord,
    on_delivery: Callable[[KafkaError | None, Message], None],
) -> None:
    while True:
        try:
            producer.produce(
                record.topic,
                value=record.value,
                key=record.key,
                headers=list(record.headers) if record.headers else None,
                on_delivery=on_delivery,
            )
            return
        except BufferError:
            # The local queue is full: serve delivery reports to make room, then retry.
            producer.poll(0.1)


class CheckedProducer:
    """A producer whose `flush` raises if anything sent since the last flush was not delivered.

    Idempotence is on so librdkafka's retries never duplicate or reorder a partition.
    """

    def __init__(self, settings: KafkaSettings, options: Mapping[str, Any] | None = None) -> None:
        self._producer = Producer(
            {
                **settings.client_config(),
                "enable.idempotence": True,
                "linger.ms": 5,
                "compression.type": "lz4",
                "logger": _librdkafka_log,
                **(options or {}),
            }
        )
        self._lock = threading.Lock()
        self._failures: list[str] = []
        self.delivered = 0

    def _on_delivery(self, error: KafkaError | None, _: Message) -> None:
        if error is None:
            self.delivered += 1
        else:
            with self._lock:
                self._failures.append(str(error))

    def send(self, record: OutRecord) -> None:
        _produce(self._producer, record, self._on_delivery)

    def send_all(self, records: Iterable[OutRecord]) -> None:
        for record in records:
            self.send(record)
        self._producer.poll(0)

    def flush(self, timeout: float = 60) -> None:
        remaining = self._producer.flush(timeout)
        with self._lock:
            failures, self._failures = self._failures, []
        if remaining:
            failures.append(f"{remaining} records not delivered within {timeout}s")
        if failures:
            raise DeliveryError(f"{len(failures)} delivery failures, first: {failures[0]}")

    def close(self, timeout: float = 30) -> None:
        self.flush(timeout)


class TransactionalProducer:
    """A producer whose records, and the consumer offsets they complete, commit or abort together.

    `transactional_id` must be stable across restarts of one instance and unique among running
    ones: `init_transactions` (at construction) aborts whatever a previous incarnation with the
    same id left open, and fences it, so it can write nothing more. Each `transact` is one
    transaction, begun and ended (committed, or aborted and raised) inside the call, so none is
    ever open while the caller polls its consumer, where rebalances happen.

    Every transactional call is bounded from outside (`call_within`): librdkafka can wait forever
    on a coordinator across a broker restart, timeout or not. A producer stuck like that is
    abandoned and replaced by a new one with the same id, whose `init_transactions` fences the
    stuck one and aborts its open transaction; the batch is then tried again, so nothing of it is
    lost or written twice.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        transactional_id: str,
        *,
        options: Mapping[str, Any] | None = None,
        timeout: float = 60,
        attempts: int = 3,
        call_step: float = TXN_CALL_STEP_S,
    ) -> None:
        self.transactional_id = transactional_id
        self._timeout = timeout
        self._attempts = attempts
        self._call_step = call_step
        self._config: dict[str, Any] = {
            **settings.client_config(),
            "transactional.id": transactional_id,
            "enable.idempotence": True,
            "linger.ms": 5,
            "compression.type": "lz4",
            "logger": _librdkafka_log,
            **(options or {}),
        }
        self._lock = threading.Lock()
        self._failures: list[str] = []
        self._fatal: str | None = None
        self._open = False
        self._generation = 0
        self._stuck_in_a_row = 0
        self.delivered = 0
        self._producer = self._new_producer()

    @property
    def in_transaction(self) -> bool:
        return self._open

    def _new_producer(self) -> Producer:
        """A producer of a new generation, transactions initialised. Callbacks of an abandoned
        generation are ignored: its fencing must not read as this one's fatal error."""
        self._generation += 1
        generation = self._generation

        def on_delivery(error: KafkaError | None, _: Message) -> None:
            if generation == self._generation:
                self._on_delivery(error)

        def on_error(error: KafkaError) -> None:
            if generation == self._generation:
                self._on_error(error)

        self._deliver = on_delivery
        producer = Producer({**self._config, "error_cb": on_error})
        try:
            self._retrying(producer.init_transactions, "init_transactions")
        except CallOverran as exc:
            raise KafkaFatalError(f"cannot initialise transactions: {exc}") from exc
        return producer

    def transact(
        self,
        records: Sequence[OutRecord],
        offsets: Mapping[PartitionKey, Position],
        group_metadata: Any,
        landed: Callable[[], bool] | None = None,
    ) -> None:
        """Write `records` and commit `offsets` for the group in one transaction.

        An error that allows it aborts the transaction (a stuck call replaces the producer), and
        the whole of it is tried again, up to `attempts` times; then `TransactionError`. A fatal
        error (this producer fenced by a newer one with its id, say) raises `KafkaFatalError` at
        once. If `commit_transaction` itself got stuck, the commit may have reached the
        coordinator: once the replacement has settled it, `landed()` says whether it did (the
        group's committed offsets are part of it), and only if not is the batch written again.
        """
        for attempt in range(1, self._attempts + 1):
            try:
                self._once(records, offsets, group_metadata)
                self._stuck_in_a_row = 0
                return
            except KafkaFatalError:
                self._open = False  # nothing more can be done with this producer, abort included
                raise
            except CallOverran as exc:
                cause = str(exc)
                self._replace(cause)
                if exc.name == "commit_transaction" and landed is not None and landed():
                    _librdkafka_log.warning("the stuck transaction had committed: %s", cause)
                    return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.fatal():
                    self._open = False
                    raise KafkaFatalError(f"transaction failed: {error}") from exc
                cause = self._take_failures() or str(error)
                if self._open:
                    self._abort()
                if error.code() in _REBALANCING:
                    raise GroupFenced(f"transaction aborted, the group moved on: {error}") from exc
                if not error.txn_requires_abort():
                    raise KafkaFatalError(f"transaction failed and aborted: {error}") from exc
            _librdkafka_log.warning(
                "transaction aborted (attempt %d of %d): %s", attempt, self._attempts, cause
            )
            if attempt == self._attempts:
                raise TransactionError(f"transaction aborted {attempt} times: {cause}")
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(
        self,
        records: Sequence[OutRecord],
        offsets: Mapping[PartitionKey, Position],
        group_metadata: Any,
    ) -> None:
        producer = self._producer
        self._take_failures()
        producer.begin_transaction()
        self._open = True
        for record in records:
            _produce(producer, record, self._deliver)
        producer.poll(0)
        if offsets:
            positions = [
                TopicPartition(t, p, position.offset, position.note)
                if position.note
                else TopicPartition(t, p, position.offset)
                for (t, p), position in offsets.items()
            ]
            self._retrying(
                lambda step: producer.send_offsets_to_transaction(positions, group_metadata, step),
                "send_offsets_to_transaction",
            )
        self._flush()
        # Any record not delivered makes this fail with an abortable error.
        self._retrying(producer.commit_transaction, "commit_transaction")
        self._open = False

    def _flush(self) -> None:
        """Wait for the records' acknowledgements, but stop at a fatal error (fenced, say): the
        records then never leave, and commit_transaction would wait out its whole timeout."""
        deadline = time.monotonic() + self._timeout
        while self._producer.flush(0.2) and time.monotonic() < deadline:
            if self._fatal is not None:
                raise KafkaFatalError(f"fatal producer error: {self._fatal}")

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal() or error.code() == KafkaError._FATAL:
            self._fatal = str(error)

    def _on_delivery(self, error: KafkaError | None) -> None:
        if error is None:
            self.delivered += 1
        else:
            with self._lock:
                self._failures.append(str(error))

    def _take_failures(self) -> str:
        with self._lock:
            failures, self._failures = self._failures, []
        return f"{len(failures)} delivery failures, first: {failures[0]}" if failures else ""

    def _abort(self) -> None:
        producer = self._producer
        try:
            self._retrying(producer.abort_transaction, "abort_transaction")
        except CallOverran as exc:
            self._replace(str(exc))
        except KafkaException as exc:
            raise KafkaFatalError(f"cannot abort the transaction: {exc.args[0]}") from exc
        finally:
            self._open = False

    def _replace(self, cause: str) -> None:
        """Abandon the stuck producer for a new one with the same transactional id."""
        self._open = False
        self._stuck_in_a_row += 1
        if self._stuck_in_a_row > self._attempts:
            stuck = self._stuck_in_a_row
            raise KafkaFatalError(f"transactional calls stuck {stuck} times in a row: {cause}")
        _librdkafka_log.warning(
            "transactional call stuck, replacing the producer (it is fenced, and its open"
            " transaction aborted, by the new one): %s",
            cause,
        )
        self._producer = self._new_producer()

    def _retrying(self, call: Callable[[float], object], name: str) -> None:
        """Run a transactional call, again while it fails with a retriable error and time is left;
        any other error is raised as it came. librdkafka gets at most `call_step` seconds a call,
        and a call that outlives that by `TXN_CALL_OVERRUN_S` raises `CallOverran`: the producer
        it was made on is stuck and must be replaced."""
        deadline = time.monotonic() + self._timeout
        while True:
            step = min(max(deadline - time.monotonic(), 0.1), self._call_step)
            try:
                call_within(functools.partial(call, step), step + TXN_CALL_OVERRUN_S, name)
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.fatal():
                    raise KafkaFatalError(f"fatal producer error: {error}") from exc
                if not error.retriable() or time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)

    def close(self, timeout: float = 30) -> None:
        """Abort a transaction left open by an error, then flush; committed work is untouched."""
        if self._fatal is not None:
            self._producer.purge()  # nothing queued can be sent any more
        elif self._open:
            try:
                self._abort()
            except KafkaFatalError as exc:
                _librdkafka_log.warning("%s", exc)
        self._producer.flush(0 if self._fatal is not None else timeout)


class ExactlyOnceCommitter:
    """The exactly-once delivery strategy: a batch's outputs and its consumer positions (with
    their notes, as offset metadata) go in one transaction, so a record's output and its
    consumption become visible together or not at all."""

    exactly_once = True

    def __init__(self, producer: TransactionalProducer, consumer: BatchConsumer) -> None:
        self._producer = producer
        self._consumer = consumer

    def commit_batch(
        self, outputs: Sequence[OutRecord], positions: Mapping[PartitionKey, Position]
    ) -> None:
        def landed() -> bool:
            committed = self._consumer.committed_positions(positions, timeout=120)
            return bool(positions) and all(committed.get(p) == pos for p, pos in positions.items())

        try:
            self._producer.transact(
                outputs, positions, self._consumer.consumer_group_metadata(), landed
            )
        except GroupFenced as exc:
            raise BatchFenced(self._consumer.rewind(), str(exc)) from exc

    def resume(self, partitions: Sequence[PartitionKey]) -> dict[PartitionKey, Position]:
        # A transaction a dead instance left open holds the answer back until it is aborted:
        # at once by a new instance with its id, else at transaction.timeout.ms (60 s).
        return self._consumer.committed_positions(partitions, timeout=120)
