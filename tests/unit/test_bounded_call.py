"""call_within: a blocking call that never returns is given up on, without blocking the caller."""

import threading

import pytest
from clickstream_common.bounded import CallOverran, call_within


def test_the_result_and_the_exception_of_a_call_that_returns_come_back():
    assert call_within(lambda: 42, 60, "answer") == 42

    def fails() -> None:
        raise KeyError("lost")

    with pytest.raises(KeyError, match="lost"):
        call_within(fails, 60, "fails")


def test_a_call_that_never_returns_is_abandoned_with_its_name():
    release = threading.Event()
    try:
        with pytest.raises(CallOverran, match="send_offsets did not return") as caught:
            call_within(release.wait, 0.05, "send_offsets")
        assert caught.value.name == "send_offsets"
        stuck = [t for t in threading.enumerate() if t.name == "bounded:send_offsets"]
        assert stuck and all(t.daemon for t in stuck), "an abandoned call must not block exit"
    finally:
        release.set()
