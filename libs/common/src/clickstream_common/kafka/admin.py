"""Topic administration: the services create the topics they need, if missing, at start."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from clickstream_common.kafka.client_log import LIBRDKAFKA_LOG
from clickstream_common.kafka.errors import KafkaFatalError, KafkaUnreachable
from clickstream_common.settings import KafkaSettings
from clickstream_common.startup import Stopping, wait_for


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 4
    compact: bool = False


def ensure_topics(
    settings: KafkaSettings,
    specs: Iterable[TopicSpec],
    timeout: float = 30,
    *,
    stopping: Stopping | None = None,
) -> None:
    """Create missing topics and wait until the broker lists them; existing ones are left as
    they are. With `stopping` (a service starting), a Kafka that does not answer yet is waited
    for until it does or shutdown is requested; without, it raises `KafkaUnreachable`.

    The controller answers a create before every broker's metadata has the topic: a client
    already connected (a reader started right after) could otherwise be told it does not exist.
    """
    specs = list(specs)
    if stopping is not None:
        wait_for(
            f"Kafka at {settings.bootstrap_servers}",
            lambda: ensure_topics(settings, specs, timeout),
            unavailable=KafkaUnreachable,
            stopping=stopping,
        )
        return
    admin = AdminClient({**settings.client_config(), "logger": LIBRDKAFKA_LOG})  # type: ignore[dict-item]
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise KafkaUnreachable(
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
            error = exc.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            # a broker still starting answers "timed out" or "no controller": worth waiting for
            failure = KafkaUnreachable if error.retriable() else KafkaFatalError
            raise failure(f"cannot create topic {topic}: {exc}") from exc
    _await_listed(admin, {spec.topic for spec in wanted}, timeout)


def _await_listed(admin: AdminClient, topics: set[str], timeout: float) -> None:
    def unlisted() -> set[str]:
        listed = admin.list_topics(timeout=timeout).topics
        return {
            name
            for name in topics
            if name not in listed
            or listed[name].error is not None
            or not listed[name].partitions
            or any(p.leader < 0 for p in listed[name].partitions.values())
        }

    retrying = Retrying(
        retry=retry_if_result(bool), stop=stop_after_delay(timeout), wait=wait_fixed(0.1)
    )
    try:
        retrying(unlisted)
    except RetryError:
        raise KafkaFatalError(
            f"topics {sorted(topics)} created but not listed by the broker after {timeout:g} s"
        ) from None


def partition_count(settings: KafkaSettings, topic: str, timeout: float = 30) -> int:
    """How many partitions `topic` has (a changelog must have as many as its input)."""
    admin = AdminClient({**settings.client_config(), "logger": LIBRDKAFKA_LOG})  # type: ignore[dict-item]
    try:
        meta = admin.list_topics(topic, timeout=timeout).topics.get(topic)
    except KafkaException as exc:
        raise KafkaUnreachable(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {exc.args[0]}"
        ) from None
    if meta is None or meta.error is not None or not meta.partitions:
        raise KafkaFatalError(f"topic {topic!r} not found")
    return len(meta.partitions)
