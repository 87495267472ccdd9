"""Collecting what reached RabbitMQ, checking the AMQP properties DESIGN.md promises on the way."""

from __future__ import annotations

import time

from clickstream_common.rabbit_consumer import QueueReader


def drain(rabbitmq_url: str, queue: str, until: int, timeout: float = 180) -> list[bytes]:
    """Collect messages until `until` arrived and then a quiet spell shows nothing more comes."""
    reader = QueueReader(rabbitmq_url, queue)
    bodies: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for received in reader.messages(idle_timeout=3):
                assert received.persistent and received.content_type == "application/json"
                assert received.message_id and received.message_id.encode() in received.body
                bodies.append(received.body)
            if len(bodies) >= until:
                return bodies
    finally:
        reader.close()
    return bodies
