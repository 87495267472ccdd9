"""Fixtures every broker suite shares. Each suite's own conftest provides `brokers` (anything with
a `kafka` bootstrap address); these build on it, so tests/faults gets them for its own pair."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from clickstream_common.logging import configure_logging
from confluent_kafka import Consumer, Producer

from tests.support.kafka_clients import KafkaClients, create_topic, fresh_name


@pytest.fixture
def kafka_clients(brokers: Any) -> Iterator[KafkaClients]:
    clients = KafkaClients(brokers.kafka)
    yield clients
    clients.close()


@pytest.fixture
def kafka_producer(kafka_clients: KafkaClients) -> Callable[..., Producer]:
    """`kafka_producer(**config)`: a plain producer, closed when the test ends."""
    return kafka_clients.producer


@pytest.fixture
def kafka_consumer(kafka_clients: KafkaClients) -> Callable[..., Consumer]:
    """`kafka_consumer(group=None, **config)`: a plain consumer (a fresh group unless named, no
    auto-commit), closed when the test ends."""
    return kafka_clients.consumer


@pytest.fixture
def topic_name() -> Callable[[str], str]:
    """`topic_name(prefix)`: a fresh name, so tests never see each other's data."""
    return fresh_name


@pytest.fixture
def new_topic(brokers: Any) -> Callable[..., str]:
    """`new_topic(partitions=1, *, name=None, prefix="it", compact=False, config=None)`: create
    a topic (a fresh name unless given) and return its name. Topics are left behind, like the
    services' own: their names are never used again."""

    def create(
        partitions: int = 1,
        *,
        name: str | None = None,
        prefix: str = "it",
        compact: bool = False,
        config: dict[str, str] | None = None,
    ) -> str:
        return create_topic(
            brokers.kafka, name or fresh_name(prefix), partitions, compact=compact, config=config
        )

    return create


def pytest_configure(config: pytest.Config) -> None:
    """The services' own logging set-up, so the project's structlog lines reach stdlib logging
    (and `caplog`, which the secret-hygiene tests read) as they do in a running service."""
    configure_logging("tests", "debug", "console")
