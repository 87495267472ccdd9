"""generator: realistic users, then a paced click stream, to Kafka.

Configured only by environment: KAFKA_BOOTSTRAP_SERVERS, USERS_TOPIC, CLICKS_TOPIC,
TOPIC_PARTITIONS, GENERATOR_USERS, GENERATOR_CLICKS (0 = until stopped), GENERATOR_RATE (clicks/s,
0 = unlimited), GENERATOR_SEED, GENERATOR_LEVEL_WEIGHTS, GENERATOR_UNKNOWN_USER_SHARE,
GENERATOR_MALFORMED_SHARE, VALUE_FORMAT, SCHEMA_REGISTRY_URL, LOG_LEVEL, LOG_FORMAT, HTTP_HOST,
HTTP_PORT.
"""

from __future__ import annotations

import sys

from clickstream_common.avro import value_format_from
from clickstream_common.kafka import CheckedProducer
from clickstream_common.metrics import Metrics
from clickstream_common.service import ServiceContainer, closing, run_service
from dependency_injector import providers

from clickstream_generator.runner import GeneratorRunner
from clickstream_generator.settings import GeneratorSettings


class Container(ServiceContainer):
    settings = providers.Dependency(instance_of=GeneratorSettings)
    metrics = providers.Singleton(Metrics, "generator", runtime=True)
    value_format = providers.Singleton(
        value_format_from, settings.provided.formats, ServiceContainer.shutdown, metrics
    )
    producer = closing(CheckedProducer, settings.provided.kafka)
    service = providers.Singleton(
        GeneratorRunner,
        settings=settings,
        producer=producer,
        metrics=metrics,
        shutdown=ServiceContainer.shutdown,
        value_format=value_format,
    )


def main(argv: list[str] | None = None) -> int:
    return run_service(
        "generator", GeneratorSettings.from_env, Container, description=__doc__, argv=argv
    )


if __name__ == "__main__":
    sys.exit(main())
