"""A key's open windows, and their changelog encoding.

Each key's state also remembers the offset of the last input record it applied: one key's
records all come from one input partition, in order, so a record at or below that offset was
already counted, and a replay after a crash (at least once) skips it instead of counting it
twice. A key whose windows are all closed keeps that offset until the input's committed
position has passed it (no replay can reach it any more); only then is it evicted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec
import orjson

from clickstream_enricher.windows.aggregates import AggregateKind, distinct

Key = tuple[object, ...]
WATERMARK_KEY: Final[bytes] = b"watermark"


# msgspec Structs, encoded as JSON arrays: compact in memory (no __dict__, no GC header: they
# never form cycles), and decoded from the changelog straight into objects, in C. A restore
# reads one per key, so that is its cost.
class Window(msgspec.Struct, array_like=True, gc=False):
    start: int
    end: int
    last: int
    """The latest event time in the window (a session's end is this plus the gap)."""
    accs: list[Any]
    shown: int | None = None
    """The window_start its update rows were emitted under, so that row can be retracted (a
    retraction carries the window's latest end)."""
    changed: bool = True
    """Changed since the last flush; always false in the changelog."""


class KeyState(msgspec.Struct, array_like=True, gc=False):
    last_offset: int
    windows: list[Window] = msgspec.field(default_factory=list)
    size: int = 0
    """Bytes of its previous changelog value: the state-size metric."""


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(KeyState)


def encode_key(key: Key) -> bytes:
    return orjson.dumps(list(key))


def decode_key(data: bytes) -> Key:
    return tuple(orjson.loads(data))


def encode_state(state: KeyState) -> bytes:
    """COUNT(DISTINCT)'s values go out as arrays; `distinct_positions` says where to rebuild
    their compact form."""
    return _ENCODER.encode(state)


def decode_state(data: bytes, distinct_positions: Sequence[int]) -> KeyState:
    state = _DECODER.decode(data)
    state.size = len(data)
    if distinct_positions:
        for window in state.windows:
            for i in distinct_positions:
                window.accs[i] = distinct(window.accs[i])
    return state


def distinct_positions(kinds: Sequence[AggregateKind]) -> list[int]:
    return [i for i, kind in enumerate(kinds) if kind == "count_distinct"]


def encode_watermark(max_event_ms: int | None, closed_through: int | None) -> bytes:
    """A partition's event-time progress: the highest event time seen, and the watermark its
    windows were closed up to (a record behind that stays late, whoever owns the partition)."""
    return orjson.dumps({"max_event_ms": max_event_ms, "closed_through": closed_through})


def decode_watermark(data: bytes) -> tuple[int | None, int | None]:
    value = orjson.loads(data)
    return value.get("max_event_ms"), value.get("closed_through")
