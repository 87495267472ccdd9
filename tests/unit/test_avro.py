"""The Avro format: round trips, the same bytes and rows as confluent_kafka's own serde, and every
bad-input class refused with its reason. The registry here is the library's in-memory client
(`mock://`); tests/integration/test_avro.py runs the same paths on a real Apicurio registry."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
from clickstream_common.avro import SCHEMA_DIR, RegistryStopped, SchemaFileError
from clickstream_common.avro.registry import SchemaRegistry
from clickstream_common.avro.serde import AvroFormat
from clickstream_common.contracts import BadRecord, decode_click, decode_event, decode_user
from clickstream_common.formats import RowRejected
from clickstream_common.records import Record
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

CLICK = {
    "user_id": "123-45-6789",
    "page": 5535,
    "action": "checkout",
    "device": "mobile",
    "agent": "Mozilla/5.0",
    "event_time": 1_764_800_000_123,
}


def in_memory_client() -> SchemaRegistryClient:
    """The library's in-memory registry, which keeps no compatibility rules: setting one (as
    `SchemaRegistry.register` does) is accepted and ignored here."""
    client = SchemaRegistryClient.new_client({"url": "mock://avro-unit"})
    client.set_compatibility = lambda subject_name=None, level=None: level
    return client


def registry(client: SchemaRegistryClient | None = None) -> SchemaRegistry:
    return SchemaRegistry(
        "mock://avro-unit", threading.Event(), client=client or in_memory_client()
    )


@pytest.fixture
def client() -> SchemaRegistryClient:
    return in_memory_client()


@pytest.fixture
def avro(client: SchemaRegistryClient) -> AvroFormat:
    return AvroFormat(registry(client))


def record(value: bytes | None, key: bytes | None = b"123-45-6789", topic: str = "click") -> Record:
    return Record(topic, 0, 7, key, value, 1_700_000_000_000)


def test_a_click_round_trips_through_the_wire_format(avro: AvroFormat) -> None:
    write = avro.writer("click", "Clicks")
    avro.connect()
    value = write(CLICK)
    assert value[0] == 0 and len(value) > 5
    click = decode_click(record(value), reader=avro)
    assert click.as_row()["event_time"] == "2025-12-03T22:13:20.123Z"
    assert click.event_time_ms == CLICK["event_time"]
    assert (click.user_id, click.page, click.action) == ("123-45-6789", 5535, "checkout")


def test_a_click_without_event_time_takes_the_record_timestamp(avro: AvroFormat) -> None:
    write = avro.writer("click", "Clicks")
    row = {name: value for name, value in CLICK.items() if name != "event_time"}
    assert decode_click(record(write(row)), reader=avro).event_time_ms == 1_700_000_000_000


def test_users_and_tombstones(avro: AvroFormat) -> None:
    write = avro.writer("user", "Users")
    user = decode_user(
        record(write({"user_id": "123-45-6789", "name": "Ann", "level": "platinum"})),
        reader=avro,
    )
    assert user is not None and user.level == "PLATINUM"
    assert decode_user(record(None), reader=avro) is None


def test_the_bytes_are_confluents_both_ways(avro: AvroFormat, client: SchemaRegistryClient) -> None:
    """What AvroSerializer writes we read, and what we write AvroDeserializer reads."""
    text = (SCHEMA_DIR / "Clicks.avsc").read_text()
    conf = {"subject.name.strategy.type": "TOPIC"}
    ctx = SerializationContext("click", MessageField.VALUE)
    theirs = AvroSerializer(client, text, conf={**conf, "auto.register.schemas": True})(CLICK, ctx)
    assert decode_click(record(theirs), reader=avro).event_time_ms == CLICK["event_time"]

    ours = avro.writer("click", "Clicks")(CLICK)
    assert ours[5:] == theirs[5:]  # the same encoding (the ids: two texts of one schema)
    decoded = AvroDeserializer(client, conf=conf)(ours, ctx)
    assert decoded["user_id"] == CLICK["user_id"]
    assert int(decoded["event_time"].timestamp() * 1000) == CLICK["event_time"]


def test_times_are_written_from_iso_text_and_given_back_as_iso_in_json(avro: AvroFormat) -> None:
    write = avro.writer("vip-action", "VipActions")
    row = {
        "event_id": "e1",
        "user_id": "u1",
        "name": "Ann",
        "page": 1,
        "action": "cart",
        "event_time": "2026-12-03T10:00:00.123Z",
    }
    value = write(row)
    source = record(value, b"u1", "vip-action")
    read = avro.read(source)
    assert read["event_time"] == 1_796_292_000_123
    assert decode_event(source, reader=avro)[1] == 1_796_292_000_123
    assert json.loads(avro.json_body(source, read)) == row


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "null value"),
        (b'{"user_id": "123-45-6789"}', "not Avro in the Confluent wire format: first byte 123"),
        (b"\x00\x00\x01", "not Avro in the Confluent wire format: 3 bytes"),
        (b"\x00\x77\x35\x94\x00" + b"\x02a", "unknown schema id 2000000000"),
        (b"x" * 70_000, "oversized: 70000 bytes"),
    ],
)
def test_bad_input_is_refused_with_its_reason(
    avro: AvroFormat, value: bytes | None, reason: str
) -> None:
    with pytest.raises(BadRecord) as refused:
        decode_click(record(value), reader=avro)
    assert str(refused.value).startswith(reason)


def test_a_body_that_does_not_decode_against_its_schema_is_refused(avro: AvroFormat) -> None:
    good = avro.writer("click", "Clicks")(CLICK)
    for bad in (good[:-4], good + b"\x00\x01"):
        with pytest.raises(BadRecord, match=r"does not decode against schema id \d+"):
            decode_click(record(bad), reader=avro)


def test_a_schema_id_of_a_non_record_schema_is_refused() -> None:
    reg = registry()
    schema_id = reg.register("odd-value", '"string"')
    fmt = AvroFormat(reg)
    value = b"\x00" + schema_id.to_bytes(4, "big") + b"\x02a"
    with pytest.raises(BadRecord, match="not an Avro record schema"):
        fmt.read(record(value))


def test_a_click_off_contract_in_avro_is_refused_by_the_same_checks(avro: AvroFormat) -> None:
    write = avro.writer("click", "Clicks")
    with pytest.raises(BadRecord, match="empty user_id"):
        decode_click(record(write({**CLICK, "user_id": ""})), reader=avro)


def test_a_row_the_schema_cannot_carry_is_rejected(avro: AvroFormat) -> None:
    write = avro.writer("vip-action", "VipActions")
    with pytest.raises(RowRejected, match="VipActions"):
        write({"event_id": "e", "user_id": "u", "name": None, "page": 1, "action": "a",
               "event_time": 0})  # fmt: skip


def test_a_query_whose_columns_the_schema_lacks_stops_at_start(avro: AvroFormat) -> None:
    with pytest.raises(SchemaFileError, match="no field for the query's column"):
        avro.writer("vip-action", "VipActions", ("event_id", "user_id", "name", "level"))
    with pytest.raises(SchemaFileError, match="requires field"):
        avro.writer("vip-action", "VipActions", ("event_id", "user_id"))
    with pytest.raises(SchemaFileError, match="no Avro schema for stream Nope"):
        avro.writer("x", "Nope")


def test_a_schema_folder_of_ones_own(tmp_path: Path) -> None:
    (tmp_path / "Mine.avsc").write_text('{"type": "record", "name": "Mine", "fields": []}')
    with pytest.raises(SchemaFileError, match="must be an Avro record schema"):
        AvroFormat(registry(), tmp_path).writer("mine", "Mine")
    (tmp_path / "Bad.avsc").write_text("{")
    with pytest.raises(SchemaFileError, match="not a valid Avro schema"):
        AvroFormat(registry(), tmp_path).writer("bad", "Bad")


def test_every_shipped_schema_parses_and_the_outputs_carry_the_queries_rows() -> None:
    fmt = AvroFormat(registry())
    for path in sorted(SCHEMA_DIR.glob("*.avsc")):
        fmt.writer(path.stem.lower(), path.stem)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_registry_is_waited_for_not_a_bad_record() -> None:
    """No answer is never a reason to dead-letter: the read waits (not ready) until stopped."""
    stopping = threading.Event()
    url = f"http://127.0.0.1:{_closed_port()}"
    fmt = AvroFormat(SchemaRegistry(url, stopping, timeout_seconds=0.5))
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            fmt.read(record(b"\x00\x00\x00\x00\x01\x02a"))
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(1.5)
    assert reader.is_alive() and not outcome
    assert not fmt.ready()
    stopping.set()
    reader.join(10)
    assert [type(exc) for exc in outcome] == [RegistryStopped]


def test_the_generators_avro_clicks_decode_and_its_malformed_ones_are_refused(
    avro: AvroFormat,
) -> None:
    """Every flaw the generator makes in Avro (JSON bytes, an unknown schema id, a record cut
    short) is refused; every other click decodes to the row it was made from."""
    from itertools import islice

    from clickstream_generator.data import ClickKind, DataConfig, clicks, users

    config = DataConfig(seed=3, users=50, malformed_share=0.3, unknown_user_share=0.0)
    reasons = set()
    for click in islice(clicks(config, users(config), avro.writer("click", "Clicks")), 500):
        source = record(click.value, click.key)
        if click.kind is ClickKind.MALFORMED:
            with pytest.raises(BadRecord) as refused:
                decode_click(source, reader=avro)
            reasons.add(str(refused.value).split(":")[0].split(" id ")[0])
        else:
            assert decode_click(source, reader=avro).user_id == click.key.decode()
    assert reasons >= {
        "not Avro in the Confluent wire format",
        "unknown schema",
        "does not decode against schema",
    }


def test_the_bridge_publishes_avro_records_as_json_or_as_they_are(avro: AvroFormat) -> None:
    from clickstream_rabbit_bridge.messages import to_delivery

    row = {"event_id": "e1", "user_id": "u1", "name": "Ann", "page": 7, "action": "cart",
           "event_time": "2026-12-03T10:00:00.123Z"}  # fmt: skip
    source = record(avro.writer("vip-action", "VipActions")(row), b"u1", "vip-action")
    as_json = to_delivery(source, "vip", avro)
    assert (as_json.routing_key, as_json.message_id) == ("vip.cart", "e1")
    assert json.loads(as_json.body) == row  # the JSON contract's form, ISO time included
    assert to_delivery(source, "vip", avro, as_json=False).body == source.value
    far = record(avro.writer("vip-action", "VipActions")({**row, "event_time": 2**62}), b"u1")
    with pytest.raises(BadRecord, match="out of range: event_time"):
        to_delivery(far, "vip", avro)  # a time JSON cannot say: the DLQ, not a crash
    with pytest.raises(BadRecord, match="not Avro"):
        to_delivery(record(json.dumps(row).encode(), b"u1", "vip-action"), "vip", avro)


def test_user_state_reads_avro_session_and_action_rows(avro: AvroFormat) -> None:
    from clickstream_user_state.activity_rows import decode_action, decode_session

    session = {"user_id": "u1", "name": "Ann", "session_start": "2026-12-03T10:00:00.000Z",
               "session_end": "2026-12-03T10:35:00.000Z", "clicks": 4, "pages": 3, "carts": 1,
               "checkouts": None, "window_start": "2026-12-03T10:00:00.000Z",
               "window_end": "2026-12-03T10:35:00.000Z",
               "last_event_time": "2026-12-03T10:05:00.000Z", "final": False,
               "retract": False}  # fmt: skip
    value = avro.writer("vip-session", "VipSessions")(session)
    change = decode_session(record(value, b"u1", "vip-session"), avro)
    assert (change.start_ms, change.end_ms, change.last_ms) == (
        1_796_292_000_000,
        1_796_294_100_000,
        1_796_292_300_000,
    )
    assert (change.clicks, change.carts, change.checkouts, change.final) == (4, 1, None, False)
    retraction = {**session, "clicks": None, "pages": None, "carts": None,
                  "last_event_time": None, "retract": True}  # fmt: skip
    retracted = decode_session(
        record(avro.writer("vip-session", "VipSessions")(retraction), b"u1"), avro
    )
    assert retracted.retract
    action = {"event_id": "e1", "user_id": "u1", "name": "Ann", "page": 7, "action": "cart",
              "event_time": "2026-12-03T10:00:00.123Z"}  # fmt: skip
    shown = decode_action(record(avro.writer("vip-action", "VipActions")(action), b"u1"), avro)
    assert (shown.event_time, shown.page, shown.action) == ("2026-12-03T10:00:00.123Z", 7, "cart")


def test_a_service_running_json_loads_no_registry_client() -> None:
    """16 MB a process: only VALUE_FORMAT=avro imports the registry client and fastavro."""
    import subprocess
    import sys

    probe = (
        "import sys, clickstream_common.service, clickstream_common.avro;"
        "from clickstream_common.avro import value_format_from;"
        "from clickstream_common.settings import FormatSettings;"
        "value_format_from(FormatSettings(), None);"
        "print(sorted(m for m in sys.modules if m.startswith(('fastavro', 'confluent_kafka.schema_registry'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_a_password_in_the_registry_url_stays_out_of_logs_and_errors() -> None:
    url = "https://svc:s3cret@registry.example/apis/ccompat/v7"
    shown = SchemaRegistry(url, threading.Event(), client=in_memory_client()).url
    assert "s3cret" not in shown and shown.startswith("https://svc:***@registry.example")
