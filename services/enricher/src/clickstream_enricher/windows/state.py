"""A key's open windows, and their changelog encoding.

Each key's state also remembers the offset of the last input record it applied: one key's
records all come from one input partition, in order, so a record at or below that offset was
already counted, and a replay after a crash (at least once) skips it instead of counting it
twice. A key whose windows are all closed keeps that offset until the input's committed
position has passed it (no replay can reach it any more); only then is it evicted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import orjson

from clickstream_enricher.windows.aggregates import AggregateKind, decode, encode

Key = tuple[object, ...]
WATERMARK_KEY: Final[bytes] = b"watermark"


@dataclass(slots=True)
class Window:
    start: int
    end: int
    last: int
    """The latest event time in the window (a session's end is this plus the gap)."""
    accs: list[object]
    shown: tuple[int, int] | None = None
    """(start, end) of the last update row emitted for it, so it can be retracted."""
    changed: bool = True


@dataclass(slots=True)
class KeyState:
    last_offset: int
    windows: list[Window] = field(default_factory=list)
    size: int = 0
    """Bytes of its last changelog value: the state-size metric."""


def encode_key(key: Key) -> bytes:
    return orjson.dumps(list(key))


def decode_key(data: bytes) -> Key:
    return tuple(orjson.loads(data))


def encode_state(state: KeyState, kinds: Sequence[AggregateKind]) -> bytes:
    windows = [
        [
            w.start,
            w.end,
            w.last,
            None if w.shown is None else list(w.shown),
            [encode(kind, acc) for kind, acc in zip(kinds, w.accs, strict=True)],
        ]
        for w in state.windows
    ]
    return orjson.dumps({"o": state.last_offset, "w": windows})


def decode_state(data: bytes, kinds: Sequence[AggregateKind]) -> KeyState:
    obj = orjson.loads(data)
    windows = [
        Window(
            start=start,
            end=end,
            last=last,
            accs=[decode(kind, acc) for kind, acc in zip(kinds, accs, strict=True)],
            shown=None if shown is None else (shown[0], shown[1]),
            changed=False,
        )
        for start, end, last, shown, accs in obj["w"]
    ]
    return KeyState(last_offset=obj["o"], windows=windows, size=len(data))


def encode_watermark(max_event_ms: int | None, closed_through: int | None) -> bytes:
    """A partition's event-time progress: the highest event time seen, and the watermark its
    windows were closed up to (a record behind that stays late, whoever owns the partition)."""
    return orjson.dumps({"max_event_ms": max_event_ms, "closed_through": closed_through})


def decode_watermark(data: bytes) -> tuple[int | None, int | None]:
    value = orjson.loads(data)
    return value.get("max_event_ms"), value.get("closed_through")
