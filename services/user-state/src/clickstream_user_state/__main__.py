"""user-state: the users table, read whole from the users topic and served over HTTP.

Configured only by environment variables: README.md § The services lists them and their defaults.
"""

from __future__ import annotations

import sys
from functools import partial

from clickstream_common.avro import value_format_from
from clickstream_common.kafka import CheckedProducer, TableReader, TopicSpec
from clickstream_common.metrics import Metrics
from clickstream_common.service import ServiceContainer, closing, run_service
from dependency_injector import providers

from clickstream_user_state.activity import ActivityBoard
from clickstream_user_state.activity_live import RECENT_ACTIONS, LiveActivity
from clickstream_user_state.activity_loader import ActivityLoader
from clickstream_user_state.activity_rows import decode_action, decode_day, decode_session
from clickstream_user_state.activity_views import Views
from clickstream_user_state.live_feed import LiveFeed
from clickstream_user_state.loader import UsersLoader
from clickstream_user_state.memory import settle_after_restore
from clickstream_user_state.service import UserStateService
from clickstream_user_state.settings import Settings
from clickstream_user_state.store import UserStore
from clickstream_user_state.user_changes import plain_json


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The users topic is a table (compacted); the activity topics are the windowed queries'
    outputs, keyed by user with many rows each, so never compacted (their retention bounds them)."""
    return [
        TopicSpec(settings.users_topic, compact=True),
        TopicSpec(settings.users_dlq_topic),
        TopicSpec(settings.sessions_topic),
        TopicSpec(settings.days_topic),
        TopicSpec(settings.vip_actions_topic),
        *(TopicSpec(name) for name in settings.activity_dlq_topics),
    ]


class Container(ServiceContainer):
    settings = providers.Dependency(instance_of=Settings)
    metrics = providers.Singleton(Metrics, "user_state", runtime=True)
    value_format = providers.Singleton(
        value_format_from, settings.provided.formats, ServiceContainer.shutdown, metrics
    )
    # None for JSON: the decoders read it straight into their structs.
    row_reader = providers.Callable(plain_json, value_format)
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
        reader=row_reader,
    )
    board = providers.Singleton(
        ActivityBoard,
        zone=settings.provided.business_timezone,
        retention_ms=settings.provided.activity_retention_ms,
    )
    sessions_reader = closing(
        TableReader, settings.provided.kafka, settings.provided.sessions_topic
    )
    days_reader = closing(TableReader, settings.provided.kafka, settings.provided.days_topic)
    # The VipActions only from their latest few on: a live feed, not a table.
    actions_reader = closing(
        TableReader,
        settings.provided.kafka,
        settings.provided.vip_actions_topic,
        tail=RECENT_ACTIONS,
    )
    views = providers.Singleton(Views, board=board, store=store)
    feed = providers.Singleton(LiveFeed)
    live = providers.Singleton(
        LiveActivity,
        views=views,
        feed=feed,
        sample_seconds=settings.provided.activity_sample_seconds,
    )
    sessions_loader = providers.Singleton(
        ActivityLoader,
        kind="sessions",
        source=sessions_reader,
        decode=providers.Factory(partial, decode_session, reader=row_reader),
        apply=live.provided.apply_sessions,
        metrics=metrics,
        dead_letters=dead_letters,
    )
    days_loader = providers.Singleton(
        ActivityLoader,
        kind="days",
        source=days_reader,
        decode=providers.Factory(partial, decode_day, reader=row_reader),
        apply=live.provided.apply_days,
        metrics=metrics,
        dead_letters=dead_letters,
    )
    actions_loader = providers.Singleton(
        ActivityLoader,
        kind="actions",
        source=actions_reader,
        decode=providers.Factory(partial, decode_action, reader=row_reader),
        apply=live.provided.apply_actions,
        metrics=metrics,
        dead_letters=None,
    )
    service = providers.Singleton(
        UserStateService,
        kafka=settings.provided.kafka,
        topics=providers.Callable(topic_specs, settings),
        store=store,
        readers=providers.List(reader, sessions_reader, days_reader, actions_reader),
        loader=loader,
        views=views,
        live=live,
        activity_loaders=providers.List(sessions_loader, days_loader, actions_loader),
        router=ServiceContainer.router,
        metrics=metrics,
        shutdown=ServiceContainer.shutdown,
    )


def main(argv: list[str] | None = None) -> int:
    return run_service("user-state", Settings.from_env, Container, description=__doc__, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
