"""The README's `docker run` commands, run as written except for what isolates this test:
the image tag, the broker addresses (the Testcontainers brokers), fresh topic, group, exchange
and queue names, a free HTTP port, and `-d` instead of `--rm` so the exit code can be read."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest

from tests.containers.conftest import ContainerBrokers, image
from tests.support.brokers import ROOT
from tests.support.collect import drain
from tests.support.eventually import eventually
from tests.support.services import answers_ready, free_port

pytestmark = pytest.mark.containers

BLOCK = re.compile(r"<!-- docker-run -->\n```sh\n(.*?)```", re.S)


def readme_commands() -> dict[str, list[str]]:
    text = (ROOT / "README.md").read_text()
    match = BLOCK.search(text)
    assert match, "README.md has no <!-- docker-run --> block"
    commands = {}
    for line in match.group(1).splitlines():
        if line.startswith("docker run "):
            words = shlex.split(line)
            commands[words[-1]] = words
    return commands


def adapt(words: list[str], overrides: dict[str, str], name: str) -> list[str]:
    adapted: list[str] = []
    given: set[str] = set()
    iterator = iter(words[:-1])
    for word in iterator:
        if word == "--rm":
            continue
        if word == "-e":
            variable, _, value = next(iterator).partition("=")
            given.add(variable)
            adapted += ["-e", f"{variable}={overrides.get(variable, value)}"]
            continue
        adapted.append(word)
    for variable, value in overrides.items():
        if variable not in given:
            adapted += ["-e", f"{variable}={value}"]
    return [*adapted[:2], "-d", "--name", name, *adapted[2:], image(words[-1])]


def docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def wait_ready(port: int, name: str, timeout: float = 120) -> None:
    eventually(
        lambda: answers_ready(f"http://127.0.0.1:{port}/readyz"),
        timeout=timeout,
        interval=0.5,
        retry_on=(OSError,),
        message=lambda: f"{name} not ready:\n{docker('logs', name)[-3000:]}",
    )


def test_readme_commands_run_each_service_alone(
    service_images: dict[str, str], container_brokers: ContainerBrokers, run_id: str
) -> None:
    commands = readme_commands()
    assert set(commands) == set(service_images), "one docker run command per service"
    brokers = container_brokers
    ports = {service: free_port() for service in commands}
    queue = f"{run_id}.vip-actions"
    shared = {
        "KAFKA_BOOTSTRAP_SERVERS": brokers.kafka_external,
        "USERS_TOPIC": f"{run_id}.user",
        "CLICKS_TOPIC": f"{run_id}.click",
        "VIP_ACTIONS_TOPIC": f"{run_id}.vip-action",
    }
    overrides = {
        "user-state": {**shared},
        "enricher": {
            **shared,
            "USER_STATE_URL": f"http://127.0.0.1:{ports['user-state']}",
            "CONSUMER_GROUP": f"{run_id}.e",
        },
        "rabbit-bridge": {
            **shared,
            "RABBITMQ_URL": brokers.rabbitmq_external,
            "RABBITMQ_EXCHANGE": queue,
            "RABBITMQ_QUEUE": queue,
            "CONSUMER_GROUP": f"{run_id}.b",
        },
        "generator": {**shared, "GENERATOR_USERS": "100", "GENERATOR_CLICKS": "1000"},
    }
    names = {service: f"{run_id}-{service}" for service in commands}
    try:
        for service in ("user-state", "enricher", "rabbit-bridge", "generator"):
            env = {**overrides[service], "HTTP_PORT": str(ports[service])}
            docker(*adapt(commands[service], env, names[service])[1:])
            if service != "generator":
                wait_ready(ports[service], names[service])
        assert docker("wait", names["generator"]) == "0", docker("logs", names["generator"])
        assert drain(brokers.rabbitmq_external, queue, until=1), "no VIP action reached RabbitMQ"
        for service in ("enricher", "rabbit-bridge", "user-state"):
            docker("stop", "--time", "60", names[service])
            code = docker("inspect", "--format", "{{.State.ExitCode}}", names[service])
            assert code == "0", (
                f"{service} exited {code}:\n{docker('logs', names[service])[-3000:]}"
            )
    finally:
        subprocess.run(["docker", "rm", "-f", *names.values()], capture_output=True, timeout=120)
