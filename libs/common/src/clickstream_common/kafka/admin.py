"""Topic administration: the services create the topics they need, if missing, at start."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from clickstream_common.kafka.client_log import LIBRDKAFKA_LOG
from clickstream_common.kafka.errors import KafkaFatalError
from clickstream_common.settings import KafkaSettings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 4
    compact: bool = False


def ensure_topics(settings: KafkaSettings, specs: Iterable[TopicSpec], timeout: float = 30) -> None:
    """Create missing topics; existing ones are left as they are."""
    admin = AdminClient({**settings.client_config(), "logger": LIBRDKAFKA_LOG})  # type: ignore[dict-item]
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise KafkaFatalError(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {exc.args[0]}"
        ) from None
    wanted = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=-1,
            config={"cleanup.policy": "compact"} if spec.compact else {},
        )
        for spec in specs
        if spec.name not in existing
    ]
    if not wanted:
        return
    for topic, future in admin.create_topics(wanted, request_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise KafkaFatalError(f"cannot create topic {topic}: {exc}") from exc
