"""VALUE_FORMAT=avro through the four real services, on real Kafka, RabbitMQ and a real schema
registry (Apicurio with KafkaSQL storage, started by scripts/brokers.sh): the seed's oracle in
Avro, a producer moving to a new schema mid-stream, and the registry restarted mid-stream.

The oracle reads the Avro topics with confluent_kafka's own AvroDeserializer
(tests/support/avro_oracle.py), not with the pipeline's serde."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from clickstream_common.avro import SCHEMA_DIR
from confluent_kafka import Producer

from tests.support.avro_oracle import as_json, registry_client
from tests.support.brokers import LOCAL_REGISTRY, ROOT, Brokers
from tests.support.collect import drain
from tests.support.eventually import eventually
from tests.support.oracle import Expectation, compare, expected_outcome, read_topic
from tests.support.pipeline import Names, Pipeline
from tests.support.services import Service
from tests.support.side_outputs import check_side_outputs, wait_for_count

pytestmark = pytest.mark.integration

GENERATED = {
    "GENERATOR_USERS": "400",
    "GENERATOR_CLICKS": "6000",
    "GENERATOR_RATE": "0",
    "GENERATOR_SEED": "11",
    "GENERATOR_UNKNOWN_USER_SHARE": "0.05",
    "GENERATOR_MALFORMED_SHARE": "0.03",
}


@pytest.fixture
def avro_pipeline(pipeline: Pipeline, brokers: Brokers) -> Pipeline:
    pipeline.extra_env = {"VALUE_FORMAT": "avro", "SCHEMA_REGISTRY_URL": brokers.registry}
    return pipeline


def expectation(brokers: Brokers, names: Names) -> Expectation:
    users = as_json(read_topic(brokers.kafka, names.users), names.users, brokers.registry)
    clicks = as_json(read_topic(brokers.kafka, names.clicks), names.clicks, brokers.registry)
    return expected_outcome(users, clicks)


def metric(service: Service, name: str) -> float:
    status, body = service.get("/metrics")
    assert status == 200
    found = re.search(rf"^{name} ([0-9.e+]+)$", body.decode(), re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def check_pipeline(brokers: Brokers, names: Names, expected: Expectation) -> str:
    bodies = drain(brokers.rabbitmq, names.queue, sum(expected.vip_rows.values()))
    result = compare(expected.vip_rows, bodies)  # RabbitMQ's bodies are JSON (RABBITMQ_FORMAT)
    dead, unmatched = check_side_outputs(brokers, names, expected)
    assert (result.missing, result.unexpected, result.duplicated) == (0, 0, 0), result.line()
    return f"clicks={expected.clicks} {result.line()} dead_lettered={dead} unmatched={unmatched}"


def test_avro_end_to_end_matches_the_seed_sql(
    brokers: Brokers,
    names: Names,
    avro_pipeline: Pipeline,
    kafka_producer: Callable[..., Producer],
) -> None:
    stages = avro_pipeline.start_stages()
    generator = avro_pipeline.start("generator", **GENERATED)
    assert generator.wait_exit() == 0, generator.log_tail()
    # JSON into an Avro users topic is bad input like any other.
    producer = kafka_producer()
    producer.produce(names.users, key=b"k1", value=b'{"user_id": "k1"}')
    assert producer.flush(30) == 0

    expected = expectation(brokers, names)
    levels = {row[1] for row in expected.vip_rows}
    assert expected.invalid_clicks and expected.unmatched_clicks and levels
    summary = check_pipeline(brokers, names, expected)
    print(f"\navro end-to-end: {summary}")

    dead = read_topic(brokers.kafka, f"{names.clicks}.dlq")
    reasons = {r.headers["dlq.error"].split(":")[0].split(" id ")[0] for r in dead}
    assert {"not Avro in the Confluent wire format", "unknown schema"} <= reasons, reasons
    assert any(r.startswith("does not decode against schema") for r in reasons), reasons
    (dead_user,) = wait_for_count(brokers, f"{names.users}.dlq", 1)
    assert dead_user.headers["dlq.error"].startswith("not Avro in the Confluent wire format")

    # The outputs are Avro, registered under TopicNameStrategy with a BACKWARD rule each.
    vip = read_topic(brokers.kafka, names.vip)
    assert vip and all(r.value is not None and r.value[0] == 0 for r in vip)
    client = registry_client(brokers.registry)
    for topic in (names.users, names.clicks, names.vip):
        assert client.get_latest_version(f"{topic}-value").schema_id > 0
        assert client.get_compatibility(f"{topic}-value") == "BACKWARD"
    # Schema ids cached: a handful of registry requests for thousands of records, and one more
    # per record naming an id the registry does not know (those are not cached).
    unknown = sum(r.headers["dlq.error"].startswith("unknown schema id") for r in dead)
    requests = metric(stages.enricher, "enricher_schema_registry_requests_total")
    print(
        f"enricher registry requests: {requests:.0f} for {expected.clicks} clicks, {unknown} unknown ids"
    )
    assert requests <= 5 + unknown
    for service in (stages.enricher, stages.bridge, stages.user_state):
        assert service.terminate() == 0, service.log_tail()


def schema_folder(tmp_path: Path, clicks_schema: str) -> Path:
    folder = tmp_path / "schemas"
    folder.mkdir(parents=True)
    for path in SCHEMA_DIR.glob("*.avsc"):
        (folder / path.name).write_text(path.read_text())
    (folder / "Clicks.avsc").write_text(clicks_schema)
    return folder


CLICKS_V1 = (SCHEMA_DIR / "Clicks.avsc").read_text()
CLICKS_V2 = CLICKS_V1.replace(
    '{"name": "agent", "type": "string"},',
    '{"name": "agent", "type": "string"},\n'
    '    {"name": "referrer", "type": ["null", "string"], "default": null},',
)
CLICKS_INCOMPATIBLE = CLICKS_V1.replace(
    '{"name": "page", "type": "long"}', '{"name": "page", "type": "string"}'
)


def test_a_producer_moving_to_a_compatible_schema_breaks_no_consumer(
    brokers: Brokers, names: Names, avro_pipeline: Pipeline, tmp_path: Path
) -> None:
    assert CLICKS_V2 != CLICKS_V1 and CLICKS_INCOMPATIBLE != CLICKS_V1
    avro_pipeline.start_stages()
    first = avro_pipeline.start("generator", **{**GENERATED, "GENERATOR_CLICKS": "3000"})
    assert first.wait_exit() == 0, first.log_tail()
    client = registry_client(brokers.registry)
    v1 = client.get_latest_version(f"{names.clicks}-value")

    # The same users again (same seed), then clicks written with v2: a field more.
    v2_folder = schema_folder(tmp_path / "v2", CLICKS_V2)
    second = avro_pipeline.start(
        "generator",
        log_name="generator-v2",
        AVRO_SCHEMA_DIR=str(v2_folder),
        **{**GENERATED, "GENERATOR_CLICKS": "3000", "GENERATOR_SEED": "12"},
    )
    assert second.wait_exit() == 0, second.log_tail()
    v2 = registry_client(brokers.registry).get_latest_version(f"{names.clicks}-value")
    assert (v1.version, v2.version) == (1, 2) and v2.schema_id != v1.schema_id

    expected = expectation(brokers, names)
    print(f"\nschema evolution: {check_pipeline(brokers, names, expected)}")

    # An incompatible one is refused by the registry, and the producer says so at start.
    bad_folder = schema_folder(tmp_path / "bad", CLICKS_INCOMPATIBLE)
    refused = avro_pipeline.start(
        "generator", log_name="generator-bad", AVRO_SCHEMA_DIR=str(bad_folder), **GENERATED
    )
    assert refused.wait_exit() == 1
    assert f"refused the schema for subject {names.clicks}-value" in refused.log_tail()
    assert (
        registry_client(brokers.registry).get_latest_version(f"{names.clicks}-value").version == 2
    )


def brokers_script(command: str) -> None:
    subprocess.run([str(ROOT / "scripts" / "brokers.sh"), command], check=True, cwd=ROOT)


def test_a_registry_restart_mid_stream_loses_nothing_and_dead_letters_nothing_good(
    brokers: Brokers, names: Names, avro_pipeline: Pipeline
) -> None:
    """Services that start (so know no schema yet) while the registry is down wait for it."""
    if brokers.registry != LOCAL_REGISTRY:
        pytest.skip("restarts the local registry of scripts/brokers.sh; SCHEMA_REGISTRY_URL set")
    stages = avro_pipeline.start_stages()
    first = avro_pipeline.start("generator", **{**GENERATED, "GENERATOR_CLICKS": "3000"})
    assert first.wait_exit() == 0, first.log_tail()
    client = registry_client(brokers.registry)
    subjects = [f"{topic}-value" for topic in (names.users, names.clicks, names.vip)]
    ids = {s: client.get_latest_version(s).schema_id for s in subjects}

    brokers_script("stop-registry")
    try:
        for service in (stages.enricher, stages.bridge):
            assert service.terminate() == 0, service.log_tail()
        enricher = avro_pipeline.start_enricher(stages.user_state, log_name="enricher-2")
        bridge = avro_pipeline.start("rabbit-bridge", log_name="bridge-2")
        eventually(
            lambda: "waiting for the schema registry" in enricher.log_tail(),
            timeout=60,
            message="the enricher never said it waits for the registry",
        )
        assert enricher.get("/readyz")[0] != 200
    finally:
        brokers_script("start-registry")
    enricher.wait_ready()
    bridge.wait_ready()
    second = avro_pipeline.start(
        "generator", log_name="generator-2", **{**GENERATED, "GENERATOR_CLICKS": "3000"}
    )
    assert second.wait_exit() == 0, second.log_tail()

    fresh = registry_client(brokers.registry)
    assert {s: fresh.get_latest_version(s).schema_id for s in subjects} == ids
    expected = expectation(brokers, names)
    print(f"\nregistry restart: {check_pipeline(brokers, names, expected)}")
