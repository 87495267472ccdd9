"""Composition root of user-state: settings, logging, wiring, signals, HTTP, run, shutdown."""

from __future__ import annotations

import sys

from clickstream_common.http import HttpServer, Router, add_health_routes
from clickstream_common.kafka import (
    CheckedProducer,
    KafkaFatalError,
    TableReader,
    TopicSpec,
    ensure_topics,
)
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import configure_logging, get_logger
from clickstream_common.metrics import Metrics
from clickstream_common.settings import SettingsError
from dependency_injector import containers, providers

from clickstream_user_state.api import build_routes
from clickstream_user_state.loader import UsersLoader
from clickstream_user_state.memory import pause_collection, settle_after_restore
from clickstream_user_state.settings import Settings
from clickstream_user_state.store import UserStore

log = get_logger("clickstream_user_state")


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    metrics = providers.Singleton(Metrics, prefix="user_state")
    store = providers.Singleton(UserStore, max_versions=settings.provided.history_versions)
    reader = providers.Singleton(
        TableReader, settings.provided.kafka, settings.provided.users_topic
    )
    dead_letters = providers.Singleton(CheckedProducer, settings.provided.kafka)
    loader = providers.Singleton(
        UsersLoader,
        source=reader,
        store=store,
        metrics=metrics,
        dead_letters=dead_letters,
        on_caught_up=providers.Object(settle_after_restore),
    )
    router = providers.Singleton(Router)


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"user-state: {exc}", file=sys.stderr)
        return 2
    configure_logging(
        "user-state", settings.observability.log_level, settings.observability.log_format
    )
    container = Container(settings=settings)
    shutdown = Shutdown()
    shutdown.install()
    try:
        ensure_topics(
            settings.kafka,
            [
                TopicSpec(settings.users_topic, compact=True),
                TopicSpec(settings.users_dlq_topic),
            ],
        )
        container.reader().start()
        loader = container.loader()
    except KafkaFatalError as exc:
        log.error("user-state cannot start", error=str(exc))
        return 1
    router = container.router()
    metrics = container.metrics()
    add_health_routes(router, live=lambda: True, ready=lambda: loader.ready, metrics=metrics)
    build_routes(router, container.store(), lambda: loader.ready, metrics)
    server = HttpServer(router, settings.http_host, settings.observability.http_port)
    server.start()
    log.info("user-state started", users_topic=settings.users_topic, port=server.port)
    exit_code = 0
    try:
        pause_collection()
        loader.run(shutdown)
    except Exception:
        log.exception("user-state failed")
        exit_code = 1
    finally:
        server.stop()
        container.reader().close()
        container.dead_letters().close()
    log.info("user-state stopped", exit_code=exit_code)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
