from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickstream_common.rabbit import mask_url

from tests.support.brokers import Brokers, find_brokers
from tests.support.pipeline import Names, Pipeline


@pytest.fixture(scope="session")
def brokers() -> Brokers:
    found = find_brokers()
    print(f"brokers from {found.origin}: kafka={found.kafka} rabbitmq={mask_url(found.rabbitmq)}")
    return found


@pytest.fixture
def names() -> Names:
    return Names(f"it-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def pipeline(brokers: Brokers, names: Names, tmp_path: Path) -> Iterator[Pipeline]:
    running = Pipeline(brokers, names, tmp_path)
    yield running
    running.stop_all()
