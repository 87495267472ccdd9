"""`vip-watch`: VIP actions as they reach RabbitMQ, with a running count and rate, and each VIP
session as the sessions query closes it.

It taps the exchange through its own temporary queue, so watching never takes messages away
from the business's durable queue. It reads the bridge's settings (RABBITMQ_URL or
RABBITMQ_URL_FILE, RABBITMQ_EXCHANGE), so it watches whatever the bridge publishes to. With
VIP_SESSIONS_TOPIC set, it also reads that topic from its end, in a group of its own, and prints
a line per final session row (queries/vip-sessions.sql).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from datetime import datetime
from types import FrameType
from typing import Any

from clickstream_common.avro import value_format_from
from clickstream_common.contracts import BadRecord, decode_json
from clickstream_common.formats import ValueFormat
from clickstream_common.kafka import BatchConsumer
from clickstream_common.lifecycle import Shutdown
from clickstream_common.rabbit import QueueReader, mask_url
from clickstream_common.records import Record
from clickstream_common.settings import SettingsError

from clickstream_rabbit_bridge.settings import Settings


def _line(body: bytes) -> str:
    try:
        action: Any = decode_json(body)
        return (
            f"{action.get('event_time', '?'):<24}  {action.get('name', '?')!s:<24.24} "
            f"{action.get('user_id', '?')!s:<12} {action.get('action', '?')!s:<15} "
            f"page {action.get('page', '?')}"
        )
    except (ValueError, AttributeError):
        return body[:120].decode("utf-8", "replace")


def _session_line(value: bytes) -> str | None:
    """A closed session as one line; None for an update or a retraction."""
    try:
        row: Any = decode_json(value)
        if not row.get("final") or row.get("retract"):
            return None
        start = datetime.fromisoformat(row["session_start"])
        last = datetime.fromisoformat(row["last_event_time"])
        minutes = (last - start).total_seconds() / 60
        return (
            f"session   {row.get('name', '?')!s:<24.24} {row.get('user_id', '?')!s:<12} "
            f"{start:%H:%M}-{last:%H:%M} ({minutes:.0f} min on site): clicks {row.get('clicks')}, "
            f"carts {row.get('carts', 0)}, checkouts {row.get('checkouts', 0)}"
        )
    except (ValueError, AttributeError, KeyError, TypeError):
        return value[:120].decode("utf-8", "replace")


def _as_json(record: Record, value_format: ValueFormat) -> bytes:
    """A session row in the JSON form, whatever VALUE_FORMAT the topic is in."""
    try:
        return value_format.json_body(record, value_format.read(record, None, 1 << 20))
    except BadRecord:
        return record.value or b""


def _sessions_reader(settings: Settings) -> BatchConsumer | None:
    topic = os.environ.get("VIP_SESSIONS_TOPIC", "").strip()
    if not topic:
        return None
    consumer = BatchConsumer(
        settings.kafka, f"vip-watch-{uuid.uuid4().hex[:8]}", options={"auto.offset.reset": "latest"}
    )
    consumer.subscribe([topic])
    return consumer


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"vip-watch: {exc}", file=sys.stderr)
        return 2
    url, exchange = settings.rabbitmq_url, settings.topology.exchange
    stop = False

    def request_stop(_: int, __: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    reader = None
    while reader is None and not stop:
        try:
            reader = QueueReader.tap(url, exchange)
        except Exception as exc:
            print(f"waiting for exchange {exchange!r} at {mask_url(url)}: {type(exc).__name__}")
            time.sleep(2)
    if reader is None:
        return 0
    print(f"watching VIP actions on exchange {exchange!r} at {mask_url(url)} (Ctrl-C to stop)")
    sessions = _sessions_reader(settings)
    value_format = value_format_from(settings.formats, Shutdown())
    count = 0
    started = time.monotonic()
    window: list[float] = []
    last_status = started
    try:
        while not stop:
            received = reader.poll(0.5)
            for record in sessions.poll_batch(100, 0) if sessions is not None else []:
                line = _session_line(_as_json(record, value_format))
                if line is not None:
                    print(f"{'':>8}  {line}")
            now = time.monotonic()
            if received is not None:
                count += 1
                window.append(now)
                print(f"{count:>8}  {_line(received.body)}")
            window = [t for t in window if now - t <= 10]
            if now - last_status >= 5:
                rate = len(window) / min(10.0, now - started)
                print(f"--- {count} VIP actions received, {rate:.1f}/s over the last 10 s ---")
                last_status = now
            sys.stdout.flush()
    finally:
        reader.close()
        if sessions is not None:
            sessions.close()
    print(f"--- {count} VIP actions received in {time.monotonic() - started:.0f} s ---")
    return 0


if __name__ == "__main__":
    sys.exit(main())
