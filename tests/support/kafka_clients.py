"""Plain confluent_kafka clients for the tests' own reading and writing.

Tests write their inputs and read their outputs with the client library itself, not through the
project's adapters, so a bug in those adapters cannot hide itself in the test that checks them.
`KafkaClients` backs the fixtures in tests/conftest.py: it remembers what it made and closes it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def fresh_name(prefix: str = "it") -> str:
    """A topic, group or queue name no other test (nor an earlier run) has used."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def admin(bootstrap: str) -> AdminClient:
    # log_level 0: the connection noise of a short-lived admin client is not the test's output.
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int = 1,
    *,
    compact: bool = False,
    config: dict[str, str] | None = None,
) -> str:
    """Create `name` with `partitions` partitions (it must not exist yet); returns the name."""
    config = {**({"cleanup.policy": "compact"} if compact else {}), **(config or {})}
    topic = NewTopic(name, num_partitions=partitions, replication_factor=-1, config=config)
    client = admin(bootstrap)  # kept referenced until the future resolves
    for future in client.create_topics([topic], request_timeout=30).values():
        try:
            future.result(timeout=60)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return name


@contextlib.contextmanager
def consumer(bootstrap: str, group: str, **config: Any) -> Iterator[Consumer]:
    """A consumer that commits nothing on its own, closed on the way out."""
    made = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **_auto_commit_off(config)})
    try:
        yield made
    finally:
        made.close()


def _auto_commit_off(config: dict[str, Any]) -> dict[str, Any]:
    return {"enable.auto.commit": False, **config}


class KafkaClients:
    """Producers and consumers made for one test, all closed when it ends."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._producers: list[Producer] = []
        self._consumers: list[Consumer] = []

    def producer(self, **config: Any) -> Producer:
        """Keys with dots go in as `**{"linger.ms": 5}`."""
        made = Producer({"bootstrap.servers": self.bootstrap, **config})
        self._producers.append(made)
        return made

    def consumer(self, group: str | None = None, **config: Any) -> Consumer:
        made = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": group or fresh_name("group"),
                **_auto_commit_off(config),
            }
        )
        self._consumers.append(made)
        return made

    def close(self) -> None:
        """Consumers leave their groups; what a producer still holds is dropped: every test that
        cares flushed and checked its writes itself, and a purge cannot hang on a broker gone."""
        for made in self._consumers:
            with contextlib.suppress(RuntimeError, KafkaException):  # closed by the test already
                made.close()
        for producer in self._producers:
            producer.purge()
            producer.flush(0)
            producer.close()
