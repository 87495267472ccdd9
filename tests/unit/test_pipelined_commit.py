"""PipelinedCommitter: a batch's offsets are committed only once its outputs and every earlier
batch's are acknowledged, with one batch's acknowledgements left outstanding at a time."""

import pytest
from clickstream_common.delivery import PipelinedCommitter
from clickstream_common.kafka.errors import DeliveryError
from clickstream_common.records import OutRecord, Position

P0 = ("click", 0)


class Acks:
    def __init__(self, count):
        self.remaining = count
        self.failure = ""
        self.waited = False

    @property
    def done(self):
        return not self.remaining

    def wait(self, timeout=60):
        # Kafka answers, in the end: what is still outstanding is acknowledged now, or refused.
        self.waited = True
        self.remaining = 0
        if self.failure:
            raise DeliveryError(self.failure)


class Sink:
    def __init__(self):
        self.batches: list[Acks] = []
        self.acknowledged = False  # as soon as sent

    def send_tracked(self, records):
        acks = Acks(0 if self.acknowledged else len(records))
        self.batches.append(acks)
        return acks


class Source:
    def __init__(self):
        self.commits: list[dict] = []

    def commit_async(self, offsets):
        self.commits.append(dict(offsets))

    def confirmed_offsets(self):
        return {}


def out(n):
    return [OutRecord("vip-action", b"k", b"v")] * n


def make():
    sink, source = Sink(), Source()
    return PipelinedCommitter(sink, source), sink, source


def test_a_batch_is_committed_only_once_acknowledged_and_the_next_is_left_outstanding():
    committer, sink, source = make()
    durable = []
    committer.commit_batch(out(2), {P0: Position(10)}, lambda: durable.append(1))
    assert source.commits == [] and durable == []  # unacknowledged: left outstanding
    committer.commit_batch(out(1), {P0: Position(20)}, lambda: durable.append(2))
    # the first batch is waited for once a second one is handed over; the second stays out
    assert sink.batches[0].waited and not sink.batches[1].waited
    assert source.commits == [{P0: 10}] and durable == [1]
    committer.settle()
    assert source.commits == [{P0: 10}, {P0: 20}] and durable == [1, 2]


def test_batches_acknowledged_already_are_all_committed():
    committer, sink, source = make()
    sink.acknowledged = True
    committer.commit_batch(out(1), {P0: Position(5)})
    committer.commit_batch(out(1), {P0: Position(6)})
    assert source.commits == [{P0: 5}, {P0: 6}]


def test_a_batch_with_no_outputs_waits_behind_an_unacknowledged_one():
    committer, _, source = make()
    committer.commit_batch(out(1), {P0: Position(5)})
    committer.settle()
    committer.commit_batch(out(1), {P0: Position(7)})
    assert source.commits == [{P0: 5}]
    # nothing to send, but its offset covers the batch before, still unacknowledged
    committer.commit_batch([], {P0: Position(9)})
    assert source.commits == [{P0: 5}, {P0: 7}, {P0: 9}]


def test_a_failed_delivery_commits_neither_its_batch_nor_any_later_one():
    committer, sink, source = make()
    committer.commit_batch(out(1), {P0: Position(5)})
    sink.batches[0].failure = "1 delivery failures, first: Broker: Not enough in-sync replicas"
    with pytest.raises(DeliveryError):
        committer.commit_batch(out(1), {P0: Position(6)})
    with pytest.raises(DeliveryError):
        committer.settle()
    assert source.commits == []
