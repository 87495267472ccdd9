from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from clickstream_common.rabbit import mask_url

from tests.support.brokers import Brokers, find_brokers
from tests.support.services import Service


@pytest.fixture(scope="session")
def brokers() -> Brokers:
    found = find_brokers()
    print(f"brokers from {found.origin}: kafka={found.kafka} rabbitmq={mask_url(found.rabbitmq)}")
    return found


@dataclass
class Names:
    """Fresh topic, group, exchange and queue names, so tests never see each other's data."""

    run: str

    @property
    def users(self) -> str:
        return f"{self.run}.user"

    @property
    def clicks(self) -> str:
        return f"{self.run}.click"

    @property
    def vip(self) -> str:
        return f"{self.run}.vip-action"

    @property
    def exchange(self) -> str:
        return f"{self.run}.vip-actions"

    @property
    def queue(self) -> str:
        return f"{self.run}.vip-actions"


@pytest.fixture
def names() -> Names:
    return Names(f"it-{uuid.uuid4().hex[:10]}")


class Pipeline:
    """The four services as processes, configured only through their environment variables."""

    def __init__(self, brokers: Brokers, names: Names, log_dir: Path) -> None:
        self.names = names
        self.log_dir = log_dir
        common = {"KAFKA_BOOTSTRAP_SERVERS": brokers.kafka, "TOPIC_PARTITIONS": "4"}
        self.env = {
            "user-state": {**common, "USERS_TOPIC": names.users},
            "enricher": {
                **common,
                "CLICKS_TOPIC": names.clicks,
                "VIP_ACTIONS_TOPIC": names.vip,
                "CONSUMER_GROUP": f"{names.run}.enricher",
                "JOIN_GRACE_MS": "3000",
            },
            "rabbit-bridge": {
                **common,
                "RABBITMQ_URL": brokers.rabbitmq,
                "VIP_ACTIONS_TOPIC": names.vip,
                "CONSUMER_GROUP": f"{names.run}.bridge",
                "RABBITMQ_EXCHANGE": names.exchange,
                "RABBITMQ_QUEUE": names.queue,
            },
            "generator": {**common, "USERS_TOPIC": names.users, "CLICKS_TOPIC": names.clicks},
        }
        self.services: list[Service] = []

    def start(self, name: str, **extra: str) -> Service:
        service = Service(name, {**self.env[name], **extra}, self.log_dir).start()
        self.services.append(service)
        return service

    def stop_all(self) -> None:
        for service in reversed(self.services):
            if service.process is not None and service.process.poll() is None:
                service.terminate()


@pytest.fixture
def pipeline(brokers: Brokers, names: Names, tmp_path: Path) -> Iterator[Pipeline]:
    running = Pipeline(brokers, names, tmp_path)
    yield running
    running.stop_all()
