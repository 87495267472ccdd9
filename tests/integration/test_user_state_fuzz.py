"""Fuzzing user-state's HTTP API with schemathesis, against a real user-state on a real users
topic: every documented operation, with valid and invalid requests generated from the OpenAPI
document the service serves at /openapi.json. No request may get a 5xx, and every answer must
conform to the document (status, content type, headers, schema); invalid requests must get a 4xx.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from clickstream_user_state.openapi import EXAMPLE_USER_ID
from confluent_kafka import Producer

from tests.support.eventually import eventually
from tests.support.pipeline import Names, Pipeline

pytestmark = pytest.mark.integration

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "unsupported_method",
        "allow_header_conformance",
    ]
)
# Modest, so the suite stays quick; SCHEMATHESIS_EXAMPLES=1000 (and another seed) searches deeper.
EXAMPLES = os.environ.get("SCHEMATHESIS_EXAMPLES", "60")
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261127")


def test_schemathesis_finds_no_server_error_and_no_nonconformance(
    names: Names,
    pipeline: Pipeline,
    tmp_path: Path,
    kafka_producer: Callable[..., Producer],
) -> None:
    producer = kafka_producer()
    service = pipeline.start_user_state()
    # The document's example user exists, so lookups by example reach the found path too.
    row = {"user_id": EXAMPLE_USER_ID, "name": "Dr. Akiko Hoppe", "level": "platinum"}
    producer.produce(names.users, key=EXAMPLE_USER_ID.encode(), value=json.dumps(row).encode())
    assert producer.flush(30) == 0
    eventually(
        lambda: service.get(f"/v1/users/{EXAMPLE_USER_ID}")[0] == 200,
        timeout=30,
        message="the example user never arrived",
    )

    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{service.url}/openapi.json",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", EXAMPLES,
        "--seed", SEED,
        "--generation-database", "none",
        "--request-timeout", "10",
        "--no-color",
        # An endless event stream: tests/integration/test_vip_stream.py tests it.
        "--exclude-path", "/v1/vips/stream",
    ]  # fmt: skip
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    report = run.stdout + run.stderr
    print(report)
    assert run.returncode == 0, report[-6000:]
    assert "No issues found" in report

    service.check_alive()
    log = service.log_path.read_text(errors="replace")
    assert "request failed" not in log and "Traceback" not in log, service.log_tail()
    assert service.terminate() == 0
