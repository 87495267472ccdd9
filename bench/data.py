"""The benchmarks' data, made by the generator's own deterministic functions and preloaded into
fresh topics of this run. Every click's user exists (no unknown share), so no click waits out the
enricher's grace period and the enricher and its peer run the very same join."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import orjson
from clickstream_common.avro.registry import SchemaRegistry
from clickstream_common.avro.serde import AvroFormat
from clickstream_common.contracts import encode_json, event_id
from clickstream_generator.data import DataConfig, UserRow, clicks, user_records, users

from bench.common import Run, create_topics, iso_millis, preload, producer, say

SEED = 42


def config(user_count: int) -> DataConfig:
    return DataConfig(seed=SEED, users=user_count, unknown_user_share=0.0)


def click_pairs(user_rows: list[UserRow], count: int) -> Iterator[tuple[bytes, bytes]]:
    generated = clicks(config(len(user_rows)), user_rows)
    for click in islice(generated, count):
        yield click.key, click.value


def vip_action_pairs(user_rows: list[UserRow], count: int) -> Iterator[tuple[bytes, bytes]]:
    """VipActions as the enricher writes them (event_id, user, page, action, ISO event time)."""
    by_id = {row["user_id"]: row for row in user_rows}
    now_ms = int(time.time() * 1000)
    for offset, (key, value) in enumerate(click_pairs(user_rows, count)):
        click = orjson.loads(value)
        user = by_id[key.decode()]
        yield (
            key,
            encode_json(
                {
                    "event_id": event_id("click", offset % 4, offset),
                    "user_id": user["user_id"],
                    "name": user["name"],
                    "page": click["page"],
                    "action": click["action"],
                    "event_time": iso_millis(now_ms - count + offset),
                }
            ),
        )


@dataclass
class Data:
    """Topics made once per run and shared by the sections that read the same data."""

    run: Run
    _users: dict[int, list[UserRow]] = field(default_factory=dict)
    _user_topics: dict[int, str] = field(default_factory=dict)
    _click_topics: dict[tuple[int, int], str] = field(default_factory=dict)
    _platinum: dict[tuple[int, int], int] = field(default_factory=dict)
    _avro_topics: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)

    def users(self, count: int) -> list[UserRow]:
        if count not in self._users:
            self._users[count] = users(config(count))
        return self._users[count]

    def users_topic(self, count: int) -> str:
        """A compacted users topic, 4 partitions like the clicks, holding `count` users."""
        if count not in self._user_topics:
            topic = self.run.name(f"user-{count}")
            create_topics(self.run.brokers, [topic], compact=True)
            started = time.monotonic()
            rows = self.users(count)
            preload(self.run.brokers, topic, user_records(rows))
            say(f"preloaded {count:,} users into {topic} in {time.monotonic() - started:.1f}s")
            self._user_topics[count] = topic
        return self._user_topics[count]

    def clicks_topic(self, user_count: int, count: int) -> str:
        """Preloaded after its users topic, so every click's timestamp follows its user's."""
        key = (user_count, count)
        if key not in self._click_topics:
            self.users_topic(user_count)
            topic = self.run.name(f"click-{count}")
            create_topics(self.run.brokers, [topic])
            started = time.monotonic()
            platinum = {
                row["user_id"].encode()
                for row in self.users(user_count)
                if row["level"] == "PLATINUM"
            }
            selected = 0

            def counted() -> Iterator[tuple[bytes, bytes]]:
                nonlocal selected
                for user_key, value in click_pairs(self.users(user_count), count):
                    selected += user_key in platinum
                    yield user_key, value

            preload(self.run.brokers, topic, counted())
            self._platinum[key] = selected
            say(f"preloaded {count:,} clicks into {topic} in {time.monotonic() - started:.1f}s")
            self._click_topics[key] = topic
        return self._click_topics[key]

    def gated_clicks_topic(self, user_count: int, count: int) -> tuple[str, Callable[[], None]]:
        """The same clicks in a fresh topic, written in one Kafka transaction left open: the
        services read committed records only, so none is visible until the returned `open_gate`
        commits it. Replicas can form their group first and then all start on the data at once,
        with no rebalance while they are timed."""
        self.users_topic(user_count)
        topic = self.run.name(f"gated-click-{count}")
        create_topics(self.run.brokers, [topic])
        started = time.monotonic()
        gate = producer(
            self.run.brokers,
            **{"transactional.id": self.run.name(topic), "transaction.timeout.ms": 600_000},
        )
        gate.init_transactions(60)
        gate.begin_transaction()
        preload(self.run.brokers, topic, click_pairs(self.users(user_count), count), gate)
        say(
            f"preloaded {count:,} clicks into {topic}, not committed yet, in "
            f"{time.monotonic() - started:.1f}s"
        )

        def open_gate() -> None:
            gate.commit_transaction(60)

        return topic, open_gate

    def avro_topics(self, user_count: int, count: int) -> tuple[str, str]:
        """The same users and clicks as `users_topic` and `clicks_topic`, in Avro (the
        Confluent wire format, the schemas registered in the run's registry): (users, clicks)."""
        key = (user_count, count)
        if key not in self._avro_topics:
            users_topic = self.run.name(f"user-{user_count}-avro")
            clicks_topic = self.run.name(f"click-{count}-avro")
            create_topics(self.run.brokers, [users_topic], compact=True)
            create_topics(self.run.brokers, [clicks_topic])
            avro = AvroFormat(SchemaRegistry(self.run.brokers.registry_url, threading.Event()))
            write_user = avro.writer(users_topic, "Users")
            write_click = avro.writer(clicks_topic, "Clicks")
            rows = self.users(user_count)
            started = time.monotonic()
            preload(self.run.brokers, users_topic, user_records(rows, write_user))
            generated = islice(clicks(config(len(rows)), rows, write_click), count)
            preload(self.run.brokers, clicks_topic, ((c.key, c.value) for c in generated))
            say(
                f"preloaded {user_count:,} users and {count:,} clicks in Avro into {users_topic}"
                f" and {clicks_topic} in {time.monotonic() - started:.1f}s"
            )
            self._avro_topics[key] = (users_topic, clicks_topic)
        return self._avro_topics[key]

    def platinum_clicks(self, user_count: int, count: int) -> int:
        """How many VipActions the seed's query makes of that click topic."""
        return self._platinum[(user_count, count)]
