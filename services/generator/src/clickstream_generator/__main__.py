"""Composition root: settings, logging, container, signals, health server, run, shutdown."""

from __future__ import annotations

import argparse
import sys

from clickstream_common.http import HttpServer, Router, add_health_routes
from clickstream_common.kafka import CheckedProducer
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import configure_logging, get_logger
from clickstream_common.metrics import Metrics
from clickstream_common.settings import SettingsError
from dependency_injector import containers, providers

from clickstream_generator.runner import GeneratorRunner
from clickstream_generator.settings import GeneratorSettings

_DESCRIPTION = """\
Produce realistic users, then a paced click stream, to Kafka. Configured only by environment:
KAFKA_BOOTSTRAP_SERVERS, USERS_TOPIC, CLICKS_TOPIC, TOPIC_PARTITIONS, GENERATOR_USERS,
GENERATOR_CLICKS (0 = until stopped), GENERATOR_RATE (clicks/s, 0 = unlimited), GENERATOR_SEED,
GENERATOR_LEVEL_WEIGHTS, GENERATOR_UNKNOWN_USER_SHARE, GENERATOR_MALFORMED_SHARE, LOG_LEVEL,
LOG_FORMAT, HTTP_PORT.
"""


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=GeneratorSettings)
    shutdown = providers.Singleton(Shutdown)
    metrics = providers.Singleton(Metrics, "generator")
    producer = providers.Singleton(CheckedProducer, settings.provided.kafka)
    runner = providers.Singleton(
        GeneratorRunner,
        settings=settings,
        producer=producer,
        metrics=metrics,
        shutdown=shutdown,
    )


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="generator",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args(argv)
    try:
        settings = GeneratorSettings.read()
    except SettingsError as exc:
        print(f"generator: {exc}", file=sys.stderr)
        return 2
    observability = settings.observability
    configure_logging("generator", observability.log_level, observability.log_format)
    log = get_logger("clickstream_generator")

    container = Container(settings=settings)
    shutdown = container.shutdown()
    shutdown.install()
    runner = container.runner()

    router = Router()
    add_health_routes(
        router, live=lambda: True, ready=lambda: runner.producing, metrics=container.metrics()
    )
    server = HttpServer(router, "0.0.0.0", observability.http_port)
    server.start()
    try:
        runner.run()
        container.producer().flush()
    except Exception:
        log.exception("generator failed")
        return 1
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
