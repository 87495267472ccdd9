"""The skeleton every service's `__main__` runs, so all four start, report and stop alike.

A service's composition root declares a `ServiceContainer` (its whole object graph, with what
must be closed as `closing` resources) and calls `run_service`, which does the rest in this
order: settings (a bad one exits 2 naming the variable, before anything else is touched),
logging, signal handlers, the health server, the value format connected (VALUE_FORMAT=avro: the
registry checked and the producers' schemas registered, readiness false while it cannot be
reached), the top-level service's `run`, then the
container's resources closed (dependents before what they use), the health server stopped and
one closing log line with the service's counters.

Exit codes: 0 when the service finished or was asked to stop, 1 when it failed (a broker it
cannot go on without, a schema the registry refused, or a bug), 2 for bad settings (and an Avro
schema file that cannot carry the query's rows).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from dependency_injector import containers, providers

from clickstream_common.avro import (
    IncompatibleSchema,
    NotARegistry,
    RegistryStopped,
    SchemaFileError,
)
from clickstream_common.formats import JSON, ValueFormat
from clickstream_common.http import HttpServer, Router, add_health_routes
from clickstream_common.kafka import KafkaFatalError
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import configure_logging, get_logger
from clickstream_common.metrics import Metrics
from clickstream_common.rabbit import RabbitUnavailable
from clickstream_common.settings import ObservabilitySettings, SettingsError
from clickstream_common.startup import StoppedWhileWaiting

log = get_logger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_SETTINGS = 2

# Failures of a broker the service cannot go on without, and schemas it cannot use: logged as
# one line, not a traceback.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    KafkaFatalError,
    RabbitUnavailable,
    IncompatibleSchema,
    NotARegistry,
)


class Service(Protocol):
    """The one object a composition root runs: it does the service's start-up steps in order,
    then its loop, and returns once it is finished or `Shutdown` was requested."""

    @property
    def ready(self) -> bool: ...

    def run(self) -> None: ...


class Closeable(Protocol):
    def close(self) -> None: ...


class ServiceSettings(Protocol):
    @property
    def observability(self) -> ObservabilitySettings: ...


C = TypeVar("C", bound=Closeable)
S = TypeVar("S", bound=ServiceSettings)


def _closed_at_exit(resource: C, *_still_needed: object) -> Iterator[C]:
    try:
        yield resource
    finally:
        resource.close()


def closing(
    factory: Callable[..., C],
    *args: Any,
    needs: Sequence[providers.Resource[Any]] = (),
    **kwargs: Any,
) -> providers.Resource[C]:
    """A provider of an object that must be closed: built on first use, closed by the
    container's `shutdown_resources`. `needs` are resources its closing still uses (a consumer
    whose revoke callback settles with a publisher): they are closed after it."""
    return providers.Resource(_closed_at_exit, providers.Factory(factory, *args, **kwargs), *needs)


class ServiceContainer(containers.DeclarativeContainer):
    """What `run_service` takes from every service's container; each declares the rest of its
    graph, and `settings`, `metrics` and `service` (the top-level object) under these names."""

    settings: providers.Provider[Any] = providers.Dependency()
    shutdown = providers.Singleton(Shutdown)
    router = providers.Singleton(Router)
    metrics: providers.Provider[Metrics] = providers.Dependency(instance_of=Metrics)
    # VALUE_FORMAT's format (`clickstream_common.avro.value_format`); its readiness is the
    # service's too: false while the schema registry cannot be reached.
    value_format: providers.Provider[ValueFormat] = providers.Object(JSON)
    service: providers.Provider[Any] = providers.Dependency()


def run_service(
    name: str,
    read_settings: Callable[[], S],
    container_type: Callable[..., ServiceContainer],
    *,
    description: str,
    argv: list[str] | None = None,
) -> int:
    """Run one service from its settings to its exit code (see the module docstring)."""
    argparse.ArgumentParser(
        prog=name, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args(argv)
    try:
        settings = read_settings()
    except SettingsError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    observability = settings.observability
    configure_logging(name, observability.log_level, observability.log_format)
    container = container_type(settings=settings)
    container.shutdown().install()
    metrics: Metrics = container.metrics()
    try:
        service: Service = container.service()
    except SchemaFileError as exc:  # a query whose output's schema cannot carry its rows
        log.error(f"{name} cannot start", error=str(exc))
        container.shutdown_resources()
        return EXIT_BAD_SETTINGS
    value_format: ValueFormat = container.value_format()
    router: Router = container.router()
    add_health_routes(
        router,
        live=lambda: True,
        ready=lambda: service.ready and value_format.ready(),
        metrics=metrics,
    )
    server = HttpServer(router, observability.http_host, observability.http_port)
    server.start()
    exit_code = EXIT_OK
    try:
        value_format.connect()  # Avro: the registry checked, the producers' schemas registered
        service.run()
    except _UNAVAILABLE as exc:
        log.error(f"{name} cannot go on", error=str(exc))
        exit_code = EXIT_FAILED
    except RegistryStopped:
        log.info(f"{name} stopped while waiting for the schema registry")
    except StoppedWhileWaiting as exc:
        log.info(f"{name} {exc}")
    except Exception:
        log.exception(f"{name} failed")
        exit_code = EXIT_FAILED
    finally:
        try:
            container.shutdown_resources()
        except Exception:
            log.exception(f"{name} failed to close cleanly")
            exit_code = EXIT_FAILED
        server.stop()
    log.info(f"{name} stopped", exit_code=exit_code, **metrics.snapshot())
    return exit_code
