"""The benchmark suite: `make bench`, or `uv run python -m bench [--quick] [sizes]`.

Sections (all by default, or `--sections enricher,windows,bridge,latency,user-state`):
  enricher    1. enricher vs Kafka's consumer and producer tools (the ceiling), a bare Python
              copy loop, Kafka Streams and Quix Streams (peers); 5. 2 replicas; and a py-spy
              profile of the enricher and user-state under that load
  bridge      2. rabbit-bridge vs RabbitMQ PerfTest
  latency     3. click produced -> VipAction received from RabbitMQ, at fixed rates
  user-state  4. restore rate, memory, lookup throughput and latency as the table grows
  windows     6. the sessions query over VipActions (a tenth of the clicks), beside the join;
              memory of 100k open sessions and the restore rate of their state

Sizes default to the issue's and can be set by flag or environment variable (BENCH_CLICKS,
...); --quick divides them by 10 for a smoke run and writes .local/bench/PERFORMANCE-quick.md
instead of docs/PERFORMANCE.md. Every run uses fresh topics, groups, exchanges and queues named
after its run id, and deletes them at the end (--keep-topics keeps the Kafka ones).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import confluent_kafka

from bench import bridge, enricher, latency, report, user_state, windows
from bench.common import LOCAL, ROOT, Brokers, Run, attempt, delete_run_topics, say
from bench.data import Data
from bench.installs import (
    kafka_streams_classpath,
    kafka_streams_version,
    perf_test_classpath,
    perf_test_version,
    quix_versions,
)

SECTIONS = ("enricher", "windows", "bridge", "latency", "user-state")


def _ints(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="1/10 sizes, for a smoke run")
    parser.add_argument(
        "--sections",
        default=env("BENCH_SECTIONS", ",".join(SECTIONS)),
        help="comma-separated (env BENCH_SECTIONS; default all)",
    )
    for flag, kind, default in (
        ("--users", int, "100000 users of the click data"),
        ("--clicks", int, "1000000 clicks preloaded for the enricher"),
        ("--bridge-messages", int, "200000 VipActions preloaded for the bridge"),
        ("--latency-rates", _ints, "1000,5000 clicks/s"),
        ("--latency-seconds", float, "25 s timed per rate"),
        ("--user-state-sizes", _ints, "10000,100000,1000000 users"),
        ("--lookup-batches", int, "500 timed lookups of 1,000 ids"),
        ("--profile-seconds", float, "30 s of py-spy (0: no profile)"),
        ("--open-sessions", int, "100000 open sessions held, then restored"),
        ("--load-wait", float, "240 s at most waiting for a quiet machine (30 with --quick)"),
    ):
        variable = "BENCH_" + flag[2:].replace("-", "_").upper()
        parser.add_argument(
            flag, type=kind, default=env(variable), help=f"default {default} (env {variable})"
        )
    parser.add_argument(
        "--max-load",
        type=float,
        default=float(env("BENCH_MAX_LOAD", "1.0")),
        help="1-min load average to wait for before each timed section (default 1.0)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=env("BENCH_OUT"),
        help="default docs/PERFORMANCE.md (.local/bench/PERFORMANCE-quick.md with --quick)",
    )
    parser.add_argument("--keep-topics", action="store_true", help="keep this run's topics")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    defaults: dict[str, Any] = {
        "users": 100_000 // scale,
        "clicks": 1_000_000 // scale,
        "bridge_messages": 200_000 // scale,
        "latency_rates": [1000, 5000],
        "latency_seconds": 25.0 / (5 if args.quick else 1),
        "user_state_sizes": [10_000 // scale, 100_000 // scale, 1_000_000 // scale],
        "lookup_batches": 500 // scale,
        "profile_seconds": 30.0 / (3 if args.quick else 1),
        "open_sessions": 100_000 // scale,
        "load_wait": 30.0 if args.quick else 240.0,
        "out": LOCAL / "PERFORMANCE-quick.md" if args.quick else ROOT / "docs" / "PERFORMANCE.md",
    }
    for name, value in defaults.items():
        current = getattr(args, name)
        if current is None:
            setattr(args, name, value)
        elif isinstance(current, str):  # from the environment
            parsed = _ints(current) if isinstance(value, list) else type(value)(current)
            setattr(args, name, parsed)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    return args


def machine() -> dict[str, str]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "cpu": cpu,
        "nproc": str(os.cpu_count()),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": f"Linux {platform.release()}",
    }


def versions(brokers: Brokers, sections: list[str]) -> dict[str, str]:
    found = {
        "Python": platform.python_version(),
        "confluent-kafka / librdkafka (services)": (
            f"{confluent_kafka.version()} / {confluent_kafka.libversion()[0]}"
        ),
        "orjson": metadata.version("orjson"),
        "pika": metadata.version("pika"),
        "py-spy": metadata.version("py-spy"),
    }
    jars = sorted((ROOT / ".local" / "kafka" / "lib").glob("kafka-server-*.jar"))
    found["Kafka"] = jars[0].stem.removeprefix("kafka-server-") if jars else "external broker"
    found["RabbitMQ"] = bridge.server_version(brokers.rabbitmq_url)
    if "enricher" in sections or "bridge" in sections:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
        found["Java (Kafka Streams, Kafka's tools, PerfTest)"] = (
            java.stderr.splitlines()[0] if java.stderr else "?"
        )
    if "enricher" in sections:
        kafka_streams_classpath()
        found["Kafka Streams (peer)"] = kafka_streams_version()
        quix = quix_versions()
        found["Quix Streams (own venv) / its confluent-kafka / librdkafka"] = (
            f"{quix['quixstreams']} / {quix['confluent-kafka']} / {quix['librdkafka']}"
        )
    if "bridge" in sections:
        perf_test_classpath()
        found["RabbitMQ PerfTest"] = perf_test_version()
    return found


SERVICES = ("clickstream_user_state", "clickstream_enricher", "clickstream_rabbit_bridge")


def freeze_code(run: Run) -> str:
    """Copy the services' source as it is now and point every child process at the copy
    (PYTHONPATH comes before the editable installs), so the whole run measures one version of
    the code even while it is being edited. Returns the git revision it came from."""
    sources = [ROOT / "libs" / "common" / "src", *sorted((ROOT / "services").glob("*/src"))]
    frozen = LOCAL / "code" / run.run_id
    for source in sources:
        shutil.copytree(
            source, frozen / source.relative_to(ROOT), ignore=shutil.ignore_patterns("__pycache__")
        )
    paths = [str(frozen / s.relative_to(ROOT)) for s in sources]
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [*paths, *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    probe = "import importlib; " + "; ".join(
        f"importlib.import_module('{m}.__main__')" for m in SERVICES
    )
    check = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    if check.returncode != 0:
        raise SystemExit(f"the services do not import as they are now:\n{check.stderr}")
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "libs", "services"], capture_output=True, text=True
    )
    changed = len(dirty.stdout.splitlines())
    return head.stdout.strip() + (
        f" + {changed} uncommitted files in libs/, services/" if changed else ""
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    run = Run(Brokers.from_env(), max_load=args.max_load, load_wait=args.load_wait)
    say(f"run {run.run_id}: sections {', '.join(args.sections)}; logs in {run.log_dir}")
    revision = freeze_code(run)
    sizes = {
        k: getattr(args, k)
        for k in (
            "users",
            "clicks",
            "bridge_messages",
            "latency_rates",
            "latency_seconds",
            "user_state_sizes",
            "lookup_batches",
            "profile_seconds",
            "open_sessions",
        )
    }
    command = "make bench" if not args.quick else "make bench BENCH_ARGS=--quick"
    if argv is None and len(sys.argv) > 1 and sys.argv[1:] != ["--quick"]:
        command = "uv run python -m bench " + " ".join(sys.argv[1:])
    results: dict[str, Any] = {}
    found_versions = versions(run.brokers, args.sections)
    data = Data(run)
    try:
        if "enricher" in args.sections:
            attempt(
                results,
                "enricher",
                lambda: enricher.run_section(
                    run, data, args.users, args.clicks, args.profile_seconds
                ),
            )
        if "windows" in args.sections:
            attempt(
                results,
                "windows",
                lambda: windows.run_section(run, data, args.users, args.clicks, args.open_sessions),
            )
        if "bridge" in args.sections:
            attempt(
                results,
                "bridge",
                lambda: bridge.run_section(run, data, args.users, args.bridge_messages),
            )
        if "latency" in args.sections:
            attempt(
                results,
                "latency",
                lambda: latency.run_section(
                    run, data, args.users, args.latency_rates, args.latency_seconds
                ),
            )
        if "user-state" in args.sections:
            attempt(
                results,
                "user_state",
                lambda: user_state.run_section(
                    run, data, args.user_state_sizes, args.lookup_batches, args.profile_seconds > 0
                ),
            )
    finally:
        if not args.keep_topics:
            delete_run_topics(run)
        shutil.rmtree(LOCAL / "code" / run.run_id, ignore_errors=True)
    results["meta"] = {
        "run_id": run.run_id,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "duration_min": (time.monotonic() - started) / 60,
        "command": command,
        "machine": machine(),
        "versions": {"code (git)": revision, **found_versions},
        "loads": run.loads,
        "max_load": run.max_load,
        "load_wait": run.load_wait,
        "sizes": sizes,
    }
    raw = LOCAL / f"results-{run.run_id}.json"
    raw.write_text(json.dumps(results, indent=2))
    report.write(args.out, results)
    say(f"wrote {args.out} and {raw} in {(time.monotonic() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
