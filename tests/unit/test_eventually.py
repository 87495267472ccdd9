"""The tests' waiting helper: it returns what the check found, and fails with what it last saw."""

from __future__ import annotations

import itertools

import pytest

from tests.support.eventually import GaveUpWaiting, eventually


def test_returns_the_first_truthy_value() -> None:
    values = iter([0, None, [], "done"])
    assert eventually(lambda: next(values), timeout=5, interval=0) == "done"


def test_gives_up_with_the_message_and_the_last_value() -> None:
    counter = itertools.count()
    with pytest.raises(GaveUpWaiting, match=r"never three \(after 0\.05s; last: 0\)"):
        eventually(lambda: next(counter) * 0, timeout=0.05, interval=0.01, message="never three")


def test_a_described_state_is_read_when_giving_up() -> None:
    state = {"seen": 1}

    def check() -> bool:
        state["seen"] += 1
        return False

    with pytest.raises(AssertionError, match=r"seen [0-9]+ times"):
        eventually(
            check, timeout=0.05, interval=0.01, message=lambda: f"seen {state['seen']} times"
        )


def test_retried_exceptions_count_as_not_yet_and_are_reported() -> None:
    attempts = iter([OSError("refused"), OSError("refused"), "up"])

    def check() -> str:
        outcome = next(attempts)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert eventually(check, timeout=5, interval=0, retry_on=(OSError,)) == "up"

    def down() -> bool:
        raise OSError("still refused")

    with pytest.raises(GaveUpWaiting, match="still refused") as gave_up:
        eventually(down, timeout=0.05, interval=0.01, retry_on=(OSError,))
    assert isinstance(gave_up.value.__cause__, OSError)


def test_other_exceptions_fail_at_once() -> None:
    calls = []

    def check() -> bool:
        calls.append(1)
        raise AssertionError("the service died")

    with pytest.raises(AssertionError, match="the service died"):
        eventually(check, timeout=30, interval=0, retry_on=(OSError,))
    assert len(calls) == 1
