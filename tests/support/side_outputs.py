"""The enricher's side outputs, click.dlq and click.unmatched, checked against the oracle: exactly
the records it expects there, each naming its source (and, dead-lettered, its error)."""

from __future__ import annotations

import contextlib

from tests.support.eventually import GaveUpWaiting, eventually
from tests.support.oracle import Expectation, KafkaRow, read_topic
from tests.support.pipeline import BrokerAddresses, Names


def wait_for_count(
    brokers: BrokerAddresses, topic: str, count: int, timeout: float = 60
) -> list[KafkaRow]:
    """The records of `topic` once it holds `count` of them, or what it holds when the time is
    up (the caller's comparison then says what is missing)."""
    rows = read_topic(brokers.kafka, topic)

    def enough() -> bool:
        rows[:] = read_topic(brokers.kafka, topic)
        return len(rows) >= count

    if len(rows) < count:
        with contextlib.suppress(GaveUpWaiting):
            eventually(enough, timeout=timeout, interval=1)
    return rows


def source_of(row: KafkaRow) -> tuple[int, int]:
    """(partition, offset) of the click a side-output record stands for."""
    return int(row.headers["dlq.source.partition"]), int(row.headers["dlq.source.offset"])


def check_side_outputs(
    brokers: BrokerAddresses, names: Names, expected: Expectation
) -> tuple[int, int]:
    dead = wait_for_count(brokers, f"{names.clicks}.dlq", len(expected.invalid_clicks))
    assert {source_of(r) for r in dead} == expected.invalid_clicks
    assert all(
        r.headers["dlq.source.topic"] == names.clicks and r.headers["dlq.error"] for r in dead
    )
    unmatched = wait_for_count(brokers, f"{names.clicks}.unmatched", len(expected.unmatched_clicks))
    assert {source_of(r) for r in unmatched} == expected.unmatched_clicks
    return len(dead), len(unmatched)
