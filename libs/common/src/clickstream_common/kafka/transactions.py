"""Transactional produce: a batch's records and the offsets they complete, all or nothing."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from clickstream_common.bounded import CallOverran, call_within
from clickstream_common.kafka.errors import (
    REBALANCING,
    GroupFenced,
    KafkaFatalError,
    TransactionError,
)
from clickstream_common.kafka.producer import produce, producer_config
from clickstream_common.logging import get_logger
from clickstream_common.records import OutRecord, PartitionKey, Position
from clickstream_common.settings import KafkaSettings

log = get_logger(__name__)

# A transactional call gets at most this long from librdkafka (retriable timeouts are retried up
# to the whole transaction timeout), and is given up as stuck this much later still.
TXN_CALL_STEP_S = 5.0
TXN_CALL_OVERRUN_S = 3.0
# An abort that has not succeeded by then will not: the producer is replaced instead (its
# successor aborts the transaction), which costs a new connection, not the whole timeout again.
TXN_ABORT_S = 2 * TXN_CALL_STEP_S


class TransactionalProducer:
    """A producer whose records, and the consumer offsets they complete, commit or abort together.

    `transactional_id` must be stable across restarts of one instance and unique among running
    ones: `start` (librdkafka's `init_transactions`) aborts whatever a previous incarnation with
    the same id left open, and fences it, so it can write nothing more. Each `transact` is one
    transaction, begun and ended (committed, or aborted and raised) inside the call, so none is
    ever open while the caller polls its consumer, where rebalances happen.

    Every transactional call is bounded from outside (`call_within`): librdkafka can wait forever
    on a coordinator across a broker restart, timeout or not. A producer stuck like that is
    abandoned and replaced by a new one with the same id, whose `init_transactions` fences the
    stuck one and aborts its open transaction; the batch is then tried again, so nothing of it is
    lost or written twice.

    The constructor creates the client only (librdkafka connects in the background, lazily);
    `start` is the first exchange with the transaction coordinator, and must come before
    `transact`.
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
        self._config = producer_config(settings, options, **{"transactional.id": transactional_id})
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

    def start(self) -> None:
        """Initialise transactions: fence a previous incarnation with this transactional id and
        abort the transaction it left open. Call it before reading any committed offset of the
        group: one that transaction holds is not answered until the transaction is aborted."""
        self._init_transactions(self._producer)

    def _new_producer(self) -> Producer:
        """A producer of a new generation, transactions not yet initialised. Callbacks of an
        abandoned generation are ignored: its fencing must not read as this one's fatal error."""
        self._generation += 1
        generation = self._generation

        def on_delivery(error: KafkaError | None, _: Message) -> None:
            if generation == self._generation:
                self._on_delivery(error)

        def on_error(error: KafkaError) -> None:
            if generation == self._generation:
                self._on_error(error)

        self._deliver = on_delivery
        return Producer({**self._config, "error_cb": on_error})

    def _init_transactions(self, producer: Producer) -> None:
        try:
            self._retrying(producer.init_transactions, "init_transactions")
        except CallOverran as exc:
            raise KafkaFatalError(f"cannot initialise transactions: {exc}") from exc

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
        # A loop, not a retry policy: each failure is handled its own way (abort, replace the
        # producer, ask `landed`) before the next attempt, which tenacity's callbacks would scatter.
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
                    log.warning("the stuck transaction had committed", cause=cause)
                    return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.fatal():
                    self._open = False
                    raise KafkaFatalError(f"transaction failed: {error}") from exc
                cause = self._take_failures() or str(error)
                if self._open:
                    self._abort()
                if error.code() in REBALANCING:
                    raise GroupFenced(f"transaction aborted, the group moved on: {error}") from exc
                if not error.txn_requires_abort():
                    raise KafkaFatalError(f"transaction failed and aborted: {error}") from exc
            log.warning(
                "transaction aborted", attempt=attempt, attempts=self._attempts, cause=cause
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
            produce(producer, record, self._deliver)
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
        """Abort the open transaction, or replace a producer that cannot: after a broker restart
        librdkafka may keep answering an abort with a retriable timeout for good (seen in CI:
        records of the transaction undelivered for its whole timeout, then every abort timed
        out). The replacement's `init_transactions` aborts the transaction for it."""
        producer = self._producer
        try:
            self._retrying(producer.abort_transaction, "abort_transaction", TXN_ABORT_S)
        except CallOverran as exc:
            self._replace(str(exc))
        except KafkaException as exc:
            self._replace(f"cannot abort the transaction: {exc.args[0]}")
        finally:
            self._open = False

    def _replace(self, cause: str) -> None:
        """Abandon the stuck producer for a new one with the same transactional id."""
        self._open = False
        self._stuck_in_a_row += 1
        if self._stuck_in_a_row > self._attempts:
            stuck = self._stuck_in_a_row
            raise KafkaFatalError(f"transactional calls stuck {stuck} times in a row: {cause}")
        log.warning(
            "transactional call stuck, replacing the producer (it is fenced, and its open"
            " transaction aborted, by the new one)",
            cause=cause,
        )
        producer = self._new_producer()
        self._init_transactions(producer)
        self._producer = producer

    def _retrying(
        self, call: Callable[[float], object], name: str, timeout: float | None = None
    ) -> None:
        """Run a transactional call, again while it fails with a retriable error and time is left
        (`timeout`, the producer's own by default); any other error is raised as it came.
        librdkafka gets at most `call_step` seconds a call, and a call that outlives that by
        `TXN_CALL_OVERRUN_S` raises `CallOverran`: the producer it was made on is stuck and must
        be replaced."""
        budget = self._timeout if timeout is None else min(timeout, self._timeout)
        deadline = time.monotonic() + budget
        retrying = Retrying(
            retry=retry_if_exception(_retriable),
            stop=stop_after_delay(budget),
            wait=wait_fixed(0.1),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    step = min(max(deadline - time.monotonic(), 0.1), self._call_step)
                    call_within(functools.partial(call, step), step + TXN_CALL_OVERRUN_S, name)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.fatal():
                raise KafkaFatalError(f"fatal producer error: {error}") from exc
            raise

    def close(self, timeout: float = 30) -> None:
        """Abort a transaction left open by an error, then flush; committed work is untouched."""
        if self._fatal is not None:
            self._producer.purge()  # nothing queued can be sent any more
        elif self._open:
            # Not `_abort`: a replacement producer is no use at close. A transaction left open is
            # aborted by the next incarnation's `start`, or by the coordinator at its timeout.
            try:
                self._retrying(self._producer.abort_transaction, "abort_transaction", TXN_ABORT_S)
            except (CallOverran, KafkaException, KafkaFatalError) as exc:
                log.warning("cannot abort the open transaction at close", error=str(exc))
            self._open = False
        self._producer.flush(0 if self._fatal is not None else timeout)


def _retriable(exc: BaseException) -> bool:
    """A Kafka error that passes; a fatal one never does, even if librdkafka calls it retriable."""
    if not isinstance(exc, KafkaException):
        return False
    error: KafkaError = exc.args[0]
    return not error.fatal() and bool(error.retriable())
