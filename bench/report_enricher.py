"""The enricher's part of docs/PERFORMANCE.md: its throughput targets, section 1 (beside the
broker's ceiling and the peers, with CPU per million clicks) and section 5 (replicas)."""

from __future__ import annotations

from typing import Any

from bench.report import Entry, at_least, at_most, cores, failed, num, ok, rate, ratio, table

BROKERS = frozenset({"kafka", "rabbitmq"})


def own_cpu(entry: Entry | None) -> float | None:
    """CPU seconds per million records of the system's own processes (the brokers, shown beside
    it, are left out): for the enricher that is the enricher and user-state together."""
    if entry is None or not entry.get("cpu_per_million"):
        return None
    values = [v for k, v in entry["cpu_per_million"].items() if k not in BROKERS and v is not None]
    return sum(values) if values else None


def cpu_cell(entry: Entry) -> str:
    own = own_cpu(entry)
    brokers = [
        f"{name} {value:.1f}"
        for name, value in entry.get("cpu_per_million", {}).items()
        if name in BROKERS and value is not None
    ]
    return f"**{num(own, 1)}**" + (f" (+ {', '.join(brokers)})" if brokers else "")


def throughput_targets(enricher: Entry | None) -> list[list[str]]:
    e1 = rate(enricher, "enricher_x1")
    entry = lambda key: ok(enricher.get(key)) if enricher else None  # noqa: E731
    to_streams = ratio(e1, rate(enricher, "kafka_streams"))
    cpu_to_streams = ratio(own_cpu(entry("enricher_x1")), own_cpu(entry("kafka_streams")))
    x2 = ratio(rate(enricher, "enricher_x2"), e1)
    to_quix = ratio(e1, rate(enricher, "quix"))
    avro_to_json = ratio(rate(enricher, "enricher_avro_x1"), e1)
    to_consumer_tool = ratio(e1, rate(enricher, "consumer_tool"))
    return [
        ["enricher / Kafka Streams >= 0.80 (clicks/s, 1 replica, 1 stream thread)",
         num(to_streams, 2), at_least(to_streams, 0.8)],
        ["enricher + user-state CPU s per million clicks / Kafka Streams' <= 1.25",
         num(cpu_to_streams, 2), at_most(cpu_to_streams, 1.25)],
        ["enricher 2 replicas / 1 replica >= 1.80 (where the cores allow)", num(x2, 2),
         at_least(x2, 1.8)],
        ["enricher / Quix Streams >= 2.0", num(to_quix, 2), at_least(to_quix, 2.0)],
        ["enricher in Avro / in JSON >= 0.80", num(avro_to_json, 2), at_least(avro_to_json, 0.8)],
        ["(enricher / Kafka's consumer tool on the same topic: the ceiling)",
         num(to_consumer_tool, 2), ""],
    ]  # fmt: skip


ROWS = (
    ("ceiling: Kafka's consumer tool (`kafka-consumer-perf-test`)", "consumer_tool"),
    ("Kafka's producer tool, click-sized records (`kafka-producer-perf-test`)", "producer_tool"),
    ("bare Python copy: confluent-kafka read + write (`bench/ceiling_copy.py`)", "ceiling"),
    ("**enricher**, 1 replica", "enricher_x1"),
    ("peer: Kafka Streams, KStream x GlobalKTable, 1 thread (`bench/peers/kafka-streams`)",
     "kafka_streams"),
    ("peer: Quix Streams `join_asof` (`bench/peers/quix_enricher.py`)", "quix"),
    ("**enricher**, 1 replica, Avro clicks in and VipActions out", "enricher_avro_x1"),
)  # fmt: skip


def enricher_section(section: Any) -> list[str]:
    out = ["## 1. Enricher throughput", ""]
    enricher = ok(section)
    if enricher is None:
        return [*out, failed(section)]
    out += [
        f"{enricher['clicks']:,} JSON clicks of {enricher['users']:,} users in a 4-partition "
        f"topic; the seed's query selects {enricher['expected_vip']:,} of them (PLATINUM). "
        "Each system reads the whole topic with a fresh consumer group and is timed by that "
        "group's committed offsets, from the first commit seen to the commit covering the last "
        "click, so startup (JVM start, group join, user-state's bootstrap, Kafka Streams' "
        "GlobalKTable restore) is left out. Kafka's producer tool is timed by its topic's end "
        "offsets instead. Cores: CPU seconds per second over that window. CPU s / M: CPU "
        "seconds per million clicks of the system's own processes (for the enricher, the "
        "enricher and user-state answering its lookups), the broker's beside it: the cost, "
        "which a busy shared machine changes less than the rate.",
        "",
    ]
    e1 = rate(enricher, "enricher_x1")
    rows = []
    for label, key in ROWS:
        entry = ok(enricher.get(key))
        if entry is None:
            rows.append([label, failed(enricher.get(key)), "", "", "", "", ""])
            continue
        rows.append(
            [label, num(entry["rate"]), num(ratio(e1, entry["rate"]), 2),
             num(entry["seconds"], 1), cores(entry), cpu_cell(entry), f"{entry['outputs']:,}"]
        )  # fmt: skip
    header = ["system", "records/s", "enricher / this", "seconds", "cores", "CPU s / M"]
    out += table([*header, "records out"], rows)
    out += [
        "",
        "Records out: the consumer tool reads and writes nothing; the producer tool and the "
        "Python copy write every click; the enricher and its peers write one VipAction per "
        f"PLATINUM click ({enricher['expected_vip']:,} expected). Kafka Streams commits every "
        "100 ms (its default is 30 s, which would only add error at the end of the timing) and "
        "compresses with lz4 like the services. The Avro row reads the same clicks in Avro "
        "(Confluent wire format, schema from the run's registry) and writes Avro VipActions, "
        "against a user-state that loaded the same users from an Avro topic.",
    ]
    for key, what in (("enricher_x1", "The enricher"), ("kafka_streams", "Kafka Streams")):
        entry = ok(enricher.get(key))
        if entry and entry.get("rounds"):
            rates = ", ".join(num(r) if r is not None else "failed" for r in entry["rounds"])
            out += [
                "",
                f"{what}, 1 replica: the median of "
                f"{len(entry['rounds'])} rounds run in turn with the other (clicks/s: {rates}).",
            ]
    for key, what in (("consumer_tool", "consumer"), ("producer_tool", "producer")):
        tool = ok(enricher.get(key))
        if tool and tool.get("own_summary"):
            out += ["", f"Kafka's {what} tool's own summary: `{tool['own_summary']}`."]
    return out


def scaling_section(section: Any) -> list[str]:
    out = ["## 5. Scaling", ""]
    enricher = ok(section)
    one = ok(enricher.get("enricher_x1")) if enricher else None
    two = ok(enricher.get("enricher_x2")) if enricher else None
    if one is None or two is None:
        return [*out, failed((enricher or {}).get("enricher_x2", section))]
    out += [
        "The enricher with 1 and 2 replicas in one consumer group on the same 4-partition topic "
        "(each replica a process; all share this machine's cores with Kafka and user-state).",
        "",
    ]
    rows = [
        ["1", num(one["rate"]), "1.00", cores(one), cpu_cell(one), f"{one['outputs']:,}"],
        ["2", num(two["rate"]), num(ratio(two["rate"], one["rate"]), 2), cores(two),
         cpu_cell(two), f"{two['outputs']:,}"],
    ]  # fmt: skip
    header = ["replicas", "clicks/s", "x 1 replica", "cores", "CPU s / M"]
    return out + table([*header, "VipActions out"], rows)
