"""Where the tests find real brokers, in the order docs/ARCHITECTURE.md § Conventions gives:
1. brokers named by KAFKA_BOOTSTRAP_SERVERS / RABBITMQ_URL / SCHEMA_REGISTRY_URL;
2. otherwise the project's local brokers, provisioned and started by scripts/brokers.sh.
(Testcontainers-started brokers are used by tests/containers, against the built images.)
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL_KAFKA = "127.0.0.1:9092"
LOCAL_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/%2F"
LOCAL_REGISTRY = "http://127.0.0.1:8181/apis/ccompat/v7"


@dataclass(frozen=True)
class Brokers:
    kafka: str
    rabbitmq: str
    origin: str
    # A Confluent-compatible schema registry API (Apicurio's ccompat/v7 locally).
    registry: str = LOCAL_REGISTRY


def find_brokers() -> Brokers:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    rabbitmq = os.environ.get("RABBITMQ_URL")
    registry = os.environ.get("SCHEMA_REGISTRY_URL")
    if kafka and rabbitmq and registry:
        return Brokers(kafka, rabbitmq, "environment", registry)
    subprocess.run([str(ROOT / "scripts" / "brokers.sh"), "start"], check=True, cwd=ROOT)
    return Brokers(
        kafka or LOCAL_KAFKA,
        rabbitmq or LOCAL_RABBITMQ,
        "local scripts/brokers.sh",
        registry or LOCAL_REGISTRY,
    )
