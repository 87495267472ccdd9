"""The schema registry image (SCHEMA_REGISTRY_IMAGE: Apicurio Registry 3.3.3) as deploy/k8s runs
it: KafkaSQL storage in the Kafka container, BACKWARD as the global compatibility rule.

A schema registered through the Confluent-compatible API keeps its id across a restart of the
container and in a brand-new container (its in-memory database is rebuilt from the Kafka
journal), and the generator image with VALUE_FORMAT=avro registers its schemas there and writes
records in the Confluent wire format with their ids.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType
from testcontainers.core.container import DockerContainer

from tests.containers.conftest import ContainerBrokers
from tests.support.eventually import eventually
from tests.support.oracle import read_topic
from tests.support.services import free_port

pytestmark = pytest.mark.containers

API = "/apis/ccompat/v7"
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

PAGE_VIEW = {
    "type": "record",
    "name": "PageView",
    "namespace": "test.registry",
    "fields": [
        {"name": "user_id", "type": "long"},
        {"name": "url", "type": "string"},
    ],
}
# a new field without a default cannot read the records written with PAGE_VIEW: not BACKWARD
PAGE_VIEW_INCOMPATIBLE = {
    **PAGE_VIEW,
    "fields": [*PAGE_VIEW["fields"], {"name": "referrer", "type": "string"}],
}


class Registry:
    """One registry container on the brokers' network, on fixed host ports (the same after a
    restart), with its KafkaSQL topics named after the test run."""

    def __init__(self, image: str, brokers: ContainerBrokers, run_id: str) -> None:
        self.image = image
        self.brokers = brokers
        self.alias = f"{run_id}-registry"
        self.topics = {
            "APICURIO_KAFKASQL_TOPIC": f"{run_id}.kafkasql-journal",
            "APICURIO_KAFKASQL_SNAPSHOTS_TOPIC": f"{run_id}.kafkasql-snapshots",
            "APICURIO_EVENTS_KAFKA_TOPIC": f"{run_id}.registry-events",
        }
        self.api_port = free_port()
        self.management_port = free_port()
        self.container: DockerContainer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}{API}"

    @property
    def internal_url(self) -> str:
        """For containers on the network."""
        return f"http://{self.alias}:8080{API}"

    def start(self) -> None:
        """A new container (new JVM, new file system) on the same topics and ports."""
        self.container = (
            DockerContainer(self.image)
            .with_network(self.brokers.network)
            .with_network_aliases(self.alias)
            .with_bind_ports(8080, self.api_port)
            .with_bind_ports(9000, self.management_port)
            .with_envs(
                APICURIO_STORAGE_KIND="kafkasql",
                APICURIO_KAFKASQL_BOOTSTRAP_SERVERS=self.brokers.kafka_internal,
                APICURIO_RULES_GLOBAL_COMPATIBILITY="BACKWARD",
                # small and quick on a 2-core machine; 1 s polls shorten the journal replay
                JAVA_OPTS_APPEND="-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1",
                APICURIO_KAFKASQL_CONSUMER_POLL_TIMEOUT="1000",
                **self.topics,
            )
        )
        self.container.start()
        self.wait_ready()

    def restart(self) -> None:
        """Stop (SIGTERM) and start the same container: its memory is gone, its files are not."""
        assert self.container is not None
        wrapped = self.container.get_wrapped_container()
        wrapped.stop(timeout=30)
        wrapped.start()
        self.wait_ready()

    def stop(self) -> None:
        if self.container is not None:
            self.container.stop()
            self.container = None

    def logs(self) -> str:
        if self.container is None:
            return ""
        out, err = self.container.get_logs()
        return ((out or b"") + (err or b""))[-4000:].decode(errors="replace")

    def wait_ready(self) -> None:
        def ready() -> bool:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.management_port}/health/ready", timeout=3
            ) as response:
                return bool(response.status == 200)

        eventually(
            ready,
            timeout=180,
            interval=0.5,
            retry_on=(OSError,),  # refused while it boots, 503 (HTTPError) until it is ready
            message=lambda: f"the schema registry is not ready; logs:\n{self.logs()}",
        )

    def request(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def register(self, subject: str, schema: object) -> tuple[int, Any]:
        return self.request("POST", f"/subjects/{subject}/versions", {"schema": json.dumps(schema)})

    def schema(self, schema_id: int) -> Any:
        status, body = self.request("GET", f"/schemas/ids/{schema_id}")
        assert status == 200, (status, body)
        return json.loads(body["schema"])


@pytest.fixture
def registry(
    schema_registry_image: str, container_brokers: ContainerBrokers, run_id: str
) -> Iterator[Registry]:
    registry = Registry(schema_registry_image, container_brokers, run_id)
    try:
        registry.start()
        yield registry
    finally:
        registry.stop()


def test_schemas_keep_their_ids_across_restarts(registry: Registry, run_id: str) -> None:
    subject = f"{run_id}.page-view-value"
    status, body = registry.register(subject, PAGE_VIEW)
    assert status == 200, body
    schema_id = body["id"]
    assert registry.schema(schema_id) == PAGE_VIEW
    # the same schema again: the same id, no new version
    assert registry.register(subject, PAGE_VIEW) == (200, {"id": schema_id})

    # KafkaSQL: the journal is a topic in Kafka (created by the registry with infinite retention)
    admin = AdminClient(
        {
            "bootstrap.servers": registry.brokers.kafka_external,
            "logger": logging.getLogger("rdkafka"),
        }
    )
    assert set(registry.topics.values()) <= set(admin.list_topics(timeout=10).topics)
    journal = ConfigResource(ResourceType.TOPIC, registry.topics["APICURIO_KAFKASQL_TOPIC"])
    (described,) = admin.describe_configs([journal]).values()
    assert described.result(timeout=10)["retention.ms"].value == "-1"

    registry.restart()
    assert registry.schema(schema_id) == PAGE_VIEW, "the schema did not survive a restart"
    status, latest = registry.request("GET", f"/subjects/{subject}/versions/latest")
    assert status == 200 and (latest["id"], latest["version"]) == (schema_id, 1), latest

    # a new container has nothing but the journal in Kafka to rebuild from
    registry.stop()
    registry.start()
    assert registry.schema(schema_id) == PAGE_VIEW, "the schema is not in Kafka"
    status, subjects = registry.request("GET", "/subjects")
    assert status == 200 and subject in subjects, subjects

    # the global rule holds: an incompatible version is refused, and ids go on from the journal
    status, body = registry.register(subject, PAGE_VIEW_INCOMPATIBLE)
    assert status == 409, (status, body)
    status, body = registry.register(f"{run_id}.other-value", PAGE_VIEW_INCOMPATIBLE)
    assert status == 200 and body["id"] != schema_id, body


def test_the_generator_image_writes_avro_with_registered_ids(
    registry: Registry,
    container_brokers: ContainerBrokers,
    service_images: dict[str, str],
    run_id: str,
) -> None:
    users, clicks = f"{run_id}.user", f"{run_id}.click"
    generator = (
        DockerContainer(service_images["generator"])
        .with_network(container_brokers.network)
        .with_envs(
            KAFKA_BOOTSTRAP_SERVERS=container_brokers.kafka_internal,
            VALUE_FORMAT="avro",
            SCHEMA_REGISTRY_URL=registry.internal_url,
            USERS_TOPIC=users,
            CLICKS_TOPIC=clicks,
            GENERATOR_USERS="50",
            GENERATOR_CLICKS="200",
            GENERATOR_RATE="0",
            GENERATOR_SEED="7",
        )
    )
    generator.start()
    try:
        status = generator.get_wrapped_container().wait(timeout=300)
        out, err = generator.get_logs()
        logs = ((out or b"") + (err or b""))[-4000:].decode(errors="replace")
        assert status["StatusCode"] == 0, logs
    finally:
        generator.stop()

    for topic, count in ((users, 50), (clicks, 200)):
        code, latest = registry.request("GET", f"/subjects/{topic}-value/versions/latest")
        assert code == 200, (topic, latest)
        rows = read_topic(container_brokers.kafka_external, topic)
        values = [row.value for row in rows if row.value is not None]
        assert len(values) == count, topic
        # the Confluent wire format: a zero byte, then the registered schema's id
        assert {(v[0], int.from_bytes(v[1:5], "big")) for v in values} == {(0, latest["id"])}
