"""docs/PERFORMANCE.md from one run's results: every figure beside its ceiling or peer and the
ratio, the verdict on each of the issue's targets, the profile, the machine and the versions.

A measurement that failed shows as "failed: <reason>" where its figure would be. A hand-written
analysis between the `analysis` markers of an existing file is carried over.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ANALYSIS_START = "<!-- analysis:start -->"
ANALYSIS_END = "<!-- analysis:end -->"
DEFAULT_ANALYSIS = "_No analysis written yet for these figures._"

Entry = dict[str, Any]


def ok(entry: Any) -> Entry | None:
    """The entry if it was measured, None if it is missing or failed."""
    return entry if isinstance(entry, dict) and "error" not in entry else None


def failed(entry: Any) -> str:
    if isinstance(entry, dict) and "error" in entry:
        return f"failed: {entry['error']}"
    return "not measured"


def num(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def rate(section: Entry | None, key: str) -> float | None:
    entry = ok(section.get(key)) if section else None
    return entry["rate"] if entry else None


def at_least(value: float | None, target: float) -> str:
    if value is None:
        return "not measured"
    if value >= target:
        return f"**met** ({value / target:.2f}x the target)"
    return f"**missed** by {100 * (1 - value / target):.0f}% (reaches {value / target:.2f} of it)"


def at_most(value: float | None, limit: float) -> str:
    if value is None:
        return "not measured"
    if value < limit:
        return f"**met** ({value / limit:.2f} of the limit)"
    return f"**missed**: {value / limit:.1f}x the limit"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def cores(entry: Entry) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in entry["cores"].items())


def _analysis(path: Path) -> str:
    if path.exists():
        found = re.search(
            re.escape(ANALYSIS_START) + r"\n(.*?)\n?" + re.escape(ANALYSIS_END),
            path.read_text(),
            re.S,
        )
        if found and found.group(1).strip():
            return found.group(1).strip()
    return DEFAULT_ANALYSIS


def targets(results: dict[str, Any]) -> list[str]:
    from bench.report_enricher import throughput_targets  # it builds on this module's helpers

    enricher, bridge = ok(results.get("enricher")), ok(results.get("bridge"))
    latency, state = ok(results.get("latency")), ok(results.get("user_state"))
    to_perftest = ratio(rate(bridge, "bridge"), rate(bridge, "perftest"))
    at_5000 = next(
        (r for r in (latency or {}).get("rates", []) if ok(r) and r["rate"] == 5000), None
    )
    p99 = at_5000["p99"] if at_5000 else None
    hop_p99 = at_5000.get("hops", {}).get("bridge", {}).get("p99") if at_5000 else None
    alone = ok(at_5000.get("rabbitmq_alone")) if at_5000 else None
    alone_p99 = alone["p99"] if alone else None
    rows = [
        *throughput_targets(enricher),
        ["p99 click to RabbitMQ at 5,000 clicks/s < 50 ms", f"{num(p99, 1)} ms", at_most(p99, 50)],
        [
            "(of which the bridge hop; RabbitMQ alone at that rate, PerfTest)",
            f"{num(hop_p99, 1)} ms; {num(alone_p99, 1)} ms",
            "",
        ],
        ["bridge / PerfTest >= 0.85", num(to_perftest, 2), at_least(to_perftest, 0.85)],
    ]
    sizes = [s for s in (state or {}).get("sizes", []) if ok(s)]
    if sizes:
        largest = max(sizes, key=lambda s: s["users"])
        at = f"at {largest['users']:,} users"
        rss, log_rate = largest["rss_mb"], largest["bootstrap_users_per_s"]
        ready_rate = largest["start_to_ready_users_per_s"]
        rows += [
            [f"user-state < 400 MB RSS for 1,000,000 users ({at})", f"{num(rss)} MB",
             at_most(rss, 400)],
            [f"restore > 100,000 users/s ({at}, its bootstrap log)", f"{num(log_rate)} users/s",
             at_least(log_rate, 100_000)],
            [f"restore > 100,000 users/s ({at}, process start to /readyz)",
             f"{num(ready_rate)} users/s", at_least(ready_rate, 100_000)],
        ]  # fmt: skip
    from bench.report_windows import window_targets

    rows += window_targets(results)
    return table(["target", "measured", "verdict"], rows)


def bridge_section(section: Any, versions: dict[str, str]) -> list[str]:
    out = ["## 2. Bridge throughput", ""]
    bridge = ok(section)
    if bridge is None:
        return [*out, failed(section)]
    out += [
        f"{bridge['messages']:,} VipActions ({bridge['message_bytes']} bytes each on average) "
        "into a fresh quorum queue, persistent, with publisher confirms. rabbit-bridge drains a "
        "preloaded 4-partition topic (batches of 2,000, confirms pipelined within a batch); "
        f"PerfTest {versions.get('RabbitMQ PerfTest', '')} publishes the same count and size "
        f"with one producer, no consumer, `--confirm {bridge['confirm_window']}`, "
        "`--flag persistent`, `--quorum-queue`. Both are timed by the queue's depth (passive "
        "declare), from the first message seen to the last.",
        "",
    ]
    b = rate(bridge, "bridge")
    rows = []
    for label, key in (("ceiling: RabbitMQ PerfTest", "perftest"), ("**rabbit-bridge**", "bridge")):
        entry = ok(bridge.get(key))
        if entry is None:
            rows.append([label, failed(bridge.get(key)), "", "", ""])
            continue
        rows.append(
            [label, num(entry["rate"]), num(ratio(b, entry["rate"]), 2), num(entry["seconds"], 1),
             cores(entry)]
        )  # fmt: skip
    out += table(["system", "msgs/s", "bridge / this", "seconds", "cores"], rows)
    perftest = ok(bridge.get("perftest"))
    if perftest and perftest.get("own_summary"):
        out += ["", f"PerfTest's own summary: `{perftest['own_summary']}`."]
    return out


def latency_section(section: Any) -> list[str]:
    out = ["## 3. End-to-end latency", ""]
    latency = ok(section)
    if latency is None:
        return [*out, failed(section)]
    out += [
        "user-state, the enricher and rabbit-bridge running (default settings); clicks produced "
        "at a fixed rate by a paced producer (linger 5 ms, like the generator; no `event_time` "
        "field, so the Kafka timestamp taken at produce is the event time carried into the "
        "VipAction); a consumer in its own process on the bridge's queue records receive time - "
        "event time for every VipAction. The first "
        f"{latency['warmup_seconds']:.0f} s of each rate are a warm-up and not counted.",
        "",
    ]
    rows = []
    for r in latency["rates"]:
        if not ok(r):
            rows.append([f"{r['rate']:,}", failed(r), "", "", "", "", ""])
            continue
        rows.append(
            [f"{r['rate']:,}", f"{r['seconds']:.0f}", f"{r['count']:,}", num(r["p50"], 1),
             num(r["p99"], 1), num(r["max"], 1), f"{r['received']:,} / {r['expected']:,}"]
        )  # fmt: skip
    header = ["clicks/s", "seconds", "VipActions timed", "p50 ms", "p99 ms", "max ms"]
    out += table([*header, "received / expected"], rows)
    return out + hops_table(latency["rates"]) + rabbitmq_alone_table(latency["rates"])


def rabbitmq_alone_table(rates: list[Any]) -> list[str]:
    """The bridge hop beside what RabbitMQ does alone at the same message rate (PerfTest)."""
    rows = []
    for r in rates:
        if not ok(r) or "rabbitmq_alone" not in r:
            continue
        alone, hop = r["rabbitmq_alone"], r.get("hops", {}).get("bridge", {})
        if not ok(alone):
            rows.append([f"{r['rate']:,}", "", failed(alone), "", "", ""])
            continue
        rows.append(
            [f"{r['rate']:,}", f"{alone['rate']:,}", num(alone["p50"], 1), num(alone["p99"], 1),
             num(hop.get("p50"), 1), num(hop.get("p99"), 1)]
        )  # fmt: skip
    if not rows:
        return []
    intro = (
        "RabbitMQ alone at the rate the bridge published at: PerfTest, one producer "
        "(persistent, confirms, 50 in flight) and one consumer on a quorum queue, run after each "
        "rate for as long; its own publish-to-receive percentiles, beside the bridge hop above."
    )
    header = ["clicks/s", "messages/s", "PerfTest p50 ms", "PerfTest p99 ms"]
    return ["", intro, "", *table([*header, "bridge hop p50 ms", "bridge hop p99 ms"], rows)]


HOP_NAMES = {
    "enricher": "click produce -> VipAction produced",
    "kafka": "-> readable on Kafka",
    "bridge": "-> received from RabbitMQ",
}


def hops_table(rates: list[Any]) -> list[str]:
    """Per hop, split at each VipAction's Kafka timestamp and at its read by a tailing consumer."""
    rows = [
        [f"{r['rate']:,}", HOP_NAMES.get(hop, hop), *(num(v, 1) for v in split.values())]
        for r in rates
        if ok(r) and "hops" in r
        for hop, split in r["hops"].items()
    ]
    if not rows:
        return []
    intro = (
        "Per hop: a consumer tailing the VipAction topic splits each timed "
        "VipAction at its Kafka timestamp (the enricher's produce call) and at its read from Kafka."
    )
    return ["", intro, "", *table(["clicks/s", "hop", "p50 ms", "p90 ms", "p99 ms"], rows)]


def user_state_section(section: Any) -> list[str]:
    out = ["## 4. user-state", ""]
    state = ok(section)
    if state is None:
        return [*out, failed(section)]
    out += [
        "Per size a fresh users topic (4 partitions) and user-state started on it. Restore: "
        "process start to `/readyz` 200, and its own log's `seconds` at `bootstrap complete`. "
        "Memory: VmRSS once ready (and the peak, VmHWM). Lookups: "
        f"{state['batch']:,} random known ids (as of now) per POST `/v1/lookup`, over one "
        "keep-alive connection, after a warm-up.",
        "",
    ]
    rows = []
    for s in state["sizes"]:
        if not ok(s):
            rows.append([f"{s['users']:,}", failed(s), *[""] * 8])
            continue
        rows.append(
            [f"{s['users']:,}", num(s["start_to_ready_s"], 2), num(s["start_to_ready_users_per_s"]),
             num(s["bootstrap_s"], 2), num(s["bootstrap_users_per_s"]), num(s["rss_mb"]),
             num(s["peak_rss_mb"]), num(s["ids_per_second"]), num(s["batch_p50_ms"], 2),
             num(s["batch_p99_ms"], 2)]
        )  # fmt: skip
    out += table(
        ["users", "start to ready s", "restore users/s", "bootstrap (log) s",
         "restore users/s (log)", "RSS MB", "peak RSS MB", "lookup ids/s", "batch p50 ms",
         "batch p99 ms"],
        rows,
    )  # fmt: skip
    sizes = [s for s in state["sizes"] if ok(s)]
    if len(sizes) > 1:
        small = min(sizes, key=lambda s: s["users"])
        large = max(sizes, key=lambda s: s["users"])
        growth = ratio(large["batch_p50_ms"], small["batch_p50_ms"])
        out += [
            "",
            f"Lookup cost as the table grows from {small['users']:,} to {large['users']:,} "
            f"users: batch p50 x{num(growth, 2)} (flat is 1.00).",
        ]
    return out


def _profile_table(title: str, report: Entry) -> list[str]:
    pairs = list(zip(report["inclusive"], report["self"], strict=False))
    return [
        "",
        f"**{title}** ({report['samples']:,} samples)",
        "",
        *table(
            ["inclusive %", "function", "self %", "function"],
            [[f"{a[1]}", f"`{a[0]}`", f"{b[1]}", f"`{b[0]}`"] for a, b in pairs],
        ),
    ]


def profile_section(load: Any, restore: Any, versions: dict[str, str]) -> list[str]:
    out = [
        "## Profile",
        "",
        f"py-spy {versions.get('py-spy', '')}, in runs of their own after the timed ones. "
        "Inclusive: share of samples with the function anywhere on the stack; self: as the "
        "innermost Python frame (time in C code called from it counts there).",
    ]
    if load is not None:
        entry = ok(load)
        if entry is None:
            out += ["", f"Enricher under load: {failed(load)}"]
        else:
            files = ", ".join(f"`{f}`" for f in entry["files"].values())
            out += [
                "",
                f"Enricher under load: {entry['seconds']:.0f} s while it worked through the "
                "click topic with a fresh group. The enricher: its main thread, waits included "
                "(`--idle`), so time blocked on Kafka and on user-state shows. user-state "
                "meanwhile: samples of whichever thread holds the GIL (`--gil`), i.e. where its "
                f"CPU goes. Raw collapsed stacks: {files}.",
            ]
            out += _profile_table("enricher, main thread, wall time", entry["enricher"])
            out += _profile_table("user-state answering its lookups, CPU", entry["user-state"])
    if restore is not None:
        entry = ok(restore)
        if entry is None:
            out += ["", f"user-state restore: {failed(restore)}"]
        else:
            out += [
                "",
                f"user-state restoring {entry['users']:,} users, from process start to ready "
                f"(GIL holders, `--gil`). Raw collapsed stacks: `{entry['file']}`.",
            ]
            out += _profile_table(f"user-state restore of {entry['users']:,} users, CPU", entry)
    return out


def write(path: Path, results: dict[str, Any]) -> None:
    from bench.report_enricher import enricher_section, scaling_section
    from bench.report_windows import windows_section

    meta = results["meta"]
    versions: dict[str, str] = meta["versions"]
    out: list[str] = [
        "# Performance",
        "",
        f"Measured by `{meta['command']}` on {meta['date']} (run `{meta['run_id']}`, "
        f"{meta['duration_min']:.0f} min). This file is written by `bench/`; reproduce with "
        "`make bench` (`uv run python -m bench --help` for the sizes; `make bench "
        "BENCH_ARGS=--quick` for a smoke run at 1/10 the sizes).",
        "",
        "The machine is shared and noisy, so every figure stands beside a ceiling or a peer "
        "measured in the same run, on the same brokers and the same data, and the ratio is the "
        "result; absolute rates are context only.",
        "",
        "## Targets",
        "",
        *targets(results),
    ]
    sections = [
        enricher_section(results["enricher"]) if "enricher" in results else [],
        windows_section(results["windows"]) if "windows" in results else [],
        bridge_section(results["bridge"], versions) if "bridge" in results else [],
        latency_section(results["latency"]) if "latency" in results else [],
        user_state_section(results["user_state"]) if "user_state" in results else [],
        scaling_section(results["enricher"]) if "enricher" in results else [],
    ]
    enricher = ok(results.get("enricher")) or {}
    state = ok(results.get("user_state")) or {}
    if "profile" in enricher or "restore_profile" in state:
        sections.append(
            profile_section(enricher.get("profile"), state.get("restore_profile"), versions)
        )
    for lines in sections:
        if lines:
            out += ["", *lines]
    out += ["", "## Analysis", "", ANALYSIS_START, _analysis(path), ANALYSIS_END]
    machine = meta["machine"]
    out += [
        "",
        "## Machine and versions",
        "",
        f"- {machine['cpu']}, {machine['nproc']} cores (`nproc`), {machine['memory']} memory, "
        f"{machine['kernel']}. Shared with other engineers' work: before each timed section "
        f"the run waited for the 1-minute load average to fall below {meta['max_load']} (up to "
        f"{meta['load_wait']:.0f} s); the load it started at is listed below.",
        *[f"- {name}: {version}" for name, version in versions.items()],
        "",
        "Load average at the start of each timed section:",
        "",
        *table(["section", "1-min load"], [[k, f"{v:.2f}"] for k, v in meta["loads"].items()]),
        "",
        "## Sizes of this run",
        "",
        *[f"- `{k}`: {v}" for k, v in meta["sizes"].items()],
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")
