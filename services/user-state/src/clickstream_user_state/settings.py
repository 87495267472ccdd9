"""user-state's configuration, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from clickstream_common.settings import Env, FormatSettings, KafkaSettings, ObservabilitySettings


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings
    observability: ObservabilitySettings
    formats: FormatSettings
    users_topic: str
    users_dlq_topic: str
    history_versions: int
    sessions_topic: str
    days_topic: str
    vip_actions_topic: str
    business_timezone: ZoneInfo
    activity_retention_days: int
    activity_sample_seconds: float

    @property
    def activity_retention_ms(self) -> int:
        return self.activity_retention_days * 86_400_000

    @property
    def activity_dlq_topics(self) -> tuple[str, str]:
        return f"{self.sessions_topic}.dlq", f"{self.days_topic}.dlq"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = Env(dict(environ)) if environ is not None else Env()
        users_topic = env.text("USERS_TOPIC", "user")
        settings = cls(
            kafka=KafkaSettings.read(env),
            observability=ObservabilitySettings.read(env, default_port=8080),
            formats=FormatSettings.read(env),
            users_topic=users_topic,
            users_dlq_topic=env.text("USERS_DLQ_TOPIC", f"{users_topic}.dlq"),
            history_versions=env.integer("USER_HISTORY_VERSIONS", 16, min=1, max=1024),
            sessions_topic=env.text("VIP_SESSIONS_TOPIC", "vip-session"),
            days_topic=env.text("VIP_DAYS_TOPIC", "vip-day"),
            vip_actions_topic=env.text("VIP_ACTIONS_TOPIC", "vip-action"),
            business_timezone=env.time_zone("BUSINESS_TIMEZONE"),
            activity_retention_days=env.integer("ACTIVITY_RETENTION_DAYS", 7, min=1, max=366),
            activity_sample_seconds=env.number("ACTIVITY_SAMPLE_SECONDS", 10.0, min=0.1, max=3600),
        )
        env.check()
        return settings
