"""Clicks as people make them: visits in bursts with think times, away for longer than a
session gap, back later; some visits fill a cart, some of those end in a checkout; now and then
a user is upgraded (to PLATINUM, say) mid-day. Each click carries its event time on a simulated
clock, so a demo "day" passes in minutes when the runner speeds that clock up.

Pure and deterministic: the same seed, users and start time give the same clicks and times.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from clickstream_common.contracts import LEVELS, encode_json
from clickstream_common.formats import RowWriter

from clickstream_generator.data import (
    AGENTS,
    DEVICES,
    MAX_PAGE,
    ClickKind,
    DataConfig,
    GeneratedClick,
    UserRow,
)

SECOND = 1000
MINUTE = 60 * SECOND
BROWSING = ("home", "search", "products", "product_detail", "selection")


@dataclass(frozen=True)
class VisitModel:
    """The shape of a visit, in simulated milliseconds."""

    mean_clicks: float = 8.0
    think_ms: tuple[int, int] = (5 * SECOND, 4 * MINUTE)
    # Longer than the 30-minute session gap of queries/vip-sessions.sql, so visits stay apart.
    away_ms: tuple[int, int] = (45 * MINUTE, 6 * 60 * MINUTE)
    cart_share: float = 0.35
    checkout_share: float = 0.5  # of the visits with a cart
    upgrade_every_ms: int = 20 * MINUTE  # on average, some user changes level


class Upgrade(NamedTuple):
    """A new version of a user: the users topic's record for a level change."""

    event_ms: int
    user: UserRow


class TimedClick(NamedTuple):
    event_ms: int
    click: GeneratedClick


@dataclass
class _Visitor:
    user: UserRow
    left: int  # clicks left in this visit
    cart: bool
    checkout: bool
    device: str
    agent: str


def visits(
    config: DataConfig,
    known: Sequence[UserRow],
    start_ms: int,
    model: VisitModel = VisitModel(),
    encode: RowWriter = encode_json,
) -> Iterator[TimedClick | Upgrade]:
    """An endless stream of clicks and level upgrades in event-time order."""
    rng = random.Random(f"clickstream-generator/{config.seed}/visits")
    users = [UserRow(user_id=r["user_id"], name=r["name"], level=r["level"]) for r in known]
    queue: list[tuple[int, int]] = []  # (next event ms, user index)
    visitors: dict[int, _Visitor] = {}
    for index in range(len(users)):
        queue.append((start_ms + rng.randrange(0, model.away_ms[1]), index))
    heapq.heapify(queue)
    next_upgrade = start_ms + int(rng.expovariate(1 / model.upgrade_every_ms))
    while queue:
        now, index = queue[0]
        if next_upgrade <= now and users:
            yield _upgrade(rng, users, next_upgrade)
            next_upgrade += max(1, int(rng.expovariate(1 / model.upgrade_every_ms)))
            continue
        heapq.heappop(queue)
        visitor = visitors.get(index)
        if visitor is None:
            visitor = visitors[index] = _start_visit(rng, users[index], model)
        action = _action(rng, visitor)
        row = {
            "user_id": visitor.user["user_id"],
            "page": rng.randint(1, MAX_PAGE),
            "action": action,
            "device": visitor.device,
            "agent": visitor.agent,
            "event_time": now,
        }
        key = visitor.user["user_id"].encode()
        yield TimedClick(now, GeneratedClick(key, encode(row), ClickKind.KNOWN))
        visitor.left -= 1
        if visitor.left > 0:
            heapq.heappush(queue, (now + rng.randint(*model.think_ms), index))
        else:
            del visitors[index]
            heapq.heappush(queue, (now + rng.randint(*model.away_ms), index))


def _start_visit(rng: random.Random, user: UserRow, model: VisitModel) -> _Visitor:
    clicks = 1 + int(rng.expovariate(1 / max(model.mean_clicks - 1, 0.1)))
    cart = rng.random() < model.cart_share
    checkout = cart and rng.random() < model.checkout_share
    return _Visitor(
        user=user,
        left=clicks + (1 if cart else 0) + (1 if checkout else 0),
        cart=cart,
        checkout=checkout,
        device=rng.choice(DEVICES),
        agent=rng.choice(AGENTS),
    )


def _action(rng: random.Random, visitor: _Visitor) -> str:
    """Browse; a visit with a cart puts something in it before the end, then checks out."""
    if visitor.checkout and visitor.left == 1:
        return "checkout"
    if visitor.cart and visitor.left == (2 if visitor.checkout else 1):
        return "cart"
    return rng.choice(BROWSING)


def _upgrade(rng: random.Random, users: list[UserRow], event_ms: int) -> Upgrade:
    """One user moves a level up (most often into PLATINUM's reach) or, rarely, down."""
    user = users[rng.randrange(len(users))]
    rank = LEVELS.index(user["level"]) if user["level"] in LEVELS else 0
    step = 1 if rng.random() < 0.8 else -1
    user["level"] = LEVELS[min(max(rank + step, 0), len(LEVELS) - 1)]
    return Upgrade(
        event_ms, UserRow(user_id=user["user_id"], name=user["name"], level=user["level"])
    )
