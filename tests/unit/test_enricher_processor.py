"""The enricher's batch logic over in-memory inputs: join, filter, grace, dead letters, offsets.

Kafka and user-state are replaced by plain in-memory stand-ins of their *interfaces* here; the
real brokers are exercised in tests/integration.
"""

from collections.abc import Sequence

import orjson
from clickstream_common.contracts import User, event_id
from clickstream_common.delivery import AtLeastOnceCommitter, PipelinedCommitter
from clickstream_common.metrics import Metrics
from clickstream_common.records import (
    BatchFenced,
    OutRecord,
    Position,
    Record,
)
from clickstream_enricher.directory import Answered, UserMatch
from clickstream_enricher.pending import PendingClicks
from clickstream_enricher.processor import ClickProcessor, OutputTopics
from clickstream_enricher.query import DEFAULT_QUERY, compile_query
from clickstream_user_state.store import UserStore

TOPICS = OutputTopics("vip-action", "click.dlq", "click.unmatched")


class Source:
    def __init__(self):
        self.batches: list[list[Record]] = []
        self.commits: list[dict] = []

    def poll_batch(self, max_records, timeout):
        return self.batches.pop(0) if self.batches else []

    def commit(self, next_offsets):
        self.commits.append(dict(next_offsets))

    commit_async = commit


class Acks:
    def __init__(self, sink):
        self._sink = sink

    @property
    def done(self):
        return self._sink.acknowledging

    def wait(self, timeout=60):
        self._sink.waits += 1


class Sink:
    def __init__(self):
        self.sent: list[OutRecord] = []
        self.acknowledging = True  # Kafka's acknowledgements are in as soon as looked for
        self.waits = 0

    def send_all(self, records):
        self.sent.extend(records)

    def send_tracked(self, records):
        self.sent.extend(records)
        return Acks(self)

    def flush(self, timeout=60):
        pass

    def on(self, topic):
        return [r for r in self.sent if r.topic == topic]


class StoreDirectory:
    """user-state's own store behind the enricher's lookup interface."""

    def __init__(self, store: UserStore):
        self.store = store
        self.requests = 0

    def lookup(self, keys: Sequence[tuple[str, int | None]]):
        self.requests += 1
        return [
            UserMatch.of(r.found, r.user) for r in (self.store.lookup(uid, at) for uid, at in keys)
        ]

    def start(self, keys: Sequence[tuple[str, int | None]]):
        """Answered as it is asked: what a batch read ahead sees is the store at that moment."""
        return Answered(self.lookup(keys))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def click(offset, user_id, action="checkout", partition=0, ts=1_000):
    value = {"user_id": user_id, "page": offset, "action": action, "device": "mobile", "agent": "a"}
    return Record("click", partition, offset, user_id.encode(), orjson.dumps(value), ts)


def make(sql=DEFAULT_QUERY, grace=5.0, capacity=100, mode="as_of", committer=None, pipelined=False):
    store = UserStore()
    store.apply("p", User("p", "Pat", "PLATINUM"), 0)
    store.apply("g", User("g", "Gil", "GOLD"), 0)
    source, sink, clock = Source(), Sink(), Clock()
    directory = StoreDirectory(store)
    processor = ClickProcessor(
        source=source,
        committer=committer
        or (PipelinedCommitter if pipelined else AtLeastOnceCommitter)(sink, source),
        users=directory,
        query=compile_query(sql),
        topics=TOPICS,
        join_mode=mode,
        pending=PendingClicks(grace, capacity),
        metrics=Metrics("test"),
        pipelined=pipelined,
        clock=clock,
        sleep=clock.advance,
    )
    return processor, source, sink, store, clock, directory


def test_platinum_clicks_become_vip_actions_with_one_lookup_per_batch():
    processor, source, sink, _, _, directory = make()
    source.batches = [[click(0, "p"), click(1, "g"), click(2, "p", action="cart")]]
    processor.step(0)
    vip = [orjson.loads(r.value) for r in sink.on("vip-action")]
    assert vip == [
        {
            "event_id": event_id("click", 0, 0),
            "user_id": "p",
            "name": "Pat",
            "page": 0,
            "action": "checkout",
            "event_time": "1970-01-01T00:00:01.000Z",
        },
        {
            "event_id": event_id("click", 0, 2),
            "user_id": "p",
            "name": "Pat",
            "page": 2,
            "action": "cart",
            "event_time": "1970-01-01T00:00:01.000Z",
        },
    ]
    assert [r.key for r in sink.on("vip-action")] == [b"p", b"p"]
    assert directory.requests == 1
    assert source.commits == [{("click", 0): 3}]


def test_malformed_clicks_go_to_the_dlq_and_are_committed():
    processor, source, sink, _, _, _ = make()
    bad = Record("click", 0, 0, b"p", b"{oops", 1)
    source.batches = [[bad, click(1, "p")]]
    processor.step(0)
    (dead,) = sink.on("click.dlq")
    assert dead.value == b"{oops"
    assert dict(dead.headers)["dlq.source.offset"] == "0"
    assert len(sink.on("vip-action")) == 1
    assert source.commits == [{("click", 0): 2}]


def test_unknown_user_waits_and_joins_when_the_user_arrives():
    processor, source, sink, store, clock, _ = make()
    source.batches = [[click(0, "late"), click(1, "p")]]
    processor.step(0)
    assert len(sink.on("vip-action")) == 1
    # Offset 0 is held, so nothing of partition 0 may be committed past it.
    assert source.commits == [{("click", 0): 0}]
    store.apply("late", User("late", "Lee", "PLATINUM"), 0)
    clock.now += 1
    processor.step(0)
    assert [orjson.loads(r.value)["user_id"] for r in sink.on("vip-action")] == ["p", "late"]
    assert source.commits[-1] == {("click", 0): 2}


def test_unknown_user_goes_to_unmatched_after_the_grace_period():
    processor, source, sink, _, clock, _ = make(grace=2.0)
    source.batches = [[click(0, "ghost")]]
    processor.step(0)
    assert sink.on("click.unmatched") == []
    clock.now += 2.5
    processor.step(0)
    (unmatched,) = sink.on("click.unmatched")
    assert "grace" in dict(unmatched.headers)["dlq.error"]
    assert source.commits[-1] == {("click", 0): 1}


def test_grace_buffer_is_bounded():
    processor, source, sink, _, _, _ = make(capacity=2)
    source.batches = [[click(i, f"ghost{i}") for i in range(5)]]
    processor.step(0)
    reasons = [dict(r.headers)["dlq.error"] for r in sink.on("click.unmatched")]
    assert len(reasons) == 3 and all("buffer full" in r for r in reasons)
    assert source.commits == [{("click", 0): 3}]


def test_without_grace_an_unknown_user_is_unmatched_at_once():
    processor, source, sink, _, _, _ = make(grace=0)
    source.batches = [[click(0, "ghost")]]
    processor.step(0)
    assert len(sink.on("click.unmatched")) == 1


def test_left_join_emits_unknown_users_with_nulls_after_grace():
    sql = (
        "INSERT INTO VipActions SELECT Clicks.user_id, Users.name, Clicks.page FROM Clicks "
        "LEFT JOIN Users ON Clicks.user_id = Users.user_id"
    )
    processor, source, sink, _, clock, _ = make(sql=sql, grace=1.0)
    source.batches = [[click(0, "ghost"), click(1, "g")]]
    processor.step(0)
    clock.now += 2
    processor.step(0)
    rows = [orjson.loads(r.value) for r in sink.on("vip-action")]
    assert [(r["user_id"], r["name"]) for r in rows] == [("g", "Gil"), ("ghost", None)]
    assert sink.on("click.unmatched") == []


def test_as_of_uses_the_version_valid_at_event_time_and_latest_does_not():
    for mode, expected in (("as_of", 0), ("latest", 1)):
        processor, source, sink, store, _, _ = make(mode=mode)
        store.apply("g", User("g", "Gil", "PLATINUM"), 5_000)  # promoted after the click
        source.batches = [[click(0, "g", ts=1_000)]]
        processor.step(0)
        assert len(sink.on("vip-action")) == expected, mode


def test_revoked_partitions_drop_their_waiting_clicks():
    processor, source, sink, _, clock, _ = make()
    source.batches = [[click(0, "ghost", partition=1)]]
    processor.step(0)
    processor.on_revoke([("click", 1)])
    clock.now += 10
    processor.step(0)
    assert sink.on("click.unmatched") == []


def test_drain_settles_waiting_clicks_without_reading_more_then_commits_all():
    processor, source, sink, store, _, _ = make(grace=1.0)
    source.batches = [[click(0, "late"), click(1, "ghost"), click(2, "p")]]
    processor.step(0)
    store.apply("late", User("late", "Lee", "PLATINUM"), 0)
    source.batches = [[click(3, "p")]]  # must stay unread
    processor.drain()
    assert [orjson.loads(r.value)["page"] for r in sink.on("vip-action")] == [2, 0]
    assert len(sink.on("click.unmatched")) == 1
    assert source.commits[-1] == {("click", 0): 3}
    assert source.batches == [[click(3, "p")]]


# Pipelined (at least once): a batch is read and its lookup sent before the previous one is
# delivered; the one read ahead has no visible effect until it is finished.


def test_pipelined_a_batch_is_finished_by_the_next_step_and_its_offsets_only_then():
    processor, source, sink, _, _, directory = make(pipelined=True)
    source.batches = [[click(0, "p"), click(1, "g")], [click(2, "p")]]
    processor.step(0)
    assert directory.requests == 1  # its lookup is sent ...
    assert sink.sent == [] and source.commits == []  # ... but nothing of it is visible
    processor.step(0)
    assert [orjson.loads(r.value)["page"] for r in sink.on("vip-action")] == [0]
    assert source.commits == [{("click", 0): 2}]  # the batch read ahead is not done
    processor.step(0)  # nothing new: the one ahead is finished
    assert [orjson.loads(r.value)["page"] for r in sink.on("vip-action")] == [0, 2]
    assert source.commits[-1] == {("click", 0): 3}


def test_pipelined_a_step_does_not_wait_for_input_while_a_batch_is_ahead():
    processor, source, _, _, _, _ = make(pipelined=True)
    timeouts = []
    batches = iter([[click(0, "p")], []])

    def poll_batch(max_records, timeout):
        timeouts.append(timeout)
        return next(batches)

    source.poll_batch = poll_batch
    processor.step(0.5)
    processor.step(0.5)
    assert timeouts == [0.5, 0]


def test_pipelined_a_revoked_partition_is_dropped_from_the_batch_read_ahead():
    processor, source, sink, _, _, _ = make(pipelined=True)
    source.batches = [[click(0, "p", partition=0), click(0, "p", partition=1)]]
    processor.step(0)
    processor.on_revoke([("click", 1)])  # inside the next poll, with the batch still ahead
    processor.step(0)
    assert [dict(orjson.loads(r.value))["page"] for r in sink.on("vip-action")] == [0]
    # Partition 1 is the next owner's, from its committed offset: nothing of it is committed.
    assert source.commits == [{("click", 0): 1}]


def test_pipelined_a_waiting_click_that_expired_meanwhile_is_not_settled_twice():
    processor, source, sink, store, clock, _ = make(grace=1.0, pipelined=True)
    source.batches = [[click(0, "late")], [click(1, "g")], [click(2, "g")]]
    processor.step(0)
    processor.step(0)  # finishes batch 1: offset 0 waits for its user
    store.apply("late", User("late", "Lee", "PLATINUM"), 0)
    clock.now += 1.5
    processor.step(0)  # batch 3's lookup retries offset 0 and finds it; batch 2 expires it ...
    assert len(sink.on("click.unmatched")) == 1
    processor.drain()  # ... so batch 3 must not join it too
    outcomes = [r.topic for r in sink.sent]
    assert outcomes.count("click.unmatched") + outcomes.count("vip-action") == 1
    assert source.commits[-1] == {("click", 0): 3}


def test_pipelined_drain_finishes_the_batch_read_ahead():
    processor, source, sink, _, _, _ = make(pipelined=True)
    source.batches = [[click(0, "p")]]
    processor.step(0)
    source.batches = [[click(1, "p")]]  # must stay unread
    processor.drain()
    assert len(sink.on("vip-action")) == 1
    assert source.commits == [{("click", 0): 1}]
    assert source.batches == [[click(1, "p")]]


def test_pipelined_a_batch_is_committed_once_acknowledged_and_the_last_one_when_input_stops():
    processor, source, sink, _, _, _ = make(pipelined=True)
    sink.acknowledging = False
    source.batches = [[click(0, "p")], [click(1, "p")]]
    processor.step(0)
    processor.step(0)  # batch 1 produced; its acknowledgements come while batch 2 is evaluated
    assert len(sink.on("vip-action")) == 1 and source.commits == []
    assert processor._metrics.value("vip_actions") == 1
    processor.step(0)  # nothing new: batch 2 is finished, batch 1 waited for and committed ...
    # ... and with no input left to overlap with, batch 2 is not left waiting either
    assert source.commits == [{("click", 0): 1}, {("click", 0): 2}]
    assert sink.waits == 2


def test_pipelined_a_revocation_first_commits_every_batch_produced():
    processor, source, sink, _, _, _ = make(pipelined=True)
    sink.acknowledging = False
    source.batches = [[click(0, "p")], [click(1, "p")]]
    processor.step(0)
    processor.step(0)
    assert source.commits == []
    processor.on_revoke([("click", 0)])  # inside the next poll: the consumer commits after it
    assert source.commits == [{("click", 0): 1}]


def test_exactly_once_does_not_read_ahead():
    try:
        make(committer=Transactions(), pipelined=True)
        raise AssertionError("must refuse")
    except ValueError as exc:
        assert "exactly-once" in str(exc)


# Exactly once: outputs and positions in one transaction, resumable past held clicks.


class Transactions:
    """An in-memory stand-in of the exactly-once strategy: each `commit_batch` is one atomic
    transaction appended to a log that survives a crash of the processor, like Kafka's."""

    exactly_once = True

    def __init__(self):
        self.log: list[tuple[list[OutRecord], dict]] = []
        self.events: list[str] = []
        self.fail_next = False

    def commit_batch(self, outputs, positions, on_durable=None):
        if self.fail_next:
            self.fail_next = False
            self.events.append("abort")
            raise RuntimeError("crash before the transaction committed")
        self.log.append((list(outputs), dict(positions)))
        self.events.append("commit")
        if on_durable is not None:
            on_durable()

    def settle(self):
        pass

    def resume(self, partitions):
        positions = {}
        for _, committed in self.log:
            positions.update({p: pos for p, pos in committed.items() if p in partitions})
        return positions

    def outputs(self, topic):
        return [r for outputs, _ in self.log for r in outputs if r.topic == topic]


def replaying(source, records, upto=None):
    """What a restarted consumer reads: every record from the committed offset on."""
    source.batches = [[r for r in records if upto is None or r.offset >= upto]]


def restart(store, txn, grace=5.0, clock=None):
    """A new process: fresh memory, the same user-state, Kafka's committed state in `txn`."""
    source, sink = Source(), Sink()
    processor = ClickProcessor(
        source=source,
        committer=txn,
        users=StoreDirectory(store),
        query=compile_query(DEFAULT_QUERY),
        topics=TOPICS,
        join_mode="as_of",
        pending=PendingClicks(grace, 100),
        metrics=Metrics("test"),
        clock=clock or Clock(),
        sleep=(clock or Clock()).advance,
    )
    processor.on_assign([("click", 0)])
    return processor, source, sink


def event_ids(records):
    return [orjson.loads(r.value)["event_id"] for r in records]


def test_exactly_once_commits_outputs_and_offsets_in_one_transaction_not_via_the_consumer():
    txn = Transactions()
    processor, source, sink, _, _, _ = make(committer=txn)
    source.batches = [[click(0, "p"), click(1, "g"), click(2, "p")]]
    processor.step(0)
    ((outputs, positions),) = txn.log
    assert [r.topic for r in outputs] == ["vip-action", "vip-action"]
    assert positions == {("click", 0): Position(3)}
    assert source.commits == [] and sink.sent == []


def test_exactly_once_restart_past_a_held_click_emits_nothing_twice():
    txn = Transactions()
    processor, source, _, store, _, _ = make(committer=txn)
    records = [click(0, "p"), click(1, "ghost"), click(2, "p"), click(3, "p")]
    source.batches = [records]
    processor.step(0)
    # Offset 1 waits for its user and pins the commit; the note says 2 and 3 are done.
    (_, positions), *_ = txn.log
    assert positions == {("click", 0): Position(1, "v1:3:")}
    assert len(txn.outputs("vip-action")) == 3

    # kill -9, restart: the consumer re-reads from offset 1, and offset 4 is new.
    clock = Clock()
    processor, source, _ = restart(store, txn, clock=clock)
    replaying(source, [*records, click(4, "p")], upto=1)
    processor.step(0)
    clock.advance(10)  # ghost's grace runs out
    processor.step(0)

    vip = event_ids(txn.outputs("vip-action"))
    assert len(vip) == len(set(vip)) == 4
    (unmatched,) = txn.outputs("click.unmatched")
    assert dict(unmatched.headers)["dlq.source.offset"] == "1"
    assert txn.log[-1][1] == {("click", 0): Position(5)}


def test_at_least_once_restart_past_a_held_click_repeats_the_finished_ones():
    """The contrast, and what 'nothing changes' means: plain offsets, resumed by the consumer."""
    processor, source, sink, store, _, _ = make()
    records = [click(0, "p"), click(1, "ghost"), click(2, "p")]
    source.batches = [records]
    processor.step(0)
    assert source.commits == [{("click", 0): 1}]
    committer = AtLeastOnceCommitter(sink, source)
    assert committer.resume([("click", 0)]) == {}
    processor, source2, _ = restart(store, committer)
    replaying(source2, records, upto=1)
    processor.step(0)
    vip = event_ids(sink.on("vip-action"))
    assert vip.count(event_id("click", 0, 2)) == 2


def test_exactly_once_failed_transaction_leaves_nothing_and_the_batch_is_redone():
    txn = Transactions()
    processor, source, _, store, _, _ = make(committer=txn)
    source.batches = [[click(0, "p")]]
    processor.step(0)
    records = [click(1, "p"), click(2, "ghost"), click(3, "p")]
    source.batches = [records]
    txn.fail_next = True
    try:
        processor.step(0)
        raise AssertionError("the failure must propagate")
    except RuntimeError:
        pass
    assert len(txn.log) == 1
    processor, source, _ = restart(store, txn)
    replaying(source, records, upto=1)
    processor.step(0)
    vip = event_ids(txn.outputs("vip-action"))
    assert vip == [event_id("click", 0, o) for o in (0, 1, 3)]


def test_exactly_once_note_survives_a_restart_that_reads_only_part_of_the_range():
    """A restarted owner that has read only some of the noted range must not commit a note that
    forgets the rest: the later held click still pins, the finished ones stay claimed."""
    txn = Transactions()
    processor, source, _, store, _, _ = make(committer=txn)
    records = [click(0, "ghost0"), click(1, "p"), click(2, "ghost2"), click(3, "p")]
    source.batches = [records]
    processor.step(0)
    assert txn.log[-1][1] == {("click", 0): Position(0, "v1:4:2")}
    store.apply("ghost0", User("ghost0", "Gus", "PLATINUM"), 0)
    processor, source, _ = restart(store, txn)
    replaying(source, records[:2])  # only offsets 0 and 1 arrive in this batch
    processor.step(0)
    # 0 joined now; 2 is still held (from the note), so the commit moves to 2, keeping 3 claimed.
    assert txn.log[-1][1] == {("click", 0): Position(2, "v1:2:")}
    processor2, source2, _ = restart(store, txn)
    replaying(source2, records, upto=2)
    processor2.step(0)
    vip = event_ids(txn.outputs("vip-action"))
    assert sorted(vip) == sorted(event_id("click", 0, o) for o in (0, 1, 3))
    assert len(vip) == len(set(vip))


def test_revocation_comes_between_batches_after_the_last_commit():
    """Rebalance callbacks run inside the poll: everything before is committed, and (exactly
    once) no transaction is open while partitions are given up."""
    txn = Transactions()
    processor, source, _, _, _, _ = make(committer=txn)
    polls = iter([[click(0, "p", partition=1), click(1, "ghost", partition=1)], []])

    def poll_batch(max_records, timeout):
        if txn.log:  # second poll: the consumer gives partition 1 up during it
            txn.events.append("revoke")
            processor.on_revoke([("click", 1)])
        return next(polls)

    source.poll_batch = poll_batch
    processor.step(0)
    processor.step(0)
    assert txn.events == ["commit", "revoke"]
    assert txn.log[0][1] == {("click", 1): Position(1, "v1:1:")}
    assert len(processor._pending) == 0


def test_a_revocation_in_the_middle_of_a_batch_is_refused():
    txn = Transactions()
    processor, source, _, _, _, _ = make(committer=txn)

    def commit_batch(outputs, positions, on_durable=None):
        processor.on_revoke([("click", 0)])

    txn.commit_batch = commit_batch
    source.batches = [[click(0, "p")]]
    try:
        processor.step(0)
        raise AssertionError("must refuse")
    except RuntimeError as exc:
        assert "in flight" in str(exc)


def test_a_batch_fenced_by_the_group_is_read_again_from_the_commit_and_emitted_once():
    """The group moved on while a batch committed (this member's session expired, say): nothing
    of it is visible, the consumer is back at the commit, and the processor must neither lose
    the batch nor emit again what the commit's note says is finished."""
    txn = Transactions()
    processor, source, _, store, _, _ = make(committer=txn)
    source.batches = [[click(0, "p"), click(1, "ghost"), click(2, "p")]]
    processor.step(0)  # 0 and 2 emitted, 1 held: committed at 1, noting 2 as finished
    assert txn.log[-1][1] == {("click", 0): Position(1, "v1:2:")}
    commit = txn.commit_batch
    fence = [True]

    def commit_batch(outputs, positions, on_durable=None):
        if fence and fence.pop():
            raise BatchFenced([("click", 0)], "the group moved on")
        commit(outputs, positions, on_durable)

    txn.commit_batch = commit_batch
    source.batches = [[click(3, "p")]]
    processor.step(0)
    assert processor._metrics.value("batches_fenced") == 1
    assert len(processor._pending) == 0, "the held click is read again, not kept"
    store.apply("ghost", User("ghost", "Gus", "PLATINUM"), 0)
    # The consumer, sent back to the commit, reads from offset 1 again.
    source.batches = [[click(1, "ghost"), click(2, "p"), click(3, "p")]]
    processor.step(0)
    pages = [orjson.loads(r.value)["page"] for r in txn.outputs("vip-action")]
    assert pages == [0, 2, 1, 3]
    assert txn.log[-1][1] == {("click", 0): Position(4)}
