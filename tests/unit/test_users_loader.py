"""The restore loop over an in-memory users topic: what reaches the table, the DLQ, readiness."""

from __future__ import annotations

import orjson
from clickstream_common.contracts import User
from clickstream_common.lifecycle import Shutdown
from clickstream_common.metrics import Metrics
from clickstream_common.records import OutRecord, Record
from clickstream_user_state.loader import UsersLoader
from clickstream_user_state.store import Found, UserStore

T0 = 1_700_000_000_000


def user(offset: int, user_id: str, level: str, at: int = T0) -> Record:
    value = orjson.dumps({"user_id": user_id, "name": user_id.title(), "level": level})
    return Record("user", 0, offset, user_id.encode(), value, at)


class TopicInMemory:
    """One partition; stops the loader once every record has been handed out."""

    def __init__(self, records: list[Record], shutdown: Shutdown) -> None:
        self.records = records
        self.position = 0
        self.shutdown = shutdown

    def watermarks(self) -> dict[int, tuple[int, int]]:
        return {0: (0, len(self.records))}

    def positions(self) -> dict[int, int]:
        return {0: self.position}

    def poll_batch(self, max_records: int, timeout: float) -> list[Record]:
        batch = self.records[self.position : self.position + max_records]
        self.position += len(batch)
        if not batch:
            self.shutdown.request()
        return batch


class DeadLetters:
    def __init__(self) -> None:
        self.sent: list[OutRecord] = []

    def send_all(self, records: list[OutRecord]) -> None:
        self.sent.extend(records)

    def flush(self) -> None:
        pass


def restore(
    records: list[Record], batch_size: int = 2
) -> tuple[UsersLoader, UserStore, DeadLetters, Metrics]:
    shutdown = Shutdown()
    store, dead, metrics = UserStore(), DeadLetters(), Metrics("test")
    loader = UsersLoader(TopicInMemory(records, shutdown), store, metrics, dead, batch_size)
    loader.run(shutdown)
    return loader, store, dead, metrics


def test_users_tombstones_and_bad_records() -> None:
    records = [
        user(0, "ann", "gold"),
        user(1, "bo", "PLATINUM"),
        Record("user", 0, 2, b"bo", None, T0 + 10),  # tombstone
        Record("user", 0, 3, b"cy", b"{not json", T0),
        user(4, "ann", "Platinum", T0 + 20),
    ]
    loader, store, dead, metrics = restore(records)
    assert loader.ready
    assert store.latest("ann").user == User("ann", "Ann", "PLATINUM")
    assert store.as_of("ann", T0 + 5).user == User("ann", "Ann", "GOLD")
    assert store.latest("bo").found is Found.ABSENT
    assert store.as_of("bo", T0 + 5).user == User("bo", "Bo", "PLATINUM")
    assert store.latest("cy").found is Found.UNKNOWN
    assert [dict(r.headers)["dlq.source.offset"] for r in dead.sent] == ["3"]
    assert dict(dead.sent[0].headers)["dlq.error"].startswith("not JSON")
    assert metrics.value("users_applied") == 4
    assert metrics.value("users_dead_lettered") == 1
    assert store.levels() == {"GOLD": 0, "PLATINUM": 1}


def test_versions_from_the_same_millisecond_share_one_timestamp_object() -> None:
    # Built at run time: equal ints from different records, not one constant.
    records = [user(i, f"u{i}", "GOLD", int(str(T0))) for i in range(4)]
    assert records[0].timestamp_ms is not records[1].timestamp_ms
    _, store, _, _ = restore(records, batch_size=4)
    stamps = {id(store._table[f"u{i}"].valid_from_ms) for i in range(4)}  # type: ignore[union-attr]
    assert len(stamps) == 1


def test_memory_is_released_once_caught_up_and_before_ready() -> None:
    shutdown = Shutdown()
    calls: list[bool] = []
    loader = UsersLoader(
        TopicInMemory([user(0, "ann", "GOLD"), user(1, "bo", "GOLD")], shutdown),
        UserStore(),
        Metrics("test"),
        DeadLetters(),
        batch_size=1,
        on_caught_up=lambda: calls.append(loader.ready),
    )
    loader.run(shutdown)
    assert calls == [False]  # once, and readiness came after it
    assert loader.ready
