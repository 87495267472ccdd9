"""The generator's configuration, read once from the environment and validated in one pass."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from clickstream_common.contracts import LEVELS
from clickstream_common.settings import Env, FormatSettings, KafkaSettings, ObservabilitySettings

from clickstream_generator.data import DEFAULT_LEVEL_WEIGHTS, DataConfig

DEFAULT_HTTP_PORT = 8083
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


@dataclass(frozen=True)
class GeneratorSettings:
    kafka: KafkaSettings
    observability: ObservabilitySettings
    users_topic: str
    clicks_topic: str
    topic_partitions: int
    users: int
    clicks: int  # 0 = until stopped
    rate: float  # clicks per second; 0 = as fast as possible
    seed: int
    level_weights: Mapping[str, float]
    unknown_user_share: float
    malformed_share: float
    # 0: clicks at `rate`, timed by Kafka; > 0: visits on a simulated clock this many times
    # faster than the wall clock, each click carrying its event_time (see visits.py).
    time_scale: float
    formats: FormatSettings = field(default_factory=FormatSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GeneratorSettings:
        """Raise `SettingsError` listing every bad variable, so one restart fixes them all."""
        env = Env() if environ is None else Env(dict(environ))
        settings = cls(
            kafka=KafkaSettings.read(env),
            observability=ObservabilitySettings.read(env, default_port=DEFAULT_HTTP_PORT),
            formats=FormatSettings.read(env),
            users_topic=_topic(env, "USERS_TOPIC", "user"),
            clicks_topic=_topic(env, "CLICKS_TOPIC", "click"),
            topic_partitions=env.integer("TOPIC_PARTITIONS", 4, min=1),
            users=env.integer("GENERATOR_USERS", 1000, min=1),
            clicks=env.integer("GENERATOR_CLICKS", 0, min=0),
            rate=env.number("GENERATOR_RATE", 100.0, min=0.0),
            seed=env.integer("GENERATOR_SEED", 42),
            level_weights=_level_weights(env, "GENERATOR_LEVEL_WEIGHTS"),
            unknown_user_share=env.number("GENERATOR_UNKNOWN_USER_SHARE", 0.05, min=0.0, max=1.0),
            malformed_share=env.number("GENERATOR_MALFORMED_SHARE", 0.0, min=0.0, max=1.0),
            time_scale=env.number("GENERATOR_TIME_SCALE", 0.0, min=0.0, max=100_000.0),
        )
        if settings.users_topic == settings.clicks_topic:
            env.problems.append(
                f"USERS_TOPIC and CLICKS_TOPIC are both {settings.users_topic!r}; they must differ"
            )
        env.check()
        return settings

    def data_config(self) -> DataConfig:
        return DataConfig(
            seed=self.seed,
            users=self.users,
            level_weights=self.level_weights,
            unknown_user_share=self.unknown_user_share,
            malformed_share=self.malformed_share,
        )


def _topic(env: Env, name: str, default: str) -> str:
    value = env.text(name, default)
    if not _TOPIC_NAME.match(value):
        env.problems.append(f"{name}={value!r} is not a valid Kafka topic name")
    return value


def _level_weights(env: Env, name: str) -> Mapping[str, float]:
    """Parse `LEVEL=weight,...`; levels left out get weight 0."""
    raw = env.optional_str(name)
    if raw is None:
        return dict(DEFAULT_LEVEL_WEIGHTS)
    weights: dict[str, float] = {}
    problems: list[str] = []
    for item in (part.strip() for part in raw.split(",")):
        level, sep, text = (piece.strip() for piece in item.partition("="))
        level = level.upper()
        if not sep or not level:
            problems.append(f"{item!r} is not LEVEL=weight")
        elif level not in LEVELS:
            problems.append(f"{level!r} is not one of {', '.join(LEVELS)}")
        elif level in weights:
            problems.append(f"{level} is given twice")
        else:
            try:
                weight = float(text)
            except ValueError:
                problems.append(f"weight {text!r} of {level} is not a number")
                continue
            if not (math.isfinite(weight) and weight >= 0):
                problems.append(f"weight {text!r} of {level} is not a finite number >= 0")
            weights[level] = weight
    if not problems and not sum(weights.values()) > 0:
        problems.append("weights must sum to more than 0")
    if problems:
        env.problems.append(f"{name}={raw!r}: " + "; ".join(problems))
        return dict(DEFAULT_LEVEL_WEIGHTS)
    return weights
