"""The live side of VIP activity: what each session row changed, the fan-out to stream clients
(a client that falls behind is dropped, the others get everything), and a stream's order:
snapshot first, once ready, then events."""

from __future__ import annotations

import asyncio
import json
import threading
from zoneinfo import ZoneInfo

import pytest
from clickstream_common.contracts import BadRecord, User, parse_event_time
from clickstream_common.records import Record
from clickstream_user_state.activity import ActivityBoard
from clickstream_user_state.activity_live import LiveActivity
from clickstream_user_state.activity_rows import ActionRow, decode_action, decode_session
from clickstream_user_state.activity_views import Views
from clickstream_user_state.live_feed import LiveFeed
from clickstream_user_state.store import UserStore

from tests.unit.test_activity import Clock, session

T0 = parse_event_time("2026-12-03T10:00:00.000Z")
DAY_MS = 86_400_000


def views() -> Views:
    store = UserStore()
    store.apply("a", User("a", "Ann", "PLATINUM"), 0)
    board = ActivityBoard(ZoneInfo("UTC"), 7 * DAY_MS, Clock())
    return Views(board, store, wall_clock=lambda: T0 / 1000)


def test_each_session_row_says_what_it_changed() -> None:
    board = views().board
    rows = [
        session("a", 0, 5, 2),
        session("a", 0, 9, 3),
        session("a", 0, 9, 3, final=True),
        session("a", 60, 61, 1),
        session("a", 60, 61, 1, retract=True),
    ]
    kinds = [e.kind for e in board.apply_sessions([decode_session(r) for r in rows])]
    assert kinds == ["opened", "updated", "closed", "opened", "retracted"]


def action(user: str, n: int) -> Record:
    value = {"user_id": user, "name": "Ann", "page": n, "action": "view", "event_time": T0 + n}
    return Record("vip-action", 0, n, user.encode(), json.dumps(value).encode(), T0, ())


def test_actions_are_read_tolerantly_and_refused_when_not_actions() -> None:
    assert decode_action(action("a", 5)) == ActionRow(
        "a", "2026-12-03T10:00:00.005Z", "Ann", "view", 5
    )
    for bad in (b"[]", b"{}", b'{"user_id": "a", "event_time": "soon"}', b"\xff"):
        with pytest.raises(BadRecord):
            decode_action(Record("vip-action", 0, 0, b"a", bad, T0, ()))


def test_a_client_that_falls_behind_is_dropped_and_the_others_get_everything() -> None:
    feed = LiveFeed(max_events=10)

    async def scenario() -> tuple[int, bool, bool]:
        fast, slow = feed.subscribe(), feed.subscribe()
        taken = threading.Semaphore(1)  # the fast client keeps up: one event in its queue at most

        def publish() -> None:
            for i in range(50):
                taken.acquire()
                feed.publish([("action", str(i))])

        publisher = threading.Thread(target=publish)
        received: list[str] = []

        async def read_fast() -> None:
            while len(received) < 50:
                received.extend(e.data for e in await fast.next_events())
                taken.release()

        publisher.start()
        await asyncio.wait_for(read_fast(), 10)
        publisher.join()
        await asyncio.sleep(0.05)  # the last hops onto the loop
        feed.unsubscribe(fast)
        feed.unsubscribe(slow)
        return len(received), fast.lost, slow.lost

    taken, fast_lost, slow_lost = asyncio.run(scenario())
    assert (taken, fast_lost, slow_lost) == (50, False, True)
    assert (feed.subscribers, feed.dropped) == (0, 1)


def test_a_stream_waits_for_ready_then_sends_the_snapshot_then_events() -> None:
    view = views()
    feed = LiveFeed()
    live = LiveActivity(view, feed, sample_seconds=10)
    live.apply_actions([decode_action(action("a", 1))])
    ready = threading.Event()

    async def scenario() -> list[tuple[str | None, dict[str, object]]]:
        stream = live.stream(ready.is_set)
        first = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.3)
        assert not first.done(), "a snapshot before the tables caught up"
        ready.set()
        events = [await asyncio.wait_for(first, 5)]
        await asyncio.to_thread(
            live.apply_sessions, [decode_session(session("a", 0, 5, 2, carts=1))]
        )
        await asyncio.to_thread(live.apply_actions, [decode_action(action("a", 2))])
        await asyncio.to_thread(live.sample)
        for _ in range(3):
            events.append(await asyncio.wait_for(anext(stream), 5))
        await stream.aclose()
        return [(e.event, json.loads(str(e.data))) for e in events]

    (snap, snapshot), (s, changed), (a, row), (c, sample) = asyncio.run(scenario())
    assert (snap, s, a, c) == ("snapshot", "session", "action", "count")
    assert snapshot["active"]["count"] == 0  # type: ignore[index]
    assert [r["page"] for r in snapshot["actions"]] == [1]  # type: ignore[attr-defined]
    assert changed["kind"] == "opened"
    assert changed["vip"]["name"] == "Ann"  # type: ignore[index]
    assert changed["vip"]["carts"] == 1  # type: ignore[index]
    assert row["page"] == 2
    assert sample["count"] == 1
    assert [s.count for s in live.history()][-1] == 1
    assert feed.subscribers == 0, "a closed stream left its subscription behind"
