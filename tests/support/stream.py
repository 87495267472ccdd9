"""Points in a running stream named by what happened rather than by how long it took: a test that
means "mid-stream" or "while more clicks arrive" waits for that, not for a number of seconds a
busy machine may not honour."""

from __future__ import annotations

from tests.support.eventually import eventually
from tests.support.groups import end_offsets


def produced(bootstrap: str, topic: str) -> int:
    """Records written to `topic` so far, every partition together."""
    return sum(end_offsets(bootstrap, topic).values())


def wait_produced(bootstrap: str, topic: str, at_least: int, timeout: float = 120) -> None:
    """Until `topic` holds `at_least` records."""
    eventually(
        lambda: produced(bootstrap, topic) >= at_least,
        timeout=timeout,
        message=f"{topic} never reached {at_least} records",
    )


def wait_more_produced(
    bootstrap: str, topic: str, more: int, total: int, timeout: float = 120
) -> None:
    """Until `more` records were added to `topic` from now on, or it holds `total` (everything
    the producer will write, so a producer that finished meanwhile ends the wait too)."""
    wait_produced(bootstrap, topic, min(produced(bootstrap, topic) + more, total), timeout=timeout)
