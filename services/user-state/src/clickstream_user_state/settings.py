"""user-state's configuration, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from clickstream_common.settings import Env, KafkaSettings, ObservabilitySettings


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings
    observability: ObservabilitySettings
    users_topic: str
    users_dlq_topic: str
    history_versions: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = Env(dict(environ)) if environ is not None else Env()
        users_topic = env.text("USERS_TOPIC", "user")
        settings = cls(
            kafka=KafkaSettings.read(env),
            observability=ObservabilitySettings.read(env, default_port=8080),
            users_topic=users_topic,
            users_dlq_topic=env.text("USERS_DLQ_TOPIC", f"{users_topic}.dlq"),
            history_versions=env.integer("USER_HISTORY_VERSIONS", 16, min=1, max=1024),
        )
        env.check()
        return settings
