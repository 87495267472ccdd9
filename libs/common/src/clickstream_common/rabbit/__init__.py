"""The RabbitMQ adapters: publish with confirms (the bridge), read a queue (tests and vip-watch).

Layout, one idea per module:
- `connection`: URL to pika parameters (TLS, RABBITMQ_CA_FILE), password masking, error text;
- `topology`: the exchange, queue and binding, and declaring them;
- `confirms`: outbound messages, how a batch settled, the per-batch confirm bookkeeping;
- `session`: one connection's I/O thread (pika is not thread-safe);
- `publisher`: `RabbitPublisher`, which owns a session and replaces it when it is lost;
- `reader`: `QueueReader`, a blocking consumer for people and tests.
"""

from clickstream_common.rabbit.confirms import (
    REASON_CONFIRM_TIMEOUT,
    REASON_CONNECTION_LOST,
    REASON_NACKED,
    OutboundMessage,
    PublishOutcome,
)
from clickstream_common.rabbit.connection import CA_FILE_VARIABLE, RabbitRefused, RabbitUnavailable
from clickstream_common.rabbit.publisher import PendingPublish, RabbitPublisher
from clickstream_common.rabbit.reader import QueueReader, Received
from clickstream_common.rabbit.topology import Topology, declare_topology
from clickstream_common.settings import mask_url

__all__ = [
    "CA_FILE_VARIABLE",
    "REASON_CONFIRM_TIMEOUT",
    "REASON_CONNECTION_LOST",
    "REASON_NACKED",
    "OutboundMessage",
    "PendingPublish",
    "PublishOutcome",
    "QueueReader",
    "RabbitPublisher",
    "RabbitRefused",
    "RabbitUnavailable",
    "Received",
    "Topology",
    "declare_topology",
    "mask_url",
]
