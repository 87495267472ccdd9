"""The windowed queries' part of docs/PERFORMANCE.md: their targets and their section."""

from __future__ import annotations

from typing import Any

from bench.report import at_least, at_most, num, ok, rate, ratio, table


def window_targets(results: dict[str, Any]) -> list[list[str]]:
    windows, enricher = ok(results.get("windows")), ok(results.get("enricher"))
    if windows is None:
        return []
    # Per input click: the sessions query reads the VipActions of `clicks` clicks (a tenth of
    # them), so it keeps up with the join when it takes no longer over them than the join over
    # the clicks, i.e. actions/s x clicks/actions >= clicks/s.
    sessions = rate(windows, "sessions")
    join = rate(enricher, "enricher_x1")
    per_click = sessions * windows["clicks"] / windows["actions"] if sessions else None
    to_join = ratio(per_click, join)
    state = ok(windows.get("state")) or {}
    restore, resident = state.get("restore_rate"), state.get("resident_mb")
    held = f"{state.get('sessions', 0):,}"
    return [
        ["sessions query over the VipActions of N clicks / join over the N clicks, by time,"
         " >= 1.0", num(to_join, 2), at_least(to_join, 1.0)],
        ["(the same in records/s: actions/s / clicks/s)", num(ratio(sessions, join), 2), ""],
        [f"restore of {held} sessions' state > 100,000 records/s", f"{num(restore)} records/s",
         at_least(restore, 100_000)],
        [f"< 200 MB resident for {held} open sessions", f"{num(resident)} MB",
         at_most(resident, 200)],
    ]  # fmt: skip


def windows_section(section: Any) -> list[str]:
    windows = ok(section)
    if windows is None:
        return ["## 6. Windowed queries", "", f"Not measured: {section}"]
    lines = [
        "## 6. Windowed queries",
        "",
        f"The sessions query (`queries/vip-sessions.sql`: 30-minute sessions per VIP, clicks,"
        f" distinct pages, carts, checkouts) over {windows['actions']:,} VipActions, a tenth of"
        f" the {windows['clicks']:,} clicks the join reads in section 1, on 4 partitions, at"
        " least once; timed by its group's committed offsets like the enricher.",
        "",
    ]
    sessions = ok(windows.get("sessions"))
    if sessions is not None:
        cores = ", ".join(f"{k} {v:.2f}" for k, v in sessions["cores"].items())
        lines += table(
            ["query", "records", "seconds", "records/s", "cores busy"],
            [["sessions", f"{sessions['records']:,}", f"{sessions['seconds']:.1f}",
              num(sessions["rate"]), cores]],
        )  # fmt: skip
    state = ok(windows.get("state"))
    if state is not None:
        lines += [
            "",
            f"State: {state['sessions']:,} VIPs with one action each within a second, so as"
            " many sessions stay open; one enricher aggregates them, then a fresh one in the"
            " same group restores them from the changelog before it reads a record (its log"
            " gives each partition's restore time).",
            "",
            *table(
                ["open windows", "state bytes", "resident MB", "restored records",
                 "restore s", "restore records/s", "resident MB after restore"],
                [[num(state["open_windows"]), num(state["state_bytes"]),
                  num(state["resident_mb"], 1), f"{state['restore_records']:,}",
                  f"{state['restore_seconds']:.2f}", num(state["restore_rate"]),
                  num(state["restored_resident_mb"], 1)]],
            ),
        ]  # fmt: skip
    return lines
