"""A consumer in a group: batches in, offsets committed explicitly, rebalances passed on."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from tenacity import RetryCallState, retry, retry_if_exception, stop_after_delay, wait_exponential

from clickstream_common.kafka.client_log import LIBRDKAFKA_LOG
from clickstream_common.kafka.errors import COORDINATOR_AWAY, REBALANCING
from clickstream_common.kafka.messages import to_partitions, to_records
from clickstream_common.logging import get_logger
from clickstream_common.metrics import Metrics
from clickstream_common.records import PartitionKey, Position, RebalanceListener, Record
from clickstream_common.settings import KafkaSettings

log = get_logger(__name__)

# How long `poll_batch` waits for more records after the first. None: a loop's own work (a lookup,
# a produce, confirms) lets the next batch gather, and a backlog fills batches anyway; the 5 ms it
# was cost the enricher 4 ms of p50 latency at 1,000 clicks/s, and the bridge as much again.
BATCH_LINGER_S = 0.0
LAG_INTERVAL_S = 1.0
# How long a synchronous commit waits out a group coordinator that is away (moving, loading).
COMMIT_RETRY_S = 120.0


def _coordinator_passing(exc: BaseException) -> bool:
    """A commit error that passes; a refusal during a rebalance is final, never retried."""
    if not isinstance(exc, KafkaException):
        return False
    error: KafkaError = exc.args[0]
    if error.code() in REBALANCING:
        return False
    return bool(error.retriable()) or error.code() in COORDINATOR_AWAY


def _log_commit_retry(state: RetryCallState) -> None:
    failure = state.outcome.exception() if state.outcome is not None else None
    error = failure.args[0] if failure is not None else None
    log.warning("commit failed, retrying", error=str(error))


class BatchConsumer:
    """A consumer in a group, read in batches, committed explicitly.

    Auto-commit is off: the only offsets that reach Kafka are the ones the caller hands to
    `commit` after the outputs for them are acknowledged, or that a `TransactionalProducer`
    commits with them. It reads committed records only (`read_committed`, librdkafka's default,
    stated here): aborted transactions and open ones past the last stable offset stay unseen.

    The constructor creates the client only (librdkafka connects in the background, lazily);
    `subscribe` joins the group. The rebalance listener runs inside `poll_batch` (the client's
    poll), on the caller's thread.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        group_id: str,
        *,
        options: Mapping[str, Any] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """`metrics`: where to show the consumer lag per partition."""
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
            "logger": LIBRDKAFKA_LOG,
            # The classic protocol, stated: KIP-848's `consumer` protocol refuses a restarted
            # static member until the old one's session (45 s, set by the broker) has expired.
            "group.protocol": "classic",
            **(
                {"group.instance.id": settings.group_instance_id}
                if settings.group_instance_id
                else {}
            ),
            **(options or {}),
        }
        self._consumer = Consumer({**config, "on_commit": self._committed_async})
        self._listener: RebalanceListener | None = None
        # Offsets handed to `commit_async`, the latest per partition, until one is accepted.
        self._unconfirmed: dict[PartitionKey, int] = {}
        # Of those, the ones not sent yet: they go at most every `commit_interval_ms`.
        self._unsent: dict[PartitionKey, int] = {}
        self._commit_interval = settings.commit_interval_ms / 1000
        self._commit_due = 0.0
        self._confirmed: dict[PartitionKey, int] = {}
        self._commit_failure: KafkaError | None = None
        self._recommit = False
        # Consumer lag per partition, measured on the consumer's own thread after each poll and
        # only read by the metrics (a scrape must never call into the client: `assignment()`
        # waits on the group's thread, which a rebalance in progress holds).
        self._measure_lag = metrics is not None
        self._held: set[PartitionKey] = set()
        self._lag: dict[PartitionKey, float] = {}
        self._lag_due = 0.0  # once a second is plenty for a gauge scraped every few
        if metrics is not None:
            metrics.partition_gauge(
                "consumer_lag",
                "records behind the end of each assigned partition (at the last fetch)",
                lambda: self._lag,
            )

    def _note_lag(self) -> None:
        """High watermark as of the last fetch (no broker round trip) minus position."""
        held = [TopicPartition(topic, partition) for topic, partition in sorted(self._held)]
        lag: dict[PartitionKey, float] = {}
        for tp in self._consumer.position(held) if held else []:
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if tp.offset >= 0 and high >= 0:
                lag[(tp.topic, tp.partition)] = float(max(0, high - tp.offset))
        self._lag = lag
        self._lag_due = time.monotonic() + LAG_INTERVAL_S

    def subscribe(self, topics: Sequence[str], listener: RebalanceListener | None = None) -> None:
        """Join the group for `topics`; `listener` hears of every partition assigned, and of every
        one revoked or lost, from inside `poll_batch`."""
        self._listener = listener
        self._consumer.subscribe(
            list(topics),
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_lost=self._lost,
        )

    def _assigned(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        self._held.update((tp.topic, tp.partition) for tp in partitions)
        if self._listener is not None and partitions:
            self._listener.on_assign([(tp.topic, tp.partition) for tp in partitions])

    def _revoked(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        """The caller finishes its work first, then whatever it handed to `commit_async` for
        these partitions is committed synchronously, before they are given up."""
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self._held.difference_update(keys)
        if self._listener is not None and keys:
            self._listener.on_revoke(keys)
        self.commit({key: self._unconfirmed[key] for key in keys if key in self._unconfirmed})
        self._forget(keys)

    def _lost(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        """Lost, not revoked: the group has moved on, a commit would be refused."""
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self._held.difference_update(keys)
        self._held.difference_update(keys)
        if self._listener is not None and keys:
            self._listener.on_revoke(keys)
        self._forget(keys)

    def _forget(self, keys: list[PartitionKey]) -> None:
        for key in keys:
            self._unconfirmed.pop(key, None)
            self._unsent.pop(key, None)
            self._confirmed.pop(key, None)

    def consumer_group_metadata(self) -> Any:
        """The group's generation and member id, opaque: a transaction commits offsets with it, so
        the broker refuses them from a member the group has since moved on from (a zombie)."""
        return self._consumer.consumer_group_metadata()

    def poll_batch(self, max_records: int, timeout: float) -> list[Record]:
        """Up to `max_records`: wait at most `timeout` for the first, then `BATCH_LINGER_S` for
        the rest. A backlog still comes in full batches, but a quiet stream is not held back until a
        batch fills (waiting the whole `timeout` cost 0.5 s of latency per hop). Offsets whose
        commit is due are sent first, and the wait ends when the next ones fall due."""
        self._send_due_commits()
        if self._unsent or self._recommit:
            timeout = min(timeout, max(0.0, self._commit_due - time.monotonic()))
        first = self._consumer.poll(timeout)
        if self._measure_lag and time.monotonic() >= self._lag_due:
            self._note_lag()
        if first is None:
            return []
        messages = [first]
        if max_records > 1:
            messages += self._consumer.consume(num_messages=max_records - 1, timeout=BATCH_LINGER_S)
        return to_records(messages)

    def commit_async(self, next_offsets: Mapping[PartitionKey, int]) -> None:
        """Hand offsets to the coordinator without waiting for its answer.

        Sent at most every `commit_interval_ms` (the latest offset per partition wins), by this
        call or by `poll_batch`; the answer comes back in a later poll. A refused commit is not
        lost: its partitions are sent again with the next (a later offset of the same partition
        supersedes it), and what is not confirmed yet is committed synchronously when its
        partition is revoked and at `close`. An error that retrying cannot cure is raised here,
        by the next call.
        """
        self._raise_commit_failure()
        self._unconfirmed.update(next_offsets)
        self._unsent.update(next_offsets)
        self._send_due_commits()

    def _send_due_commits(self) -> None:
        if not (self._unsent or self._recommit):
            return
        now = time.monotonic()
        if now < self._commit_due:
            return
        offsets = self._unconfirmed if self._recommit else self._unsent
        self._recommit = False
        if offsets:
            self._consumer.commit(offsets=to_partitions(offsets), asynchronous=True)
        self._unsent = {}
        self._commit_due = now + self._commit_interval

    def _committed_async(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """librdkafka's answer to a commit, served inside poll on the caller's thread."""
        if error is None or error.code() == KafkaError._NO_OFFSET:
            for tp in partitions:
                key = (tp.topic, tp.partition)
                if tp.error is None:
                    self._confirm(key, tp.offset)
            return
        if error.code() in REBALANCING:
            log.warning("commit refused during a rebalance", error=str(error))
        elif error.retriable() or error.code() in COORDINATOR_AWAY:
            log.warning("commit failed, sending it again with the next", error=str(error))
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
        try:
            self._commit_waiting_out_the_coordinator(next_offsets)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() not in REBALANCING:
                raise
            log.warning("commit refused during a rebalance", error=str(error))
            return
        for key, offset in next_offsets.items():
            self._confirm(key, offset)

    def _confirm(self, key: PartitionKey, offset: int) -> None:
        if self._unconfirmed.get(key) == offset:
            del self._unconfirmed[key]
        if offset > self._confirmed.get(key, -1):
            self._confirmed[key] = offset

    def confirmed_offsets(self) -> Mapping[PartitionKey, int]:
        """The offsets the coordinator has confirmed, per partition this member holds: what a
        restart would resume from at the earliest."""
        return self._confirmed

    @retry(
        retry=retry_if_exception(_coordinator_passing),
        stop=stop_after_delay(COMMIT_RETRY_S),
        wait=wait_exponential(multiplier=0.1, max=2.0),
        before_sleep=_log_commit_retry,
        reraise=True,
    )
    def _commit_waiting_out_the_coordinator(self, next_offsets: Mapping[PartitionKey, int]) -> None:
        # A coordinator moving or loading (a broker restart) passes: wait it out.
        self._consumer.commit(offsets=to_partitions(next_offsets), asynchronous=False)

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
                log.warning("cannot rewind", topic=tp.topic, partition=tp.partition, error=str(exc))
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
