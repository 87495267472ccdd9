"""One fault scenario: the pipeline under steady generated traffic, a fault, the recovery, and
the comparison of what reached RabbitMQ with the DuckDB oracle."""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter

from clickstream_common.contracts import event_id
from confluent_kafka import KafkaException

from tests.faults.conftest import DedicatedBrokers, FaultPipeline
from tests.faults.report import CLICKS, MALFORMED_SHARE, RATE, UNKNOWN_SHARE, USERS, Row
from tests.support.collect import ExchangeTap, drain_queue
from tests.support.eventually import eventually
from tests.support.groups import end_offsets, wait_committed
from tests.support.oracle import Comparison, Expectation, compare, expected_outcome, read_topic
from tests.support.pipeline import Names
from tests.support.services import Service
from tests.support.side_outputs import check_side_outputs

GENERATED = {
    "GENERATOR_USERS": str(USERS),
    "GENERATOR_CLICKS": str(CLICKS),
    "GENERATOR_RATE": str(RATE),
    "GENERATOR_UNKNOWN_USER_SHARE": str(UNKNOWN_SHARE),
    "GENERATOR_MALFORMED_SHARE": str(MALFORMED_SHARE),
}


class Scenario:
    def __init__(
        self,
        row: Row,
        brokers: DedicatedBrokers,
        names: Names,
        pipeline: FaultPipeline,
        enricher_env: dict[str, str] | None = None,
        static_member: str | None = None,
    ) -> None:
        self.row = row
        self.brokers = brokers
        self.names = names
        self.pipeline = pipeline
        self.enricher_env = enricher_env or {}
        # Static membership for the enricher and the bridge (each its own group, so one id
        # serves both); None: dynamic, as every other scenario runs.
        self.group_env = {"KAFKA_GROUP_INSTANCE_ID": static_member} if static_member else {}
        if static_member:
            row.notes.append(
                f"enricher and bridge with static membership (KAFKA_GROUP_INSTANCE_ID="
                f"{static_member}), default session"
            )
        self.tap: ExchangeTap | None = None
        self.user_state: Service
        self.enricher: Service
        self.bridge: Service
        self.generator: Service

    # ---- running -----------------------------------------------------------------------------

    def start(self, seed: int, rate: int = RATE) -> Scenario:
        """`rate`: clicks per second, when a scenario needs its traffic to last longer."""
        pipeline = self.pipeline
        stages = pipeline.start_stages(
            enricher_env={**self.group_env, **self.enricher_env}, bridge_env=self.group_env
        )
        self.user_state = stages.user_state
        self.enricher = stages.enricher
        self.bridge = stages.bridge
        self.tap = ExchangeTap(
            self.brokers.rabbitmq, self.names.exchange, f"{self.names.run}.tap"
        ).start()
        if rate != RATE:
            self.row.notes.append(f"the generator at {rate}/s, so traffic outlasts the fault")
        self.generator = pipeline.start(
            "generator", GENERATOR_SEED=str(seed), **{**GENERATED, "GENERATOR_RATE": str(rate)}
        )
        return self

    def start_enricher(self, log_name: str | None = None) -> Service:
        return self.pipeline.start_enricher(
            self.user_state, log_name=log_name, **{**self.group_env, **self.enricher_env}
        )

    def start_bridge(self, log_name: str | None = None) -> Service:
        return self.pipeline.start("rabbit-bridge", log_name=log_name, **self.group_env)

    def wait_clicks(self, count: int, timeout: float = 120) -> None:
        """Until the clicks topic holds `count` clicks, or all the generator will write (it
        stops at CLICKS: a slow fault may take the run close to its end)."""
        wanted = min(count, CLICKS)

        def produced() -> bool:
            self.pipeline.check_alive()
            return self.clicks_produced() >= wanted

        eventually(
            produced,
            timeout=timeout,
            interval=0.1,
            retry_on=(KafkaException,),
            message=f"the generator did not reach {wanted} clicks",
        )

    def clicks_produced(self) -> int:
        """Clicks on the clicks topic so far (the generator's own count, even once it ended)."""
        return sum(end_offsets(self.brokers.kafka, self.names.clicks).values())

    def flowing(self, since: float) -> float:
        """Wait until a VipAction whose click was produced after `since` reaches RabbitMQ (the
        pipeline is moving again); seconds from `since`. Fails if that does not happen."""
        assert self.tap is not None
        return self.tap.first_fresh(since, timeout=180, check=self.pipeline.check_alive)

    def recovery(self, since: float, until: float | None = None) -> float:
        """The recovery seconds of report.py: the longest pause, from `since` on (and before
        `until`), between VipActions reaching RabbitMQ from one partition of the click topic,
        the slowest partition counting. Call after `settle`, when every arrival is in."""
        assert self.tap is not None
        partition_of = {
            event_id(self.names.clicks, r.partition, r.offset): r.partition
            for r in read_topic(self.brokers.kafka, self.names.clicks)
        }
        arrivals: dict[int, list[float]] = {}
        for arrival in self.tap.arrivals:
            if arrival.wall >= since and (until is None or arrival.wall < until):
                arrivals.setdefault(partition_of[arrival.event_id], []).append(arrival.wall)
        assert arrivals, "no VipAction arrived after the fault"
        pauses = []
        for walls in arrivals.values():
            moments = [since, *sorted(walls)]
            pauses.append(max(b - a for a, b in itertools.pairwise(moments)))
        return max(pauses)

    def measure(self, fault: float, first: float) -> None:
        """Into the report row: the recovery seconds, and when the first fresh VipAction came."""
        self.row.recovery = f"{self.recovery(fault):.1f}"
        self.row.notes.append(f"the first fresh VipAction arrived after {first:.1f} s")

    def ready_after(self, service: Service, since: float) -> float:
        service.wait_ready()
        return round(time.time() - since, 2)

    # ---- settling and judging ----------------------------------------------------------------

    def settle(self, enricher_group: str | None = None) -> None:
        """Until every click is processed and every VipAction confirmed by RabbitMQ: the
        generator ended, the enricher group committed the whole click topic, then the bridge
        group the whole (by then final) vip-action topic."""
        names, kafka, check = self.names, self.brokers.kafka, self.pipeline.check_alive
        assert self.generator.wait_exit() == 0, self.generator.log_tail()
        group = enricher_group or f"{names.run}.enricher"
        wait_committed(kafka, group, names.clicks, end_offsets(kafka, names.clicks), check=check)
        last: dict[int, int] = {}
        for row in read_topic(kafka, names.vip):
            last[row.partition] = max(last.get(row.partition, 0), row.offset + 1)
        wait_committed(kafka, f"{names.run}.bridge", names.vip, last, check=check)

    def judge(self) -> tuple[Expectation, Comparison]:
        """Compare the queue with the oracle; fill the report row; assert nothing is missing."""
        names, kafka = self.names, self.brokers.kafka
        expected = expected_outcome(read_topic(kafka, names.users), read_topic(kafka, names.clicks))
        bodies = drain_queue(self.brokers.rabbitmq, names.queue)
        result = compare(expected.vip_rows, bodies)
        row = self.row
        row.clicks = expected.clicks
        row.expected = result.expected
        row.missing = result.missing
        row.unexpected = result.unexpected
        row.duplicates = result.duplicated
        print(f"\n{row.label}: clicks={expected.clicks} {result.line()} recovery={row.recovery}")
        assert result.missing == 0, result.line()
        assert result.unexpected == 0, result.line()
        dead, unmatched = check_side_outputs(self.brokers, names, expected)  # type: ignore[arg-type]
        row.notes.append(f"{dead:,} in click.dlq, {unmatched:,} in click.unmatched")
        return expected, result

    def topic_duplicates(self) -> int:
        """VipActions on the vip-action topic (read_committed) whose event_id came before."""
        ids = Counter(
            json.loads(r.value)["event_id"] for r in read_topic(self.brokers.kafka, self.names.vip)
        )
        return sum(count - 1 for count in ids.values())

    def stop(self) -> None:
        """SIGTERM to every service still running: each must exit 0 after the fault."""
        if self.tap is not None:
            self.tap.close()
            self.tap = None
        for service in reversed(self.pipeline.services):
            if service.process is not None and service.process.poll() is None:
                assert self.pipeline.terminate(service) == 0, service.log_tail()
