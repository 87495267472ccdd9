"""py-spy's raw (collapsed) stacks turned into the few lines a reader needs: where the samples
are, counting a function once per stack (inclusive) and as the innermost frame (self)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

TOP = 15


def read_stacks(path: Path, *, main_thread_only: bool) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = tuple(stack.split(";"))
        # Threads other than the main one start in threading's Thread._bootstrap.
        if main_thread_only and "(threading.py)" in frames[0]:
            continue
        stacks[frames] += int(count)
    return stacks


def collapse_report(path: Path, *, main_thread_only: bool) -> dict[str, Any]:
    if not path.exists():
        return {"samples": 0, "inclusive": [], "self": []}
    stacks = read_stacks(path, main_thread_only=main_thread_only)
    total = sum(stacks.values())
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    for frames, count in stacks.items():
        for frame in set(frames):
            inclusive[frame] += count
        leaf[frames[-1]] += count
    # Frames present in (nearly) every sample are the entry points, not hot spots.
    hot = [(f, n) for f, n in inclusive.most_common() if n < 0.98 * total]

    def share(items: list[tuple[str, int]]) -> list[tuple[str, float]]:
        return [(frame, round(100 * n / total, 1)) for frame, n in items[:TOP]]

    return {
        "samples": total,
        "inclusive": share(hot),
        "self": share(leaf.most_common()),
    }
