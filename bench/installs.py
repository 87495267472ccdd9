"""The peers' installs, made on first use under .local/bench and reused after:

- Quix Streams in its own virtual environment (it pins a confluent-kafka other than ours);
- RabbitMQ's PerfTest and its dependencies, resolved by Maven from Maven Central;
- the Kafka Streams peer: its dependencies resolved the same way, its one source file compiled
  with javac (recompiled when the source or the pom changes).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from bench.common import LOCAL, ROOT, say

QUIX_VERSION = "3.28.1"
QUIX_VENV = LOCAL / "quix-venv"
PERF_TEST_DIR = LOCAL / "perf-test"
PERF_TEST_POM = ROOT / "bench" / "perftest" / "pom.xml"
KAFKA_STREAMS_SOURCE = ROOT / "bench" / "peers" / "kafka-streams"
KAFKA_STREAMS_DIR = LOCAL / "kafka-streams"


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


def _resolve(pom: Path, into: Path) -> None:
    """The pom's runtime dependencies copied into `into` (made whole or not at all)."""
    tmp = into.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(
        [
            *("mvn", "-B", "-q", "-Dstyle.color=never", "-f", str(pom)),
            *("dependency:copy-dependencies", "-DincludeScope=runtime"),
            f"-DoutputDirectory={tmp}",
        ],
        check=True,
    )
    shutil.rmtree(into, ignore_errors=True)
    tmp.rename(into)


def perf_test_classpath() -> str:
    if not list(PERF_TEST_DIR.glob("perf-test-*.jar")):
        say(f"resolving RabbitMQ PerfTest with Maven into {PERF_TEST_DIR.relative_to(ROOT)}")
        _resolve(PERF_TEST_POM, PERF_TEST_DIR)
    return f"{PERF_TEST_DIR}/*"


def kafka_streams_classpath() -> str:
    """The Kafka Streams peer, resolved and compiled on first use (and after it changes)."""
    sources = sorted((KAFKA_STREAMS_SOURCE / "src").glob("*.java"))
    pom = KAFKA_STREAMS_SOURCE / "pom.xml"
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in [pom, *sources])).hexdigest()
    lib, classes = KAFKA_STREAMS_DIR / "lib", KAFKA_STREAMS_DIR / "classes"
    stamp = KAFKA_STREAMS_DIR / "built-from"
    if not stamp.exists() or stamp.read_text() != digest:
        say(f"building the Kafka Streams peer in {KAFKA_STREAMS_DIR.relative_to(ROOT)}")
        KAFKA_STREAMS_DIR.mkdir(parents=True, exist_ok=True)
        _resolve(pom, lib)
        shutil.rmtree(classes, ignore_errors=True)
        subprocess.run(
            ["javac", "-cp", f"{lib}/*", "-d", str(classes), *map(str, sources)], check=True
        )
        stamp.write_text(digest)
    return f"{classes}:{lib}/*"


def kafka_streams_version() -> str:
    jars = sorted((KAFKA_STREAMS_DIR / "lib").glob("kafka-streams-*.jar"))
    return jars[0].stem.removeprefix("kafka-streams-") if jars else "?"


def perf_test_version() -> str:
    jars = sorted(PERF_TEST_DIR.glob("perf-test-*.jar"))
    return jars[0].stem.removeprefix("perf-test-") if jars else "?"
