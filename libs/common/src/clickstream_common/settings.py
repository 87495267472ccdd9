"""Typed, validated configuration from environment variables.

Every service reads its settings once at start through `Env`; all problems are collected and
raised together so an operator fixes a bad deployment in one round, and each names its variable.

A secret (`Env.secret`) may instead come from a mounted file: `<NAME>_FILE` names the file and
its content, stripped, is the value (Kubernetes and Docker secrets). No problem message ever
quotes a secret's value.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """One or more environment variables are missing or invalid."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid configuration: " + "; ".join(self.problems))


def _finite_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


@dataclass
class Env:
    """Reads variables, recording every problem instead of stopping at the first."""

    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    problems: list[str] = field(default_factory=list)

    def _raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def _parse(self, name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not {expected}")
            return default

    def text(self, name: str, default: str | None = None) -> str:
        raw = self._raw(name)
        if raw is not None:
            return raw
        if default is None:
            self.problems.append(f"{name} is required")
            return ""
        return default

    def optional_str(self, name: str) -> str | None:
        return self._raw(name)

    def secret(self, name: str, default: str | None = None) -> str | None:
        """`name`'s value, or the stripped content of the file `<name>_FILE` names.

        Setting both is an error (which one wins would be a guess), and so is a file that
        cannot be read or is empty; the problems name the variable, never the value.
        """
        file_variable = f"{name}_FILE"
        direct = self._raw(name)
        path = self._raw(file_variable)
        if path is None:
            return direct if direct is not None else default
        if direct is not None:
            self.problems.append(f"{name} and {file_variable} are both set: set only one")
            return default
        try:
            with open(path, encoding="utf-8") as secret_file:
                content = secret_file.read().strip()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            self.problems.append(f"{file_variable}={path!r} cannot be read: {reason}")
            return default
        except UnicodeDecodeError:
            self.problems.append(f"{file_variable}={path!r} is not UTF-8 text")
            return default
        if not content:
            self.problems.append(f"{file_variable}={path!r} names an empty file")
            return default
        return content

    def integer(
        self, name: str, default: int, *, min: int | None = None, max: int | None = None
    ) -> int:
        value = self._parse(name, default, int, "an integer")
        self._check_range(name, value, min, max)
        return value

    def number(
        self, name: str, default: float, *, min: float | None = None, max: float | None = None
    ) -> float:
        value = self._parse(name, default, _finite_float, "a finite number")
        self._check_range(name, value, min, max)
        return value

    def flag(self, name: str, default: bool) -> bool:
        def parse(raw: str) -> bool:
            lowered = raw.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError(raw)

        return self._parse(name, default, parse, "a boolean (true/false)")

    def time_zone(self, name: str, default: str = "UTC") -> ZoneInfo:
        """An IANA time zone name, such as Europe/Berlin."""
        zone_name = self.text(name, default)
        try:
            return ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            self.problems.append(
                f"{name}={zone_name!r} is not an IANA time zone such as Europe/Berlin"
            )
            return ZoneInfo(default)

    def choice(self, name: str, default: str, choices: Iterable[str]) -> str:
        allowed = tuple(choices)
        raw = self._raw(name)
        if raw is None:
            return default
        if raw.lower() not in allowed:
            self.problems.append(f"{name}={raw!r} is not one of {', '.join(allowed)}")
            return default
        return raw.lower()

    def csv(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        raw = self._raw(name)
        if raw is None:
            return default
        items = tuple(item.strip() for item in raw.split(",") if item.strip())
        if not items:
            self.problems.append(f"{name}={raw!r} is an empty list")
            return default
        return items

    def _check_range(self, name: str, value: float, low: float | None, high: float | None) -> None:
        if low is not None and value < low:
            self.problems.append(f"{name}={value} is below the minimum {low}")
        if high is not None and value > high:
            self.problems.append(f"{name}={value} is above the maximum {high}")

    def check(self) -> None:
        """Raise every recorded problem at once."""
        if self.problems:
            raise SettingsError(self.problems)


@dataclass(frozen=True)
class KafkaSettings:
    """Broker connection shared by every service; security options pass straight to librdkafka."""

    bootstrap_servers: str
    client_options: Mapping[str, str]
    # How long a consumer-group member may go silent before its partitions move to another
    # (librdkafka's and Kafka Streams' 45 s): the floor on recovery after a replica is killed.
    session_timeout_ms: int = 45_000
    # Static group membership (KIP-345): a member restarted with the same id gets its partitions
    # back at once, with no rebalance, instead of after the session timeout. Unique per replica
    # and stable across its restarts (a StatefulSet's pod name); None: dynamic membership.
    group_instance_id: str | None = None
    # How often offsets handed over without waiting are sent to the group coordinator (Kafka
    # Streams' commit.interval.ms): committing every batch put hundreds of commits a second on the
    # broker at a few thousand clicks/s. A crash replays at most this much more; 0: every batch.
    commit_interval_ms: int = 100

    def __repr__(self) -> str:
        shown = {
            option: "***" if option in _KAFKA_SECRET_OPTIONS else value
            for option, value in self.client_options.items()
        }
        return (
            f"KafkaSettings(bootstrap_servers={self.bootstrap_servers!r}, client_options={shown!r},"
            f" session_timeout_ms={self.session_timeout_ms},"
            f" group_instance_id={self.group_instance_id!r},"
            f" commit_interval_ms={self.commit_interval_ms})"
        )

    @classmethod
    def read(cls, env: Env) -> KafkaSettings:
        options: dict[str, str] = {}
        for variable, option in _KAFKA_PASSTHROUGH.items():
            if option in _KAFKA_SECRET_OPTIONS:
                value = env.secret(variable)
            else:
                value = env.optional_str(variable)
            if value is not None:
                options[option] = value
        return cls(
            bootstrap_servers=env.text("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            client_options=options,
            # The broker's default group.{min,max}.session.timeout.ms bound it.
            session_timeout_ms=env.integer(
                "KAFKA_SESSION_TIMEOUT_MS", 45_000, min=6_000, max=1_800_000
            ),
            group_instance_id=env.optional_str("KAFKA_GROUP_INSTANCE_ID") or None,
            commit_interval_ms=env.integer("KAFKA_COMMIT_INTERVAL_MS", 100, min=0, max=60_000),
        )

    def client_config(self) -> dict[str, str]:
        return {"bootstrap.servers": self.bootstrap_servers, **self.client_options}


_KAFKA_PASSTHROUGH = {
    "KAFKA_SECURITY_PROTOCOL": "security.protocol",
    "KAFKA_SASL_MECHANISM": "sasl.mechanism",
    "KAFKA_SASL_USERNAME": "sasl.username",
    "KAFKA_SASL_PASSWORD": "sasl.password",
    "KAFKA_SSL_CA_LOCATION": "ssl.ca.location",
    "KAFKA_SSL_CERTIFICATE_LOCATION": "ssl.certificate.location",
    "KAFKA_SSL_KEY_LOCATION": "ssl.key.location",
    "KAFKA_SSL_KEY_PASSWORD": "ssl.key.password",
}
# Read with Env.secret (so <NAME>_FILE works) and masked in repr.
_KAFKA_SECRET_OPTIONS = frozenset({"sasl.password", "ssl.key.password"})


@dataclass(frozen=True)
class ObservabilitySettings:
    """Logging, and the HTTP address where every service serves health and metrics."""

    log_level: str
    log_format: str
    http_port: int
    http_host: str = "0.0.0.0"

    @classmethod
    def read(cls, env: Env, *, default_port: int) -> ObservabilitySettings:
        return cls(
            log_level=env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
            log_format=env.choice("LOG_FORMAT", "auto", ("auto", "json", "console")),
            http_port=env.integer("HTTP_PORT", default_port, min=0, max=65535),
            http_host=env.text("HTTP_HOST", "0.0.0.0"),
        )


def mask_url(url: str) -> str:
    """`url` with its password replaced by `***`, safe for logs and error messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        netloc = f"{parts.username or ''}:***@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        return "<unparseable URL>"


@dataclass(frozen=True)
class FormatSettings:
    """The value format of every topic (`VALUE_FORMAT`), and the registry Avro needs."""

    value_format: str = "json"
    schema_registry_url: str | None = None
    schema_registry_timeout_seconds: float = 5.0
    # AVRO_SCHEMA_DIR: where `<Stream>.avsc` files are read; None: the ones the package ships.
    avro_schema_dir: Path | None = None

    @classmethod
    def read(cls, env: Env) -> FormatSettings:
        value_format = env.choice("VALUE_FORMAT", "json", ("json", "avro"))
        url = env.optional_str("SCHEMA_REGISTRY_URL")
        if value_format == "avro" and url is None:
            env.problems.append(
                "SCHEMA_REGISTRY_URL is required with VALUE_FORMAT=avro (a Confluent-compatible "
                "registry API, e.g. http://127.0.0.1:8181/apis/ccompat/v7 for Apicurio)"
            )
        if url is not None and not url.startswith(("http://", "https://")):
            env.problems.append(f"SCHEMA_REGISTRY_URL={url!r} is not an http(s) URL")
        folder = env.optional_str("AVRO_SCHEMA_DIR")
        if folder is not None and not Path(folder).is_dir():
            env.problems.append(f"AVRO_SCHEMA_DIR={folder!r} is not a folder")
        return cls(
            value_format=value_format,
            schema_registry_url=url,
            schema_registry_timeout_seconds=env.number(
                "SCHEMA_REGISTRY_TIMEOUT_SECONDS", 5.0, min=0.1, max=300.0
            ),
            avro_schema_dir=Path(folder) if folder is not None else None,
        )
