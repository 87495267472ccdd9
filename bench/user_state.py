"""Section 4: user-state's restore rate, memory, and batch lookups as the table grows.

Per table size: a users topic preloaded with that many users; user-state started on it and
timed from process start to /readyz 200, and by its own "bootstrap started" to "bootstrap
complete" log lines; resident memory once ready; then batches of 1,000 (user_id, now) keys
POSTed to /v1/lookup over one keep-alive connection, the way the enricher calls it.
"""

from __future__ import annotations

import http.client
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from bench.common import (
    LOCAL,
    ROOT,
    Run,
    attempt,
    log_seconds,
    percentile,
    say,
    user_state_env,
)
from bench.data import Data
from bench.profile import collapse_report
from bench.timing import (
    TIMEOUT,
    exited_check,
    memory_kb,
    stop,
)
from tests.support.services import Service, free_port

BATCH = 1000
WARMUP_BATCHES = 20


def lookups(service: Service, ids: list[str], batches: int) -> dict[str, Any]:
    rng = random.Random(7)
    now_ms = int(time.time() * 1000)
    bodies = [
        orjson.dumps({"keys": [[user_id, now_ms] for user_id in rng.sample(ids, BATCH)]})
        for _ in range(min(batches, 50))
    ]
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=60)
    headers = {"Content-Type": "application/json"}

    def one(body: bytes) -> float:
        started = time.perf_counter()
        connection.request("POST", "/v1/lookup", body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200 or payload.count(b'"found":"found"') != BATCH:
            raise RuntimeError(f"lookup answered {response.status}: {payload[:200]!r}")
        return elapsed

    try:
        for i in range(WARMUP_BATCHES):
            one(bodies[i % len(bodies)])
        started = time.perf_counter()
        times = [one(bodies[i % len(bodies)]) for i in range(batches)]
        total = time.perf_counter() - started
    finally:
        connection.close()
    return {
        "batches": batches,
        "ids_per_second": round(batches * BATCH / total, 1),
        "batch_p50_ms": round(percentile(times, 50) * 1000, 2),
        "batch_p99_ms": round(percentile(times, 99) * 1000, 2),
    }


def measure(run: Run, data: Data, users: int, batches: int) -> dict[str, Any]:
    topic = data.users_topic(users)
    ids = [row["user_id"] for row in data.users(users)]
    run.quiet(f"user-state {users}")
    service = Service(
        "user-state",
        user_state_env(run, topic),
        run.log_dir,
        log_name=f"user-state-{users}",
    )
    started = time.monotonic()
    service.start()
    try:
        deadline = started + TIMEOUT
        while True:
            service.check_alive()
            try:
                if service.get("/readyz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"user-state with {users} users not ready in {TIMEOUT}s")
            time.sleep(0.05)
        to_ready = time.monotonic() - started
        assert service.process is not None
        rss_kb = memory_kb(service.process.pid)
        bootstrap = log_seconds(service.log_path, "bootstrap complete")
        result: dict[str, Any] = {
            "users": users,
            "start_to_ready_s": round(to_ready, 3),
            "start_to_ready_users_per_s": round(users / to_ready, 1),
            "bootstrap_s": bootstrap,
            "bootstrap_users_per_s": round(users / bootstrap, 1) if bootstrap else None,
            "rss_mb": round(rss_kb / 1024, 1),
            **lookups(service, ids, batches),
        }
        result["rss_after_lookups_mb"] = round(memory_kb(service.process.pid) / 1024, 1)
        result["peak_rss_mb"] = round(memory_kb(service.process.pid, "VmHWM") / 1024, 1)
    finally:
        service.terminate()
    say(
        f"user-state {users:,}: ready in {result['start_to_ready_s']}s, "
        f"RSS {result['rss_mb']} MB, {result['ids_per_second']:,.0f} ids/s"
    )
    return result


def profile_restore(run: Run, data: Data, users: int) -> dict[str, Any]:
    """user-state's bootstrap of `users` users under py-spy (GIL holders: where its CPU goes),
    from process start to ready; a run of its own, after the timed ones."""
    topic = data.users_topic(users)
    run.quiet(f"user-state restore profile {users}")
    out = LOCAL / "profiles" / run.run_id / f"user-state-restore-{users}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        **user_state_env(run, topic),
        "HTTP_PORT": str(port),
        "LOG_FORMAT": "json",
    }
    command = [str(Path(sys.executable).parent / "py-spy"), "record", "--gil", "--nolineno"]
    command += ["--format", "raw", "--output", str(out), "--"]
    command += [sys.executable, "-m", "clickstream_user_state"]
    log = run.log_dir / f"user-state-restore-profile-{users}.log"
    with log.open("ab") as sink:
        spy = subprocess.Popen(command, env=env, stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            exited_check(spy, log, "py-spy / user-state")()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("user-state under py-spy not ready")
            time.sleep(0.1)
        # SIGTERM to user-state itself: it exits 0, then py-spy writes its file and exits.
        children = Path(f"/proc/{spy.pid}/task/{spy.pid}/children").read_text().split()
        for child in children:
            os.kill(int(child), signal.SIGTERM)
        spy.wait(120)
    finally:
        stop(spy)
    return {
        "users": users,
        "file": str(out.relative_to(ROOT)),
        **collapse_report(out, main_thread_only=False),
    }


def run_section(
    run: Run, data: Data, sizes: list[int], batches: int, profile: bool
) -> dict[str, Any]:
    results: dict[str, Any] = {"batch": BATCH, "sizes": []}
    for users in sizes:
        one: dict[str, Any] = {}
        attempt(one, f"user-state {users}", lambda u=users: measure(run, data, u, batches))
        results["sizes"].append({"users": users, **one[f"user-state {users}"]})
    if profile and sizes:
        attempt(results, "restore_profile", lambda: profile_restore(run, data, max(sizes)))
    return results
