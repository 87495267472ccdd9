"""Consumer-group progress, read from Kafka's own bookkeeping: how far a group has committed, who
is in it. Tests wait on these conditions instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

Check = Callable[[], None] | None


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The high watermark of each partition now."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "oracle"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in sorted(partitions)
        }
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """The group's committed offset per partition (negative when nothing is committed)."""
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
    admin = _admin(bootstrap)  # kept referenced: its futures never resolve once it is collected
    futures = admin.list_consumer_group_offsets([request], request_timeout=10)
    result = futures[group].result(timeout=30)
    return {tp.partition: tp.offset for tp in result.topic_partitions}


def wait_committed(
    bootstrap: str,
    group: str,
    topic: str,
    targets: dict[int, int],
    timeout: float = 240,
    check: Check = None,
) -> None:
    """Until `group` has committed at least `targets` (partition -> next offset) on `topic`."""
    deadline = time.monotonic() + timeout
    seen: dict[int, int] = {}
    while time.monotonic() < deadline:
        if check is not None:
            check()
        try:
            seen = committed(bootstrap, group, topic, sorted(targets))
        except Exception:  # the coordinator may be moving; ask again
            seen = {}
        if seen and all(seen.get(p, -1) >= end for p, end in targets.items()):
            return
        time.sleep(0.2)  # polling interval
    raise AssertionError(
        f"{group} committed {seen} on {topic}, short of {targets} after {timeout}s"
    )


def describe(bootstrap: str, group: str) -> tuple[ConsumerGroupState, list[int]]:
    """The group's state, and how many partitions each of its members is assigned."""
    admin = _admin(bootstrap)
    futures = admin.describe_consumer_groups([group], request_timeout=10)
    description = futures[group].result(timeout=30)
    return description.state, [
        len(m.assignment.topic_partitions) if m.assignment else 0 for m in description.members
    ]


def wait_members(
    bootstrap: str, group: str, members: int, timeout: float = 120, check: Check = None
) -> None:
    """Until `group` is stable with exactly `members` members, each assigned at least one
    partition: the rebalance, incremental ones' second round included, has completed."""
    deadline = time.monotonic() + timeout
    state: object = None
    assigned: list[int] = []
    while time.monotonic() < deadline:
        if check is not None:
            check()
        try:
            state, assigned = describe(bootstrap, group)
        except Exception:
            state, assigned = None, []
        if state == ConsumerGroupState.STABLE and len(assigned) == members and all(assigned):
            return
        time.sleep(0.2)  # polling interval
    raise AssertionError(
        f"{group}: {state}, partitions per member {assigned}, not {members} members with"
        f" partitions, after {timeout}s"
    )
