"""Consumer-group progress, read from Kafka's own bookkeeping: how far a group has committed, who
is in it. Tests wait on these conditions instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition

from tests.support.eventually import eventually
from tests.support.kafka_clients import admin, consumer

Check = Callable[[], None] | None


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The high watermark of each partition now."""
    with consumer(bootstrap, "oracle") as reader:
        partitions = reader.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in sorted(partitions)
        }


def committed(bootstrap: str, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """The group's committed offset per partition (negative when nothing is committed)."""
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
    client = admin(bootstrap)  # kept referenced: its futures never resolve once it is collected
    futures = client.list_consumer_group_offsets([request], request_timeout=10)
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
    seen: dict[int, int] = {}

    def reached() -> bool:
        nonlocal seen
        if check is not None:
            check()
        try:
            seen = committed(bootstrap, group, topic, sorted(targets))
        except Exception:  # the coordinator may be moving; ask again
            seen = {}
        return bool(seen) and all(seen.get(p, -1) >= end for p, end in targets.items())

    eventually(
        reached,
        timeout=timeout,
        message=lambda: f"{group} committed {seen} on {topic}, short of {targets}",
    )


def describe(bootstrap: str, group: str) -> tuple[ConsumerGroupState, list[int]]:
    """The group's state, and how many partitions each of its members is assigned."""
    client = admin(bootstrap)
    futures = client.describe_consumer_groups([group], request_timeout=10)
    description = futures[group].result(timeout=30)
    return description.state, [
        len(m.assignment.topic_partitions) if m.assignment else 0 for m in description.members
    ]


def wait_members(
    bootstrap: str, group: str, members: int, timeout: float = 120, check: Check = None
) -> None:
    """Until `group` is stable with exactly `members` members, each assigned at least one
    partition: the rebalance, incremental ones' second round included, has completed."""
    state: object = None
    assigned: list[int] = []

    def settled() -> bool:
        nonlocal state, assigned
        if check is not None:
            check()
        try:
            state, assigned = describe(bootstrap, group)
        except Exception:  # the coordinator may be moving; ask again
            state, assigned = None, []
        return state == ConsumerGroupState.STABLE and len(assigned) == members and all(assigned)

    eventually(
        settled,
        timeout=timeout,
        message=lambda: (
            f"{group}: {state}, partitions per member {assigned}, not {members} members with"
            " partitions"
        ),
    )
