import orjson
import pytest
from clickstream_common.contracts import BadRecord
from clickstream_common.records import Record
from clickstream_rabbit_bridge.messages import to_delivery


def rec(value):
    return Record("vip-action", 0, 0, b"u", value, 0)


def test_routing_key_is_prefixed_action_and_message_id_is_event_id():
    body = orjson.dumps({"event_id": "e1", "action": "checkout", "user_id": "u"})
    delivery = to_delivery(rec(body))
    assert (delivery.routing_key, delivery.message_id, delivery.body) == (
        "vip.checkout",
        "e1",
        body,
    )


def test_unsafe_or_missing_action_still_routes():
    assert (
        to_delivery(rec(orjson.dumps({"event_id": "e", "action": "a.b#"}))).routing_key
        == "vip.a_b_"
    )
    assert to_delivery(rec(orjson.dumps({"event_id": "e"}))).routing_key == "vip.unknown"


@pytest.mark.parametrize("value", [None, b"nope", b"[]", orjson.dumps({"action": "x"})])
def test_records_that_are_not_vip_actions_are_refused(value):
    with pytest.raises(BadRecord):
        to_delivery(rec(value))
