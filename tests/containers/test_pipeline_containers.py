"""The four service images on one network with Kafka and RabbitMQ, configured only through their
documented environment variables: clicks in, VipActions out in RabbitMQ, equal to the oracle;
then SIGTERM stops each container with exit code 0 and its offsets committed."""

from __future__ import annotations

import pytest
from testcontainers.core.container import DockerContainer

from tests.containers.conftest import ContainerBrokers
from tests.support.collect import drain
from tests.support.eventually import eventually
from tests.support.groups import committed, end_offsets
from tests.support.oracle import compare, expected_outcome, read_topic
from tests.support.services import answers_ready

pytestmark = pytest.mark.containers

PORTS = {"user-state": 8080, "enricher": 8081, "rabbit-bridge": 8082, "generator": 8083}


def start(
    image: str, name: str, alias: str, brokers: ContainerBrokers, **env: str
) -> DockerContainer:
    container = (
        DockerContainer(image)
        .with_network(brokers.network)
        .with_network_aliases(alias)
        .with_exposed_ports(PORTS[name])
        .with_envs(KAFKA_BOOTSTRAP_SERVERS=brokers.kafka_internal, **env)
    )
    container.start()
    return container


def logs(container: DockerContainer) -> str:
    out, err = container.get_logs()
    return ((out or b"") + (err or b""))[-4000:].decode(errors="replace")


def wait_ready(container: DockerContainer, name: str, timeout: float = 120) -> None:
    url = f"http://127.0.0.1:{container.get_exposed_port(PORTS[name])}/readyz"
    eventually(
        lambda: answers_ready(url),
        timeout=timeout,
        interval=0.5,
        retry_on=(OSError,),
        message=lambda: f"{name} not ready; logs:\n{logs(container)}",
    )


def stop_with_sigterm(container: DockerContainer, grace: int = 60) -> int:
    """What Kubernetes does: SIGTERM, then SIGKILL only after the grace period."""
    wrapped = container.get_wrapped_container()
    wrapped.stop(timeout=grace)
    wrapped.reload()
    return int(wrapped.attrs["State"]["ExitCode"])


def committed_lag(bootstrap: str, group: str, topic: str) -> int:
    ends = end_offsets(bootstrap, topic)
    done = committed(bootstrap, group, topic, sorted(ends))
    return sum(end - max(done[p], 0) for p, end in ends.items())


def test_images_run_the_pipeline_and_stop_cleanly(
    service_images: dict[str, str], container_brokers: ContainerBrokers, run_id: str
) -> None:
    brokers = container_brokers
    topics = {
        "USERS_TOPIC": f"{run_id}.user",
        "CLICKS_TOPIC": f"{run_id}.click",
        "VIP_ACTIONS_TOPIC": f"{run_id}.vip-action",
    }
    queue = f"{run_id}.vip-actions"
    started: list[DockerContainer] = []
    try:
        user_state = start(
            service_images["user-state"],
            "user-state",
            f"{run_id}-user-state",
            brokers,
            USERS_TOPIC=topics["USERS_TOPIC"],
        )
        started.append(user_state)
        wait_ready(user_state, "user-state")
        enricher = start(
            service_images["enricher"],
            "enricher",
            f"{run_id}-enricher",
            brokers,
            CLICKS_TOPIC=topics["CLICKS_TOPIC"],
            VIP_ACTIONS_TOPIC=topics["VIP_ACTIONS_TOPIC"],
            CONSUMER_GROUP=f"{run_id}.enricher",
            USER_STATE_URL=f"http://{run_id}-user-state:8080",
        )
        started.append(enricher)
        bridge = start(
            service_images["rabbit-bridge"],
            "rabbit-bridge",
            f"{run_id}-bridge",
            brokers,
            VIP_ACTIONS_TOPIC=topics["VIP_ACTIONS_TOPIC"],
            CONSUMER_GROUP=f"{run_id}.bridge",
            RABBITMQ_URL=brokers.rabbitmq_internal,
            RABBITMQ_EXCHANGE=queue,
            RABBITMQ_QUEUE=queue,
        )
        started.append(bridge)
        wait_ready(enricher, "enricher")
        wait_ready(bridge, "rabbit-bridge")
        generator = start(
            service_images["generator"],
            "generator",
            f"{run_id}-generator",
            brokers,
            USERS_TOPIC=topics["USERS_TOPIC"],
            CLICKS_TOPIC=topics["CLICKS_TOPIC"],
            GENERATOR_USERS="300",
            GENERATOR_CLICKS="4000",
            GENERATOR_RATE="0",
            GENERATOR_SEED="3",
            GENERATOR_MALFORMED_SHARE="0.01",
        )
        started.append(generator)
        status = generator.get_wrapped_container().wait(timeout=300)
        assert status["StatusCode"] == 0, logs(generator)

        expected = expected_outcome(
            read_topic(brokers.kafka_external, topics["USERS_TOPIC"]),
            read_topic(brokers.kafka_external, topics["CLICKS_TOPIC"]),
        )
        bodies = drain(brokers.rabbitmq_external, queue, sum(expected.vip_rows.values()))
        result = compare(expected.vip_rows, bodies)
        print(f"\ncontainers: {result.line()}")
        assert (result.missing, result.unexpected, result.duplicated) == (0, 0, 0), result.line()

        for container, name, group, topic in (
            (enricher, "enricher", f"{run_id}.enricher", topics["CLICKS_TOPIC"]),
            (bridge, "rabbit-bridge", f"{run_id}.bridge", topics["VIP_ACTIONS_TOPIC"]),
        ):
            assert stop_with_sigterm(container) == 0, logs(container)
            assert committed_lag(brokers.kafka_external, group, topic) == 0, name
        assert stop_with_sigterm(user_state) == 0, logs(user_state)
    finally:
        for container in started:
            container.stop()
