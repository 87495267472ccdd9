"""`GET /v1/vips/stream` on a real user-state over real topics: 200 clients at once each get the
snapshot and every event; a client that stops reading is dropped without holding the others
back. Session rows are written to the sessions topic as the sessions query writes them (that
topic is user-state's input contract); VipActions to the VipActions topic."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from clickstream_common.contracts import format_event_time
from confluent_kafka import Producer

from tests.support.eventually import eventually
from tests.support.pipeline import Names, Pipeline
from tests.support.services import Service
from tests.support.sessions import user_record

T0 = 1_764_000_000_000
MINUTE = 60_000
CLIENTS = 200


class SseClient:
    """One EventSource-like reader over a raw socket (HTTP/1.0: the body is the stream, no
    chunking), so hundreds fit in one event loop."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> SseClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        writer.write(b"GET /v1/vips/stream HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n")
        await writer.drain()
        status = await reader.readline()
        assert status.startswith(b"HTTP/1.1 200"), status
        while (await reader.readline()).strip():
            pass
        return cls(reader, writer)

    async def next_event(self) -> tuple[str, Any]:
        """The next event's name and JSON data, past comments (pings)."""
        name, data = "message", ""
        while True:
            line = (await self.reader.readline()).decode().rstrip("\r\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
            elif line == "" and data:
                return name, json.loads(data)
            elif line == "" and self.reader.at_eof():
                raise EOFError("the stream ended")

    async def until(self, name: str, count: int) -> list[Any]:
        """The data of the next `count` events called `name`, skipping others."""
        return (await self.gather(**{name: count}))[name]

    async def gather(self, **counts: int) -> dict[str, list[Any]]:
        """Events by name until there are at least `counts[name]` of each (the topics they come
        from are read apart, so their order between names is not fixed)."""
        found: dict[str, list[Any]] = {name: [] for name in counts}
        while any(len(found[name]) < count for name, count in counts.items()):
            event, data = await self.next_event()
            if event in found:
                found[event].append(data)
        return found

    def close(self) -> None:
        self.writer.close()


def session_row(user: str, start_min: int, last_min: int, clicks: int, carts: int) -> bytes:
    start, last = T0 + start_min * MINUTE, T0 + last_min * MINUTE
    return json.dumps(
        {
            "user_id": user,
            "window_start": format_event_time(start),
            "window_end": format_event_time(last + 30 * MINUTE),
            "last_event_time": format_event_time(last),
            "clicks": clicks,
            "carts": carts,
            "checkouts": 0,
            "final": False,
        }
    ).encode()


def action_row(user: str, n: int, padding: int = 0) -> bytes:
    value = {
        "user_id": user,
        "name": "VIP " + user + " " * padding,
        "page": n,
        "action": "view",
        "event_time": format_event_time(T0 + n),
    }
    return json.dumps(value).encode()


def start_user_state(
    names: Names, pipeline: Pipeline, new_topic: Callable[..., str], producer: Producer
) -> Service:
    new_topic(4, name=names.sessions)
    new_topic(4, name=names.vip)
    new_topic(1, name=names.users, compact=True)
    for user in ("a", "b"):
        producer.produce(names.users, user_record(user, "PLATINUM"), user.encode())
    producer.produce(names.sessions, session_row("a", 0, 3, 4, 0), b"a")
    producer.flush(30)
    return pipeline.start_user_state()


def test_two_hundred_clients_each_get_the_snapshot_and_every_event(
    names: Names,
    pipeline: Pipeline,
    new_topic: Callable[..., str],
    kafka_producer: Callable[..., Producer],
) -> None:
    producer = kafka_producer()
    user_state = start_user_state(names, pipeline, new_topic, producer)
    eventually(lambda: user_state.metric("user_state_open_sessions") == 1, timeout=30)

    async def scenario() -> None:
        clients = await asyncio.gather(*(SseClient.open(user_state.port) for _ in range(CLIENTS)))
        snapshots = await asyncio.gather(*(c.until("snapshot", 1) for c in clients))
        assert {s[0]["active"]["count"] for s in snapshots} == {1}
        assert {s[0]["active"]["vips"][0]["name"] for s in snapshots} == {"A"}
        assert user_state.metric("user_state_stream_clients") == CLIENTS

        producer.produce(names.sessions, session_row("b", 1, 4, 2, 1), b"b")
        for n in range(20):
            producer.produce(names.vip, action_row("b", n), b"b")
        producer.flush(30)
        got = await asyncio.gather(*(c.gather(session=1, action=20) for c in clients))
        assert {
            (s["kind"], s["vip"]["user_id"], s["vip"]["carts"]) for g in got for s in g["session"]
        } == {("opened", "b", 1)}
        assert all([a["page"] for a in g["action"]] == list(range(20)) for g in got)
        for client in clients:
            client.close()

    asyncio.run(asyncio.wait_for(scenario(), 120))
    eventually(lambda: user_state.metric("user_state_stream_clients") == 0, timeout=30)
    assert user_state.metric("user_state_stream_clients_dropped") == 0


def test_a_client_that_stops_reading_is_dropped_and_holds_nobody_back(
    names: Names,
    pipeline: Pipeline,
    new_topic: Callable[..., str],
    kafka_producer: Callable[..., Producer],
) -> None:
    producer = kafka_producer()
    user_state = start_user_state(names, pipeline, new_topic, producer)
    # About 30 MB of events: more than the stalled client's socket buffers and queue (20,000
    # events) hold, so the server must let it go, by its queue or by the 10 s send timeout.
    actions = 30_000

    async def scenario() -> None:
        stalled = await SseClient.open(user_state.port)  # never read again
        fast = await asyncio.gather(*(SseClient.open(user_state.port) for _ in range(3)))
        for client in fast:
            await client.until("snapshot", 1)

        def produce() -> None:
            """At a pace the fast clients keep up with (a client that cannot take a burst of
            20,000 events at once is dropped by design)."""
            for n in range(actions):
                producer.produce(names.vip, action_row("b", n, padding=900), b"b")
                if n % 1000 == 999:
                    producer.flush(30)
                    time.sleep(0.3)
            producer.flush(60)

        reading = asyncio.gather(*(c.until("action", actions) for c in fast))
        await asyncio.to_thread(produce)
        got = await reading
        assert all([a["page"] for a in rows] == list(range(actions)) for rows in got)
        # The server let the stalled client go; the fast ones are still connected.
        await asyncio.to_thread(
            eventually,
            lambda: user_state.metric("user_state_stream_clients") == 3,
            timeout=60,
        )
        stalled.close()
        for client in fast:
            client.close()

    asyncio.run(asyncio.wait_for(scenario(), 300))
