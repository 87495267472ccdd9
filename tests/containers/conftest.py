"""Container fixtures: the engine, the four service images built from their Dockerfiles, and
Kafka and RabbitMQ started by Testcontainers on one network.

Image names come from the environment (KAFKA_IMAGE, RABBITMQ_IMAGE, SCHEMA_REGISTRY_IMAGE,
PYTHON_BASE_IMAGE), so where a registry is reachable the official images are used;
`scripts/container-engine.sh env` names the locally built ones here. Kafka is configured through
the official image's KAFKA_* variables, which the local image honours too.
"""

from __future__ import annotations

import logging
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pika
import pytest
from confluent_kafka.admin import AdminClient
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from tests.support.brokers import ROOT
from tests.support.eventually import eventually
from tests.support.services import free_port

SERVICES = ("user-state", "enricher", "rabbit-bridge", "generator")
KAFKA_IMAGE = os.environ.get("KAFKA_IMAGE", "apache/kafka:4.1.1")
RABBITMQ_IMAGE = os.environ.get("RABBITMQ_IMAGE", "rabbitmq:3.13-management")
# Apicurio Registry: the official image, or the one `scripts/container-engine.sh brokers` builds
# from Maven Central (deploy/images/schema-registry), configured by the same variables.
SCHEMA_REGISTRY_IMAGE = os.environ.get(
    "SCHEMA_REGISTRY_IMAGE", "quay.io/apicurio/apicurio-registry:3.3.3"
)
IMAGE_TAG = os.environ.get("SERVICE_IMAGE_TAG", "test")


def _engine_problem() -> str | None:
    try:
        result = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"docker CLI unusable: {exc}"
    if result.returncode != 0:
        host = os.environ.get("DOCKER_HOST", "(DOCKER_HOST unset)")
        return f"no Docker-compatible engine answers at {host}: {result.stderr.strip()[:200]}"
    return None


@pytest.fixture(scope="session")
def engine() -> None:
    problem = _engine_problem()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{problem}; CI must run the container suite (scripts/container-engine.sh)")
    pytest.skip(f"{problem}; `scripts/container-engine.sh all` starts podman with the images")


@pytest.fixture(scope="session")
def schema_registry_image(engine: None) -> str:
    """SCHEMA_REGISTRY_IMAGE; a local one that is missing (an engine set up before the registry
    image existed) is built now, by the script that builds the broker images (cached)."""
    if SCHEMA_REGISTRY_IMAGE.startswith("localhost/"):
        exists = subprocess.run(
            ["docker", "image", "inspect", SCHEMA_REGISTRY_IMAGE], capture_output=True
        )
        if exists.returncode != 0:
            result = subprocess.run(
                [str(ROOT / "scripts" / "container-engine.sh"), "brokers"],
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
            )
            assert result.returncode == 0, (
                f"building {SCHEMA_REGISTRY_IMAGE}:\n{result.stderr[-3000:]}"
            )
    return SCHEMA_REGISTRY_IMAGE


def image(service: str) -> str:
    return f"{service}:{IMAGE_TAG}"


@pytest.fixture(scope="session")
def service_images(engine: None) -> dict[str, str]:
    """Build each image with the docker CLI from its unchanged Dockerfile."""
    base = os.environ.get("PYTHON_BASE_IMAGE")
    for service in SERVICES:
        command = [
            "docker",
            "build",
            "-q",
            "-f",
            f"services/{service}/Dockerfile",
            "-t",
            image(service),
        ]
        if base:
            command += ["--build-arg", f"BASE_IMAGE={base}"]
        result = subprocess.run([*command, "."], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, f"building {service} failed:\n{result.stderr[-3000:]}"
    return {service: image(service) for service in SERVICES}


@dataclass(frozen=True)
class ContainerBrokers:
    network: Network
    kafka_internal: str  # for containers on the network
    kafka_external: str  # for this test process
    rabbitmq_internal: str
    rabbitmq_external: str


def _kafka(network: Network, port: int) -> DockerContainer:
    return (
        DockerContainer(KAFKA_IMAGE)
        .with_network(network)
        .with_network_aliases("kafka")
        .with_bind_ports(port, port)
        .with_envs(
            KAFKA_NODE_ID="1",
            KAFKA_PROCESS_ROLES="broker,controller",
            KAFKA_LISTENERS=f"INTERNAL://0.0.0.0:19092,EXTERNAL://0.0.0.0:{port},CONTROLLER://0.0.0.0:9093",
            KAFKA_ADVERTISED_LISTENERS=f"INTERNAL://kafka:19092,EXTERNAL://127.0.0.1:{port}",
            KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
            KAFKA_INTER_BROKER_LISTENER_NAME="INTERNAL",
            KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
            KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
            KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
            KAFKA_NUM_PARTITIONS="4",
        )
    )


def _wait(
    check: Callable[[], object], what: str, container: DockerContainer, timeout: float = 120
) -> None:
    def explain() -> str:
        logs = b"".join(part or b"" for part in container.get_logs())[-3000:]
        return f"{what} not answering; logs:\n{logs.decode(errors='replace')}"

    eventually(check, timeout=timeout, interval=1, retry_on=(Exception,), message=explain)


@pytest.fixture(scope="session")
def container_brokers(engine: None) -> Iterator[ContainerBrokers]:
    network = Network()
    network.create()
    kafka_port = free_port()
    kafka = _kafka(network, kafka_port)
    rabbit = (
        DockerContainer(RABBITMQ_IMAGE)
        .with_network(network)
        .with_network_aliases("rabbitmq")
        .with_exposed_ports(5672)
    )
    try:  # inside: a container that fails to start still has its network removed
        kafka.start()
        rabbit.start()
        external = f"127.0.0.1:{kafka_port}"
        # librdkafka's connection-refused lines while the broker boots are expected: route them
        # through logging instead of stderr.
        admin = AdminClient({"bootstrap.servers": external, "logger": logging.getLogger("rdkafka")})
        _wait(lambda: admin.list_topics(timeout=5).brokers, "Kafka container", kafka)
        rabbit_url = f"amqp://guest:guest@127.0.0.1:{rabbit.get_exposed_port(5672)}/%2F"

        def rabbit_answers() -> bool:
            pika.BlockingConnection(pika.URLParameters(rabbit_url)).close()
            return True

        _wait(rabbit_answers, "RabbitMQ container", rabbit)
        yield ContainerBrokers(
            network=network,
            kafka_internal="kafka:19092",
            kafka_external=external,
            rabbitmq_internal="amqp://guest:guest@rabbitmq:5672/%2F",
            rabbitmq_external=rabbit_url,
        )
    finally:
        rabbit.stop()
        kafka.stop()
        network.remove()


@pytest.fixture
def run_id() -> str:
    return f"ct-{uuid.uuid4().hex[:8]}"
