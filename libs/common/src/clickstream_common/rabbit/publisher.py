"""RabbitMQ publisher with pipelined publisher confirms.

The rabbit-bridge may commit a Kafka offset only once every message up to it is confirmed by
RabbitMQ and not returned (docs/ARCHITECTURE.md § Semantics 6). Waiting for each confirm in turn
would cost one network round trip per message, so a whole batch is published at once (at most
`max_in_flight` unconfirmed) and confirms are mapped back to batch indices as they arrive.
Several batches may be in flight at once (`submit`), so a caller can publish the next one while
the last is confirmed.

The connection itself lives in a `Session` on its own I/O thread; this side only hands batches
over, waits for them, and replaces a lost session, with backoff.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence

from clickstream_common.logging import get_logger
from clickstream_common.rabbit.confirms import (
    REASON_CONFIRM_TIMEOUT,
    REASON_CONNECTION_LOST,
    Batch,
    OutboundMessage,
    PublishOutcome,
)
from clickstream_common.rabbit.connection import (
    RabbitRefused,
    RabbitUnavailable,
    parameters,
    secrets_of,
)
from clickstream_common.rabbit.session import Session
from clickstream_common.rabbit.topology import Topology
from clickstream_common.settings import mask_url

log = get_logger(__name__)

# Reconnect backoff: doubling from 0.5 s, but never more than 5 s between tries, so a broker
# back after a restart (10-20 s here) is found within seconds, not half a minute.
_BACKOFF_MIN = 0.5
_BACKOFF_MAX = 5.0


class PendingPublish:
    """A submitted batch: `done` once every message is confirmed or failed, `wait` for how."""

    def __init__(
        self,
        publisher: RabbitPublisher,
        batch: Batch,
        session: Session | None,
        deadline: float,
    ) -> None:
        self._publisher = publisher
        self._batch = batch
        self._session = session
        self._deadline = deadline
        self._outcome: PublishOutcome | None = None

    @property
    def done(self) -> bool:
        return self._batch.finished

    @property
    def settled_at(self) -> float | None:
        """`time.perf_counter()` when the last message settled, if it has."""
        return self._batch.settled_at

    def wait(self) -> PublishOutcome:
        """Block until settled, or until the deadline: then the unsettled fail with "confirm
        timeout" and the connection is recycled, so late confirms cannot leak anywhere."""
        if self._outcome is not None:
            return self._outcome
        batch, session = self._batch, self._session
        if not batch.done.wait(max(0.0, self._deadline - time.monotonic())):
            batch.fail_rest(REASON_CONFIRM_TIMEOUT)
            if session is not None:
                session.shutdown()
        if session is not None:
            session.detach(batch)
        self._outcome = self._publisher._report(batch)
        return self._outcome


class RabbitPublisher:
    """Publishes batches with pipelined confirms and reports, per index, what did not make it.

    Thread-safe: batches from several threads are published one after another, and a caller
    may have several in flight (`submit`). A lost
    connection fails the unsettled messages and is re-established, with backoff, by the next
    `publish_batch`.
    """

    def __init__(
        self,
        url: str,
        topology: Topology,
        *,
        connection_name: str = "rabbit-bridge",
        max_in_flight: int = 10_000,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self._params = parameters(url, connection_name)
        self._masked_url = mask_url(url)
        self._secrets = secrets_of(url)
        self._topology = topology
        self._connection_name = connection_name
        self._max_in_flight = max_in_flight
        self._lock = threading.Lock()  # one batch (or start/close) at a time
        self._closing = threading.Event()
        self._closed = False
        self._started = False
        self._session: Session | None = None
        self._backoff = 0.0
        self._next_attempt = 0.0

    @property
    def healthy(self) -> bool:
        """Connected, topology declared and channel in confirm mode."""
        session = self._session
        return not self._closed and session is not None and session.usable

    def start(self, timeout: float = 30.0) -> None:
        """Connect and declare the topology, so a broken broker or config fails at start-up."""
        with self._lock:
            if self._closed:
                raise RuntimeError("RabbitPublisher is closed")
            if self._session is None or not self._session.usable:
                self._replace_session(self._connect(timeout))
            self._started = True

    def publish_batch(
        self, messages: Sequence[OutboundMessage], timeout: float = 30.0
    ) -> PublishOutcome:
        """Publish all of `messages` and block until each is confirmed or failed.

        Never waits longer than about `timeout`: whatever is unsettled by then fails with
        "confirm timeout" and the connection is recycled so late confirms cannot leak into a
        later batch.
        """
        return self.submit(messages, timeout).wait()

    def submit(self, messages: Sequence[OutboundMessage], timeout: float = 30.0) -> PendingPublish:
        """Start publishing `messages` and return at once; `wait` on the result for the outcome.

        Batches submitted one after another are published in that order and may be in flight
        together; each settles on its own. `timeout` counts from now, as for `publish_batch`.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            if not self._started:
                raise RuntimeError("RabbitPublisher.start() was not called")
            if self._closed:
                raise RuntimeError("RabbitPublisher is closed")
            batch = Batch(messages)
            if not messages:
                return PendingPublish(self, batch, None, deadline)
            try:
                session = self._ensure_session(deadline)
            except RabbitUnavailable as exc:
                batch.fail_rest(f"{REASON_CONNECTION_LOST}: {exc}")
                return PendingPublish(self, batch, None, deadline)
            if not session.submit(batch):
                batch.fail_rest(REASON_CONNECTION_LOST)
            return PendingPublish(self, batch, session, deadline)

    def close(self) -> None:
        """Close the connection, failing whatever is still unconfirmed. Idempotent."""
        self._closing.set()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            session, self._session = self._session, None
        if session is not None:
            session.shutdown()
            session.join()
            log.info("rabbitmq publisher closed", connection_name=self._connection_name)

    # ---- internals ---------------------------------------------------------------------------

    def _report(self, batch: Batch) -> PublishOutcome:
        outcome = batch.outcome()
        if outcome.failed:
            log.warning(
                "rabbitmq batch not fully confirmed",
                confirmed=outcome.confirmed,
                failed=len(outcome.failed),
                first_failure=outcome.failed[0][1],
            )
        return outcome

    def _connect(self, timeout: float) -> Session:
        session = Session(
            self._params,
            self._topology,
            self._max_in_flight,
            self._secrets,
            thread_name=f"rabbit-io-{self._connection_name}",
        )
        session.start()
        if not session.ready.wait(max(0.0, timeout)):
            session.shutdown()  # aborts the opening; the daemon thread ends on its own
            raise RabbitUnavailable(f"RabbitMQ at {self._masked_url} not ready within {timeout:g}s")
        if session.error is not None or not session.usable:
            session.join()
            reason = session.error or "connection closed during start-up"
            failure = RabbitRefused if session.refused else RabbitUnavailable
            raise failure(f"cannot use RabbitMQ at {self._masked_url}: {reason}")
        log.info(
            "rabbitmq publisher connected",
            broker=self._masked_url,  # not `url`: the log redacts that key whole
            exchange=self._topology.exchange,
            queue=self._topology.queue,
            queue_type=self._topology.queue_type,
        )
        return session

    def _replace_session(self, session: Session | None) -> None:
        # The old session's batch is already settled, so it is not joined: a stalled broker
        # must not hold up the reconnect.
        old, self._session = self._session, session
        if old is not None:
            old.shutdown()

    def _ensure_session(self, deadline: float) -> Session:
        """The current session, or a new one tried with exponential backoff until `deadline`.

        A loop rather than tenacity: the pause outlives the call (the next batch first waits out
        what the last failure set, and fails at once if that ends past its deadline), and
        `close()` cuts a pause short.
        """
        session = self._session
        if session is not None and session.usable:
            return session
        self._replace_session(None)
        while True:
            now = time.monotonic()
            if self._closing.is_set():
                raise RabbitUnavailable("publisher is closing")
            if self._next_attempt > deadline:
                raise RabbitUnavailable(
                    f"RabbitMQ at {self._masked_url} unavailable; "
                    f"next reconnect in {self._next_attempt - now:.1f}s"
                )
            if self._next_attempt > now:
                self._closing.wait(self._next_attempt - now)
                continue
            try:
                session = self._connect(deadline - now)
            except RabbitUnavailable as exc:
                self._backoff = min(_BACKOFF_MAX, max(_BACKOFF_MIN, self._backoff * 2))
                self._next_attempt = time.monotonic() + self._backoff * random.uniform(0.8, 1.2)
                log.warning("rabbitmq reconnect failed", error=str(exc))
                if time.monotonic() >= deadline:
                    raise
                continue
            self._backoff = 0.0
            self._next_attempt = 0.0
            self._session = session
            return session
