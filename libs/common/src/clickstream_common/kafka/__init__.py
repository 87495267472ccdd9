"""confluent-kafka adapters: batch consume, table read, changelog restore, checked and
transactional produce, topic admin.

The services see `Record` / `OutRecord` only. Offsets are committed explicitly, and only by the
caller once the work they cover is done (or, exactly once, in the transaction holding that work's
outputs); delivery failures are raised, never swallowed. Constructors create clients but do no
protocol I/O: `BatchConsumer.subscribe`, `TableReader.start` and `TransactionalProducer.start` do.
The delivery strategies built on these are in `clickstream_common.delivery`.
"""

from clickstream_common.kafka.admin import TopicSpec, ensure_topics, partition_count
from clickstream_common.kafka.changelog import ChangelogReader
from clickstream_common.kafka.consumer import BatchConsumer
from clickstream_common.kafka.errors import (
    DeliveryError,
    GroupFenced,
    KafkaFatalError,
    KafkaUnreachable,
    TransactionError,
)
from clickstream_common.kafka.producer import CheckedProducer
from clickstream_common.kafka.table import TableReader
from clickstream_common.kafka.transactions import TransactionalProducer

__all__ = [
    "BatchConsumer",
    "ChangelogReader",
    "CheckedProducer",
    "DeliveryError",
    "GroupFenced",
    "KafkaFatalError",
    "KafkaUnreachable",
    "TableReader",
    "TopicSpec",
    "TransactionError",
    "TransactionalProducer",
    "ensure_topics",
    "partition_count",
]
