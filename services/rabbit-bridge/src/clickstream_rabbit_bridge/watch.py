"""`vip-watch`: VIP actions as they reach RabbitMQ, with a running count and rate.

It taps the exchange through its own temporary queue, so watching never takes messages away
from the business's durable queue. It reads the bridge's settings (RABBITMQ_URL or
RABBITMQ_URL_FILE, RABBITMQ_EXCHANGE), so it watches whatever the bridge publishes to.
"""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType
from typing import Any

from clickstream_common.contracts import decode_json
from clickstream_common.rabbit import QueueReader, mask_url
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
    count = 0
    started = time.monotonic()
    window: list[float] = []
    last_status = started
    try:
        while not stop:
            received = reader.poll(0.5)
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
    print(f"--- {count} VIP actions received in {time.monotonic() - started:.0f} s ---")
    return 0


if __name__ == "__main__":
    sys.exit(main())
