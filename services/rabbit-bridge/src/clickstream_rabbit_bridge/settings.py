"""rabbit-bridge's configuration, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from clickstream_common.rabbit import CA_FILE_VARIABLE, Topology
from clickstream_common.settings import Env, FormatSettings, KafkaSettings, ObservabilitySettings

JSON_CONTENT_TYPE = "application/json"
# The record's own bytes: a zero byte, the 4-byte schema id, the Avro binary (Confluent's wire
# format); a consumer decodes it with the registry, as a Kafka consumer would.
AVRO_CONTENT_TYPE = "application/vnd.confluent.avro"


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings
    observability: ObservabilitySettings
    formats: FormatSettings
    # RABBITMQ_FORMAT=json (the default): the business's consumers read JSON whatever Kafka holds.
    rabbit_json: bool
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
        formats = FormatSettings.read(env)
        rabbit_format = env.choice("RABBITMQ_FORMAT", "json", ("json", "avro"))
        if rabbit_format == "avro" and formats.value_format != "avro":
            env.problems.append("RABBITMQ_FORMAT=avro needs VALUE_FORMAT=avro (Avro from Kafka)")
        settings = cls(
            kafka=KafkaSettings.read(env),
            observability=ObservabilitySettings.read(env, default_port=8082),
            formats=formats,
            rabbit_json=rabbit_format == "json",
            rabbitmq_url=url,
            rabbitmq_ca_file=ca_file,
            topology=Topology(
                exchange=env.text("RABBITMQ_EXCHANGE", "vip-actions"),
                queue=env.text("RABBITMQ_QUEUE", "vip-actions"),
                binding_key=env.text("RABBITMQ_BINDING_KEY", "#"),
                queue_type=queue_type,
                content_type=AVRO_CONTENT_TYPE if rabbit_format == "avro" else JSON_CONTENT_TYPE,
            ),
            vip_actions_topic=topic,
            dead_letter_topic=env.text("VIP_ACTIONS_DLQ_TOPIC", f"{topic}.dlq"),
            consumer_group=env.text("CONSUMER_GROUP", "rabbit-bridge"),
            routing_prefix=env.text("ROUTING_KEY_PREFIX", "vip"),
            batch_size=env.integer("BATCH_SIZE", 2000, min=1, max=100_000),
        )
        env.check()
        return settings
