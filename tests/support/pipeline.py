"""The pipeline's services as processes, configured only through their environment variables,
and the start-up every pipeline test shares: user-state first (the enricher looks users up in
it), then the enricher and the bridge side by side, each waited for until it is ready."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tests.support.services import Service

QUERIES = Path(__file__).resolve().parents[2] / "queries"


class BrokerAddresses(Protocol):
    @property
    def kafka(self) -> str: ...
    @property
    def rabbitmq(self) -> str: ...


@dataclass
class Names:
    """Fresh topic, group, exchange and queue names, so tests never see each other's data."""

    run: str

    @property
    def users(self) -> str:
        return f"{self.run}.user"

    @property
    def clicks(self) -> str:
        return f"{self.run}.click"

    @property
    def vip(self) -> str:
        return f"{self.run}.vip-action"

    @property
    def sessions(self) -> str:
        return f"{self.run}.vip-session"

    @property
    def days(self) -> str:
        return f"{self.run}.vip-day"

    @property
    def exchange(self) -> str:
        return f"{self.run}.vip-actions"

    @property
    def queue(self) -> str:
        return f"{self.run}.vip-actions"


@dataclass
class Stages:
    """The services between the topics and RabbitMQ, started and ready."""

    user_state: Service
    enricher: Service
    started_bridge: Service | None

    @property
    def bridge(self) -> Service:
        assert self.started_bridge is not None, "these stages were started without the bridge"
        return self.started_bridge


class Pipeline:
    """The four services as processes, configured only through their environment variables."""

    # Added to every service's environment (tests/faults adds its stack dumps).
    extra_env: Mapping[str, str] = {}

    def __init__(self, brokers: BrokerAddresses, names: Names, log_dir: Path) -> None:
        self.names = names
        self.log_dir = log_dir
        common = {"KAFKA_BOOTSTRAP_SERVERS": brokers.kafka, "TOPIC_PARTITIONS": "4"}
        self.env = {
            "user-state": {
                **common,
                "USERS_TOPIC": names.users,
                "VIP_SESSIONS_TOPIC": names.sessions,
                "VIP_DAYS_TOPIC": names.days,
                "VIP_ACTIONS_TOPIC": names.vip,
            },
            "enricher": {
                **common,
                "CLICKS_TOPIC": names.clicks,
                "VIP_ACTIONS_TOPIC": names.vip,
                "CONSUMER_GROUP": f"{names.run}.enricher",
                "JOIN_GRACE_MS": "3000",
            },
            "rabbit-bridge": {
                **common,
                "RABBITMQ_URL": brokers.rabbitmq,
                "VIP_ACTIONS_TOPIC": names.vip,
                "CONSUMER_GROUP": f"{names.run}.bridge",
                "RABBITMQ_EXCHANGE": names.exchange,
                "RABBITMQ_QUEUE": names.queue,
            },
            "generator": {**common, "USERS_TOPIC": names.users, "CLICKS_TOPIC": names.clicks},
        }
        self.services: list[Service] = []

    def start(
        self, name: str, *, port: int | None = None, log_name: str | None = None, **extra: str
    ) -> Service:
        """`port` and `log_name`: see Service."""
        env = {**self.env[name], **self.extra_env, **extra}
        service = Service(name, env, self.log_dir, port=port, log_name=log_name).start()
        self.services.append(service)
        return service

    def start_user_state(self, **extra: str) -> Service:
        service = self.start("user-state", **extra)
        service.wait_ready()
        return service

    def start_enricher(
        self, user_state: Service, *, log_name: str | None = None, **extra: str
    ) -> Service:
        """An enricher looking users up in `user_state` (not waited for)."""
        return self.start("enricher", log_name=log_name, USER_STATE_URL=user_state.url, **extra)

    def start_sessions_query(self, **extra: str) -> Service:
        """An enricher running queries/vip-sessions.sql over this run's VipActions into its
        sessions topic, as `make run` has it (not waited for)."""
        return self.start(
            "enricher",
            log_name="vip-sessions",
            ENRICHER_QUERY_FILE=str(QUERIES / "vip-sessions.sql"),
            CLICKS_STREAM="VipActions",
            CLICKS_TOPIC=self.names.vip,
            OUTPUT_STREAM="VipSessions",
            OUTPUT_TOPIC=self.names.sessions,
            CONSUMER_GROUP=f"{self.names.run}.sessions",
            **extra,
        )

    def start_stages(
        self,
        *,
        bridge: bool = True,
        enricher_env: Mapping[str, str] | None = None,
        bridge_env: Mapping[str, str] | None = None,
    ) -> Stages:
        """user-state, the enricher and (unless `bridge` is false) the bridge, all ready."""
        user_state = self.start_user_state()
        enricher = self.start_enricher(user_state, **(enricher_env or {}))
        relay = self.start("rabbit-bridge", **(bridge_env or {})) if bridge else None
        enricher.wait_ready()
        if relay is not None:
            relay.wait_ready()
        return Stages(user_state, enricher, relay)

    def stop_all(self) -> None:
        for service in reversed(self.services):
            if service.process is not None and service.process.poll() is None:
                service.terminate()
