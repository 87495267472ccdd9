"""rabbit-bridge's configuration, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from clickstream_common.rabbit import CA_FILE_VARIABLE, Topology
from clickstream_common.settings import Env, KafkaSettings, ObservabilitySettings


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings
    observability: ObservabilitySettings
    rabbitmq_url: str
    rabbitmq_ca_file: str | None
    topology: Topology
    vip_actions_topic: str
    dead_letter_topic: str
    consumer_group: str
    routing_prefix: str
    batch_size: int

    def __repr__(self) -> str:
        return f"Settings(vip_actions_topic={self.vip_actions_topic!r}, rabbitmq_url=***)"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = Env(dict(environ)) if environ is not None else Env()
        topic = env.text("VIP_ACTIONS_TOPIC", "vip-action")
        # A secret: RABBITMQ_URL_FILE may name a mounted file holding it instead.
        url = env.secret("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"
        if not url.startswith(("amqp://", "amqps://")):
            env.problems.append("RABBITMQ_URL must start with amqp:// or amqps://")
        ca_file = env.optional_str(CA_FILE_VARIABLE)
        if ca_file is not None and not (os.path.isfile(ca_file) and os.access(ca_file, os.R_OK)):
            env.problems.append(f"{CA_FILE_VARIABLE}={ca_file!r} is not a readable file")
        queue_type: Literal["classic", "quorum"] = (
            "classic"
            if env.choice("RABBITMQ_QUEUE_TYPE", "quorum", ("quorum", "classic")) == "classic"
            else "quorum"
        )
        settings = cls(
            kafka=KafkaSettings.read(env),
            observability=ObservabilitySettings.read(env, default_port=8082),
            rabbitmq_url=url,
            rabbitmq_ca_file=ca_file,
            topology=Topology(
                exchange=env.text("RABBITMQ_EXCHANGE", "vip-actions"),
                queue=env.text("RABBITMQ_QUEUE", "vip-actions"),
                binding_key=env.text("RABBITMQ_BINDING_KEY", "#"),
                queue_type=queue_type,
            ),
            vip_actions_topic=topic,
            dead_letter_topic=env.text("VIP_ACTIONS_DLQ_TOPIC", f"{topic}.dlq"),
            consumer_group=env.text("CONSUMER_GROUP", "rabbit-bridge"),
            routing_prefix=env.text("ROUTING_KEY_PREFIX", "vip"),
            batch_size=env.integer("BATCH_SIZE", 2000, min=1, max=100_000),
        )
        env.check()
        return settings
