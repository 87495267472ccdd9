"""What the Kafka adapters raise, and the broker error codes they treat as passing.

`TransactionError` and `GroupFenced` are defined with the client-free ports (`records`), since the
delivery strategy reacts to them without importing the client; they are re-exported here with the
adapters' own errors.
"""

from __future__ import annotations

from confluent_kafka import KafkaError

from clickstream_common.records import GroupFenced, TransactionError

__all__ = [
    "COORDINATOR_AWAY",
    "LEADER_MOVING",
    "REBALANCING",
    "DeliveryError",
    "GroupFenced",
    "KafkaFatalError",
    "TransactionError",
]


class KafkaFatalError(RuntimeError):
    """The client reported an error it cannot recover from; the service must stop."""


class KafkaUnreachable(KafkaFatalError):
    """No broker answered in time: fatal mid-stream, but at start a broker not up yet is
    waited for (`clickstream_common.startup.wait_for`)."""


class DeliveryError(RuntimeError):
    """At least one produced record was not acknowledged; its input must not be committed."""


# A group coordinator moving or loading (a broker restart): it passes, so a commit waits it out.
COORDINATOR_AWAY = frozenset(
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

# The group has moved on from the generation an offset commit came with.
REBALANCING = frozenset(
    {
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError._ASSIGNMENT_LOST,
    }
)

# A partition without a leader for now: a topic created a moment ago, or a broker restarting.
LEADER_MOVING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_PARTITION,
    }
)
