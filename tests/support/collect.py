"""Collecting what reached RabbitMQ, checking on the way the AMQP properties that
docs/ARCHITECTURE.md § Data contracts promises."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pika
import pika.exceptions
from clickstream_common.rabbit import QueueReader

from tests.support.eventually import GaveUpWaiting, eventually


def drain(rabbitmq_url: str, queue: str, until: int, timeout: float = 180) -> list[bytes]:
    """Collect messages until `until` arrived and then a quiet spell shows nothing more comes.

    Short of `until` when the time is up, it returns what did arrive: the caller's comparison
    with the oracle then says what is missing.
    """
    reader = QueueReader(rabbitmq_url, queue)
    bodies: list[bytes] = []

    def enough() -> bool:
        bodies.extend(_checked(reader, idle_timeout=3))
        return len(bodies) >= until

    try:
        with contextlib.suppress(GaveUpWaiting):
            eventually(enough, timeout=timeout, interval=0)
    finally:
        reader.close()
    return bodies


def _checked(reader: QueueReader, idle_timeout: float) -> list[bytes]:
    """The bodies read until `idle_timeout` passes quietly, each with the promised properties."""
    bodies = []
    for received in reader.messages(idle_timeout=idle_timeout):
        assert received.persistent and received.content_type == "application/json"
        assert received.message_id and received.message_id.encode() in received.body
        bodies.append(received.body)
    return bodies


def queue_depth(rabbitmq_url: str, queue: str) -> int:
    """Messages ready in `queue` now (a passive declare: it never creates the queue)."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        declared = connection.channel().queue_declare(queue, passive=True)
        return int(declared.method.message_count)
    finally:
        connection.close()


def drain_queue(rabbitmq_url: str, queue: str, timeout: float = 180) -> list[bytes]:
    """Everything in `queue`, read until RabbitMQ reports it empty.

    Call it once every publisher has finished (e.g. the bridge committed its whole topic, so every
    message is confirmed and therefore enqueued): then empty means all of it, with no quiet spell
    to guess.
    """
    reader = QueueReader(rabbitmq_url, queue)
    bodies: list[bytes] = []

    def emptied() -> bool:
        bodies.extend(_checked(reader, idle_timeout=1))
        return queue_depth(rabbitmq_url, queue) == 0

    try:
        eventually(
            emptied,
            timeout=timeout,
            interval=0,
            message=lambda: f"{queue} not empty ({len(bodies)} read)",
        )
    finally:
        reader.close()
    return bodies


def event_time_ms(iso: str) -> int:
    """`2026-11-27T20:52:23.123Z` (a VipAction's event_time) as epoch milliseconds."""
    moment = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


@dataclass(frozen=True)
class Arrival:
    wall: float  # time.time() when the tap received it
    event_time_ms: int
    event_id: str


class ExchangeTap:
    """Watches VipActions arrive at an exchange, live, through a durable queue of its own.

    For measuring, not for checking: it records when each message arrived and its event time
    (the click's Kafka timestamp, carried through). It reconnects when the broker goes away, and
    its queue being durable keeps what is published meanwhile. The business queue is untouched.
    """

    def __init__(self, rabbitmq_url: str, exchange: str, queue: str) -> None:
        self._params = pika.URLParameters(rabbitmq_url)
        self._exchange = exchange
        self._queue = queue
        self._arrivals: list[Arrival] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tap-{queue}", daemon=True)
        self.reconnects = 0
        self.error: Exception | None = None
        self.last_problem = ""

    def start(self) -> ExchangeTap:
        self._declare().close()  # first in the caller's thread, so a mistake fails the test
        self._thread.start()
        return self

    def _declare(self) -> pika.BlockingConnection:
        connection = pika.BlockingConnection(self._params)
        channel = connection.channel()
        channel.queue_declare(self._queue, durable=True)
        channel.queue_bind(self._queue, self._exchange, routing_key="#")
        return connection

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                connection = self._declare()
                try:
                    channel = connection.channel()
                    channel.basic_qos(prefetch_count=1000)
                    for method, _, body in channel.consume(
                        self._queue, auto_ack=True, inactivity_timeout=0.2
                    ):
                        if self._stop.is_set():
                            break
                        if method is not None:
                            value = json.loads(body)
                            arrival = Arrival(
                                time.time(), event_time_ms(value["event_time"]), value["event_id"]
                            )
                            with self._lock:
                                self._arrivals.append(arrival)
                finally:
                    if connection.is_open:
                        connection.close()
            except (pika.exceptions.AMQPError, OSError) as exc:
                self.reconnects += 1
                self.last_problem = repr(exc)
                self._stop.wait(0.2)
            except Exception as exc:  # a bug here must fail the test, not silence the tap
                self.error = exc
                return

    @property
    def arrivals(self) -> list[Arrival]:
        with self._lock:
            return list(self._arrivals)

    def first_fresh(
        self, since: float, timeout: float = 300, check: Callable[[], None] | None = None
    ) -> float:
        """Seconds from `since` (time.time()) until the first VipAction whose click was produced
        after `since` arrived; `check` runs while waiting (e.g. every service still alive)."""
        since_ms = since * 1000

        def fresh_arrivals() -> list[float]:
            if self.error is not None:
                raise AssertionError(f"the tap failed: {self.error!r}") from self.error
            fresh = self._fresh(since_ms)
            if not fresh and check is not None:
                check()
            return fresh

        def explain() -> str:
            arrivals = self.arrivals
            latest = max((a.event_time_ms for a in arrivals), default=0) / 1000 - since
            return (
                f"no VipAction produced after the fault arrived (the tap saw {len(arrivals)} in"
                f" all, the latest event time {latest:.1f}s from the fault; it reconnected"
                f" {self.reconnects} times, last problem: {self.last_problem or '-'})"
            )

        fresh = eventually(fresh_arrivals, timeout=timeout, interval=0.1, message=explain)
        return round(min(fresh) - since, 2)

    def _fresh(self, since_ms: float) -> list[float]:
        return [a.wall for a in self.arrivals if a.event_time_ms > since_ms]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        try:
            connection = pika.BlockingConnection(self._params)
            connection.channel().queue_delete(self._queue)
            connection.close()
        except (pika.exceptions.AMQPError, OSError):
            pass
