"""user-state: the users table, read whole from the users topic and served over HTTP.

Configured only by environment variables: README.md § The services lists them and their defaults.
"""

from __future__ import annotations

import sys

from clickstream_common.kafka import CheckedProducer, TableReader, TopicSpec
from clickstream_common.metrics import Metrics
from clickstream_common.service import ServiceContainer, closing, run_service
from dependency_injector import providers

from clickstream_user_state.loader import UsersLoader
from clickstream_user_state.memory import settle_after_restore
from clickstream_user_state.service import UserStateService
from clickstream_user_state.settings import Settings
from clickstream_user_state.store import UserStore


class Container(ServiceContainer):
    settings = providers.Dependency(instance_of=Settings)
    metrics = providers.Singleton(Metrics, "user_state", runtime=True)
    store = providers.Singleton(UserStore, max_versions=settings.provided.history_versions)
    reader = closing(TableReader, settings.provided.kafka, settings.provided.users_topic)
    dead_letters = closing(CheckedProducer, settings.provided.kafka)
    loader = providers.Singleton(
        UsersLoader,
        source=reader,
        store=store,
        metrics=metrics,
        dead_letters=dead_letters,
        on_caught_up=providers.Object(settle_after_restore),
    )
    service = providers.Singleton(
        UserStateService,
        kafka=settings.provided.kafka,
        topics=providers.List(
            providers.Factory(TopicSpec, settings.provided.users_topic, compact=True),
            providers.Factory(TopicSpec, settings.provided.users_dlq_topic),
        ),
        store=store,
        reader=reader,
        loader=loader,
        router=ServiceContainer.router,
        metrics=metrics,
        shutdown=ServiceContainer.shutdown,
    )


def main(argv: list[str] | None = None) -> int:
    return run_service("user-state", Settings.from_env, Container, description=__doc__, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
