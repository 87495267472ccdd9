"""A blocking RabbitMQ consumer for people and tests: watch VipActions arrive, or collect them.

The services publish through `RabbitPublisher`; this side only reads, one connection in the
calling thread (pika is not thread-safe). A reader connects when it is made: it is a tool for a
test or a terminal, used on the spot, never wired into a service.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pika
from pika.adapters.blocking_connection import BlockingChannel


@dataclass(frozen=True, slots=True)
class Received:
    """One message as read, with the AMQP properties the publisher promises to set."""

    routing_key: str
    body: bytes
    message_id: str | None
    content_type: str | None
    persistent: bool


class QueueReader:
    """Reads one queue, acking as it goes: for watching and collecting, not for redoing work."""

    def __init__(self, url: str, queue: str, prefetch: int = 1000) -> None:
        self._connection = pika.BlockingConnection(pika.URLParameters(url))
        self._channel: BlockingChannel = self._connection.channel()
        self._channel.basic_qos(prefetch_count=prefetch)
        self._queue = queue

    @classmethod
    def tap(cls, url: str, exchange: str, binding_key: str = "#") -> QueueReader:
        """Read a private copy of an exchange's traffic, leaving the business queue untouched."""
        reader = cls(url, queue="")
        declared = reader._channel.queue_declare("", exclusive=True, auto_delete=True)
        reader._queue = declared.method.queue
        reader._channel.queue_bind(reader._queue, exchange, routing_key=binding_key)
        return reader

    def messages(self, idle_timeout: float) -> Iterator[Received]:
        """Yield messages until none arrives for `idle_timeout` seconds.

        Each is acked as it is handed over: readers here display or collect, they don't redo work.
        """
        for method, properties, body in self._channel.consume(
            self._queue, inactivity_timeout=idle_timeout
        ):
            if method is None:
                return
            self._channel.basic_ack(method.delivery_tag)
            yield Received(
                routing_key=method.routing_key,
                body=body,
                message_id=properties.message_id,
                content_type=properties.content_type,
                persistent=properties.delivery_mode == 2,
            )

    def poll(self, idle_timeout: float) -> Received | None:
        """One message or None after `idle_timeout`: lets a caller check for Ctrl-C in between."""
        for received in self.messages(idle_timeout):
            return received
        return None

    def close(self) -> None:
        if self._connection.is_open:
            try:
                self._channel.cancel()
            finally:
                self._connection.close()
