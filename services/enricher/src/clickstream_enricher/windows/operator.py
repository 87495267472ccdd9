"""The window operator: records in, and once per batch the rows and changelog changes they make.

Per record (`add`): skip it if its key already applied its offset (a replay), assign it to its
windows, merging sessions it bridges, or report it late when every window it belongs to is
already closed. Per batch (`flush`): move the watermark, close the windows it has passed (a
final row each), emit the current row of every window changed since the last flush (one per
window, `final: false`), retract the rows of windows merged away or moved, and write the state
of every changed key to the changelog.

A window's identity for a consumer is (user, window_start): when a merge moves a session's
start, the row under the old start is retracted and the next update carries the new one.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from clickstream_common.contracts import format_event_time

from clickstream_enricher.rows import Row
from clickstream_enricher.windows import aggregates
from clickstream_enricher.windows.alignment import Alignment
from clickstream_enricher.windows.plan import AggregateQuery
from clickstream_enricher.windows.rows import OutputRow, RowMaker
from clickstream_enricher.windows.spec import Session
from clickstream_enricher.windows.state import (
    WATERMARK_KEY,
    Key,
    KeyState,
    Window,
    decode_key,
    decode_state,
    decode_watermark,
    distinct_positions,
    encode_key,
    encode_state,
    encode_watermark,
)
from clickstream_enricher.windows.watermarks import Watermarks


class BadGroupKey(ValueError):
    """A row whose group key holds a JSON object or array: it has no group; dead-lettered."""


_KEY_TYPES = (str, int, float, bool, type(None))


@dataclass(frozen=True, slots=True)
class ChangelogEntry:
    partition: int
    key: bytes
    value: bytes | None


@dataclass(slots=True)
class Emission:
    rows: list[OutputRow]
    changelog: list[ChangelogEntry]


class WindowOperator:
    def __init__(
        self, query: AggregateQuery, watermarks: Watermarks, zone: ZoneInfo | None = None
    ) -> None:
        self._query = query
        self._kinds = [spec.kind for spec in query.aggregates]
        self._distinct = distinct_positions(self._kinds)
        self._adders = [aggregates.adder(spec) for spec in query.aggregates]
        self._rows = RowMaker(query)
        self._watermarks = watermarks
        self._session_gap = query.window.gap_ms if isinstance(query.window, Session) else None
        self._alignment = (
            None if isinstance(query.window, Session) else Alignment(query.window, zone)
        )
        self._keys: dict[int, dict[Key, KeyState]] = {}
        self._changed: dict[int, set[Key]] = {}
        self._retired: dict[int, dict[Key, int]] = {}
        self._evicted: list[ChangelogEntry] = []
        self._watermark_moved: set[int] = set()
        # Per partition, the watermark its windows have been closed up to.
        self._closed_through: dict[int, int] = {}
        self._retractions: list[OutputRow] = []
        # (window end, partition, key, window start): the next window to close. A session that
        # grows keeps its entry, re-queued at its new end when popped; entries of windows merged
        # away are skipped then.
        self._closing: list[tuple[int, int, Key, int]] = []

    # -- partitions ---------------------------------------------------------------------------

    def assign(self, partition: int, changelog: Iterable[tuple[bytes, bytes | None]]) -> int:
        """Take a partition on from its changelog, in log order; returns the records restored."""
        keys: dict[Key, KeyState] = {}
        max_event_ms: int | None = None
        closed_through: int | None = None
        restored = 0
        for raw_key, value in changelog:
            restored += 1
            if raw_key == WATERMARK_KEY:
                if value is not None:
                    max_event_ms, closed_through = decode_watermark(value)
                continue
            key = decode_key(raw_key)
            if value is None:
                keys.pop(key, None)
            else:
                keys[key] = decode_state(value, self._distinct)
        self._keys[partition] = keys
        self._changed[partition] = set()
        self._retired[partition] = {}
        for key, state in keys.items():
            if not state.windows:
                self._retired[partition][key] = state.last_offset
            for window in state.windows:
                heapq.heappush(self._closing, (window.end, partition, key, window.start))
        self._watermarks.assign(partition, max_event_ms)
        # At once, not at the next flush: this batch's records of the partition would otherwise
        # be judged late by a watermark that does not count it.
        self._watermarks.advance()
        if closed_through is not None:
            self._closed_through[partition] = closed_through
        return restored

    def revoke(self, partitions: Iterable[int]) -> None:
        partitions = list(partitions)
        for partition in partitions:
            self._keys.pop(partition, None)
            self._changed.pop(partition, None)
            self._retired.pop(partition, None)
            self._watermark_moved.discard(partition)
            self._closed_through.pop(partition, None)
        gone = set(partitions)
        self._closing = [entry for entry in self._closing if entry[1] not in gone]
        heapq.heapify(self._closing)
        self._evicted = [entry for entry in self._evicted if entry.partition not in gone]
        self._watermarks.revoke(partitions)

    def committed(self, partition: int, next_offset: int) -> None:
        """The input is committed below `next_offset`: keys with no open window whose last
        record is below it can no longer be replayed, so they are evicted (a tombstone)."""
        retired = self._retired.get(partition)
        if not retired:
            return
        keys = self._keys[partition]
        for key in [k for k, offset in retired.items() if offset < next_offset]:
            del retired[key]
            del keys[key]
            self._changed[partition].discard(key)
            self._evicted.append(ChangelogEntry(partition, encode_key(key), None))

    # -- records ------------------------------------------------------------------------------

    def observe(self, partition: int, event_ms: int) -> None:
        """An input record that reaches no window (filtered out, or without a user) still moves
        its partition's watermark: event time is the input's, as a source's watermark in Flink."""
        self._watermarks.observe(partition, event_ms)
        self._watermark_moved.add(partition)

    def add(
        self, partition: int, offset: int, event_ms: int, click: Row, user: Row | None
    ) -> str | None:
        """Apply one input row; returns why it is late, or None once applied (or skipped as a
        replay of a record this state already counted). `BadGroupKey` if it has no group."""
        query = self._query
        key = tuple(get(click, user) for get in query.keys)
        for part in key:
            if part.__class__ not in _KEY_TYPES:
                raise BadGroupKey(f"group key value is a JSON {type(part).__name__}, not a value")
        keys = self._keys[partition]
        state = keys.get(key)
        if state is not None and offset <= state.last_offset:
            return None
        self._watermarks.observe(partition, event_ms)
        if state is None:
            state = keys[key] = KeyState(last_offset=-1)
        watermark = self._late_mark(partition)
        if self._session_gap is not None:
            late = self._add_to_session(partition, key, state, event_ms, watermark, click, user)
        else:
            late = self._add_to_fixed(partition, key, state, event_ms, watermark, click, user)
        if late is not None:
            if not state.windows and state.last_offset < 0:
                del keys[key]
            return late
        state.last_offset = offset
        self._retired[partition].pop(key, None)
        self._changed[partition].add(key)
        self._watermark_moved.add(partition)
        return None

    def _add_to_session(
        self,
        partition: int,
        key: Key,
        state: KeyState,
        event_ms: int,
        watermark: int | None,
        click: Row,
        user: Row | None,
    ) -> str | None:
        gap = self._session_gap
        assert gap is not None
        end = event_ms + gap
        bridged = [w for w in state.windows if w.start < end and event_ms < w.end]
        if not bridged:
            if watermark is not None and end <= watermark:
                return _late(event_ms, watermark, event_ms, end)
            window = self._new_window(event_ms, end, event_ms)
            state.windows.append(window)
            heapq.heappush(self._closing, (end, partition, key, event_ms))
        else:
            bridged.sort(key=lambda w: w.start)
            window = bridged[0]
            for other in bridged[1:]:
                window.accs = [
                    aggregates.merge(kind, a, b)
                    for kind, a, b in zip(self._kinds, window.accs, other.accs, strict=True)
                ]
                window.end = max(window.end, other.end)
                window.last = max(window.last, other.last)
                if other.shown is not None:
                    self._retract(key, (other.shown, other.end))
                state.windows.remove(other)
            window.end = max(window.end, end)
            window.last = max(window.last, event_ms)
            if event_ms < window.start:
                window.start = event_ms
                if window.shown is not None and window.shown != window.start:
                    self._retract(key, (window.shown, window.end))
                    window.shown = None
                heapq.heappush(self._closing, (window.end, partition, key, window.start))
        self._accumulate(window, click, user)
        return None

    def _add_to_fixed(
        self,
        partition: int,
        key: Key,
        state: KeyState,
        event_ms: int,
        watermark: int | None,
        click: Row,
        user: Row | None,
    ) -> str | None:
        assert self._alignment is not None
        spans = self._alignment.windows(event_ms)
        open_spans = [(s, e) for s, e in spans if watermark is None or e > watermark]
        if not open_spans:
            start, end = spans[0]
            assert watermark is not None
            return _late(event_ms, watermark, start, end)
        for start, end in open_spans:
            window = next((w for w in state.windows if w.start == start), None)
            if window is None:
                window = self._new_window(start, end, event_ms)
                state.windows.append(window)
                heapq.heappush(self._closing, (end, partition, key, start))
            window.last = max(window.last, event_ms)
            self._accumulate(window, click, user)
        return None

    def _late_mark(self, partition: int) -> int | None:
        """Behind this, a record's window is closed: the operator's watermark, or how far this
        partition's windows were closed before, if that is further (its owner was ahead)."""
        current = self._watermarks.current
        closed = self._closed_through.get(partition)
        if closed is None or (current is not None and current > closed):
            return current
        return closed

    def _new_window(self, start: int, end: int, last: int) -> Window:
        return Window(start, end, last, [aggregates.initial(kind) for kind in self._kinds])

    def _accumulate(self, window: Window, click: Row, user: Row | None) -> None:
        accs = window.accs
        for i, add in enumerate(self._adders):
            accs[i] = add(accs[i], click, user)
        window.changed = True

    def _retract(self, key: Key, shown: tuple[int, int]) -> None:
        self._retractions.append(self._rows.row(key, None, shown, final=True, retract=True))

    # -- batches ------------------------------------------------------------------------------

    def flush(self) -> Emission:
        """Close what the watermark passed, emit the changed windows' rows, and the changelog."""
        rows, self._retractions = self._retractions, []
        watermark = self._watermarks.advance()
        if watermark is not None:
            closed_in = self._close(watermark, rows)
            for partition in self._keys:
                if watermark > self._closed_through.get(partition, watermark - 1):
                    self._closed_through[partition] = watermark
            # Persisted where it matters: where a window closed, a record behind it is late.
            self._watermark_moved |= closed_in
        changelog, self._evicted = self._evicted, []
        for partition, changed in self._changed.items():
            keys = self._keys[partition]
            for key in changed:
                state = keys[key]
                for window in state.windows:
                    if window.changed:
                        window.changed = False
                        self._show(key, window, rows)
                value = encode_state(state)
                state.size = len(value)
                changelog.append(ChangelogEntry(partition, encode_key(key), value))
            changed.clear()
        for partition in self._watermark_moved:
            progress = encode_watermark(
                self._watermarks.max_event_ms(partition), self._closed_through.get(partition)
            )
            changelog.append(ChangelogEntry(partition, WATERMARK_KEY, progress))
        self._watermark_moved.clear()
        return Emission(rows, changelog)

    def _close(self, watermark: int, rows: list[OutputRow]) -> set[int]:
        """Close every window the watermark passed; returns the partitions they were in."""
        closed_in: set[int] = set()
        closing = self._closing
        while closing and closing[0][0] <= watermark:
            end, partition, key, start = heapq.heappop(closing)
            state = self._keys.get(partition, {}).get(key)
            if state is None:
                continue
            window = next((w for w in state.windows if w.start == start), None)
            if window is None:
                continue  # merged away, or its start moved (an entry for the new one exists)
            if window.end > end:  # a session grown since: one entry per window, re-queued late
                heapq.heappush(closing, (window.end, partition, key, start))
                continue
            state.windows.remove(window)
            closed_in.add(partition)
            results = self._rows.results(window)
            if self._rows.holds(key, results):
                rows.append(self._rows.row(key, window, (start, end), final=True, results=results))
            elif window.shown is not None:
                rows.append(self._rows.row(key, None, (start, end), final=True, retract=True))
            self._changed[partition].add(key)
            if not state.windows:
                self._retired[partition][key] = state.last_offset
        return closed_in

    def _show(self, key: Key, window: Window, rows: list[OutputRow]) -> None:
        results = self._rows.results(window)
        if self._rows.holds(key, results):
            window.shown = window.start
            span = (window.start, window.end)
            rows.append(self._rows.row(key, window, span, final=False, results=results))
        elif window.shown is not None:
            rows.append(
                self._rows.row(key, None, (window.shown, window.end), final=True, retract=True)
            )
            window.shown = None

    # -- metrics ------------------------------------------------------------------------------

    @property
    def open_windows(self) -> int:
        return sum(len(s.windows) for keys in self._keys.values() for s in keys.values())

    @property
    def state_bytes(self) -> int:
        return sum(s.size for keys in self._keys.values() for s in keys.values())


def _late(event_ms: int, watermark: int, start: int, end: int) -> str:
    return (
        f"late: event_time {format_event_time(event_ms)} is behind the watermark "
        f"{format_event_time(watermark)}; its window [{format_event_time(start)}, "
        f"{format_event_time(end)}) is closed"
    )
