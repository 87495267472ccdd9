"""The peers' installs, made on first use under .local/bench and reused after:

- Quix Streams in its own virtual environment (it pins a confluent-kafka other than ours);
- RabbitMQ's PerfTest and its dependencies, resolved by Maven from Maven Central.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bench.common import LOCAL, ROOT, say

QUIX_VERSION = "3.28.1"
QUIX_VENV = LOCAL / "quix-venv"
PERF_TEST_DIR = LOCAL / "perf-test"
PERF_TEST_POM = ROOT / "bench" / "perftest" / "pom.xml"


def quix_python() -> Path:
    python = QUIX_VENV / "bin" / "python"
    probe = [str(python), "-c", "import quixstreams; print(quixstreams.__version__)"]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip() == QUIX_VERSION:
            return python
    say(f"installing quixstreams {QUIX_VERSION} into {QUIX_VENV.relative_to(ROOT)}")
    uv = shutil.which("uv") or "uv"
    subprocess.run([uv, "venv", "--quiet", "--python", "3.11", str(QUIX_VENV)], check=True)
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), f"quixstreams=={QUIX_VERSION}"],
        check=True,
    )
    return python


def quix_versions() -> dict[str, str]:
    code = (
        "import confluent_kafka, quixstreams; "
        "print(quixstreams.__version__, confluent_kafka.version(), "
        "confluent_kafka.libversion()[0])"
    )
    out = subprocess.run(
        [str(quix_python()), "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    return {"quixstreams": out[0], "confluent-kafka": out[1], "librdkafka": out[2]}


def perf_test_classpath() -> str:
    if not list(PERF_TEST_DIR.glob("perf-test-*.jar")):
        say(f"resolving RabbitMQ PerfTest with Maven into {PERF_TEST_DIR.relative_to(ROOT)}")
        tmp = PERF_TEST_DIR.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(
            [
                *("mvn", "-B", "-q", "-Dstyle.color=never", "-f", str(PERF_TEST_POM)),
                *("dependency:copy-dependencies", "-DincludeScope=runtime"),
                f"-DoutputDirectory={tmp}",
            ],
            check=True,
        )
        shutil.rmtree(PERF_TEST_DIR, ignore_errors=True)
        tmp.rename(PERF_TEST_DIR)
    return f"{PERF_TEST_DIR}/*"


def perf_test_version() -> str:
    jars = sorted(PERF_TEST_DIR.glob("perf-test-*.jar"))
    return jars[0].stem.removeprefix("perf-test-") if jars else "?"
