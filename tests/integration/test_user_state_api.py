"""user-state's HTTP API over a real users topic: versions, tombstones, levels, bad requests."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from tests.support.eventually import GaveUpWaiting, eventually
from tests.support.pipeline import Names, Pipeline
from tests.support.services import Service

pytestmark = pytest.mark.integration

# Record timestamps within the broker's retention (7 days): Kafka deletes a segment whose
# newest record is older, at its first check 30 s after it starts and every 5 min after, and a
# fixed 2023 T0 made user-state load an emptied topic when a check fell inside the test.
T0 = int(time.time() * 1000) - 3_600_000


def post(service: Service, path: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(service.url + path, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def user(user_id: str, name: str, level: str) -> bytes:
    return json.dumps({"user_id": user_id, "name": name, "level": level}).encode()


def test_lookups_levels_and_errors(
    names: Names, pipeline: Pipeline, kafka_producer: Callable[..., Producer]
) -> None:
    producer = kafka_producer()
    service = pipeline.start_user_state()
    for key, value, at in [
        ("a", user("a", "Ann", "gold"), T0),
        ("a", user("a", "Ann", "PLATINUM"), T0 + 1000),
        ("b", user("b", "Bo", "PLATINUM"), T0),
        ("c", user("c", "Cy", "SILVER"), T0),
        ("c", None, T0 + 500),
    ]:
        producer.produce(names.users, key=key.encode(), value=value, timestamp=at)
    assert producer.flush(30) == 0

    keys = [
        ["a", T0 + 10],
        ["a", T0 + 2000],
        ["a", None],
        ["c", T0 + 100],
        ["c", None],
        ["zz", None],
    ]
    body: dict = {}

    def tombstone_applied() -> bool:
        nonlocal body
        status, body = post(service, "/v1/lookup", json.dumps({"keys": keys}).encode())
        assert status == 200, body
        return body["results"][4]["found"] == "absent"

    # Until the tombstone is applied; if it never is, the assertions below say what is wrong.
    with contextlib.suppress(GaveUpWaiting):
        eventually(tombstone_applied, timeout=30)
    results = body["results"]
    assert [r["found"] for r in results] == [
        "found",
        "found",
        "found",
        "found",
        "absent",
        "unknown",
    ]
    assert [r["user"]["level"] for r in results[:4]] == ["GOLD", "PLATINUM", "PLATINUM", "SILVER"]

    assert service.get("/v1/users/a")[0] == 200
    assert json.loads(service.get(f"/v1/users/a?at={T0 + 5}")[1])["user"]["level"] == "GOLD"
    assert service.get("/v1/users/c")[0] == 404
    platinum = json.loads(service.get("/v1/users?level=platinum")[1])
    assert [u["user_id"] for u in platinum["users"]] == ["a", "b"]

    assert post(service, "/v1/lookup", b"{oops")[0] == 400
    assert post(service, "/v1/lookup", b'{"keys": [["a", "yesterday"]]}')[0] == 400
    assert service.get("/v1/users/a?at=soon")[0] == 400
    assert service.get("/nowhere")[0] == 404
    metrics = service.get("/metrics")[1].decode()
    assert "user_state_lookup_keys_total" in metrics
    assert service.terminate() == 0
