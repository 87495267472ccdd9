"""Where published messages land: the exchange, the queue and the binding between them.

Declaring is idempotent, so both the publisher (on every connection) and a one-off
`declare_topology` may do it; the two must declare the same arguments or the broker refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pika

from clickstream_common.rabbit.connection import (
    RabbitUnavailable,
    describe,
    parameters,
    secrets_of,
)
from clickstream_common.settings import mask_url


@dataclass(frozen=True)
class Topology:
    """Where messages go: a durable topic exchange and one durable queue bound to it."""

    exchange: str = "vip-actions"
    queue: str = "vip-actions"
    binding_key: str = "#"
    queue_type: Literal["classic", "quorum"] = "quorum"
    # Of every message published: JSON, or Avro in the Confluent wire format (RABBITMQ_FORMAT).
    content_type: str = "application/json"


def queue_arguments(topology: Topology) -> dict[str, Any]:
    return {"x-queue-type": topology.queue_type}


def declare_topology(url: str, topology: Topology) -> None:
    """Declare exchange, queue and binding with a short-lived blocking connection."""
    secrets = secrets_of(url)
    params = parameters(url, "clickstream-declare-topology")
    try:
        connection = pika.BlockingConnection(params)
    except Exception as exc:
        raise RabbitUnavailable(
            f"cannot connect to RabbitMQ at {mask_url(url)}: {describe(exc, secrets)}"
        ) from None
    try:
        channel = connection.channel()
        channel.exchange_declare(topology.exchange, exchange_type="topic", durable=True)
        channel.queue_declare(topology.queue, durable=True, arguments=queue_arguments(topology))
        channel.queue_bind(topology.queue, topology.exchange, routing_key=topology.binding_key)
    except Exception as exc:
        raise RabbitUnavailable(
            f"declaring {topology} on {mask_url(url)} failed: {describe(exc, secrets)}"
        ) from None
    finally:
        if connection.is_open:
            connection.close()
