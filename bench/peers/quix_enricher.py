"""The peer: the seed's query written as a Quix Streams application.

    INSERT INTO VipActions
    SELECT Users.user_id, Users.name, Clicks.page, Clicks.action, Clicks.event_time
    FROM Clicks INNER JOIN Users ON Clicks.user_id = Users.user_id
    WHERE Users.level = 'PLATINUM'

Quix's documented enrichment join, `StreamingDataFrame.join_asof`: the users stream is the right
side, kept in a RocksDB state store (with its changelog topic, Quix's default); each click looks up
its user's version valid at the click's timestamp, like the enricher's `as_of` join. A join makes
Quix read both topics in timestamp order, so the users (produced first) are loaded before the
clicks that need them. Then the same filter and projection, JSON out to a topic.

It runs in its own virtual environment (.local/bench/quix-venv): Quix pins a confluent-kafka
other than ours. Run until SIGTERM:

    quix-venv/bin/python bench/peers/quix_enricher.py --bootstrap B --clicks C --users U \
        --output O --group G --state-dir DIR
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from quixstreams import Application


def iso_millis(epoch_ms: int) -> str:
    moment = time.gmtime(epoch_ms // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f".{epoch_ms % 1000:03d}Z"


def merge(click: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    """A new record (Quix forbids mutating either side): the click plus its user's columns."""
    return {**click, "name": user["name"], "level": str(user["level"]).upper()}


def vip_action(value: dict[str, Any], key: Any, timestamp: int, headers: Any) -> dict[str, Any]:
    return {
        "user_id": value["user_id"],
        "name": value["name"],
        "page": value["page"],
        "action": value["action"],
        "event_time": iso_millis(timestamp),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="The seed's query as a Quix Streams app")
    for option in ("--bootstrap", "--clicks", "--users", "--output", "--group", "--state-dir"):
        parser.add_argument(option, required=True)
    parser.add_argument(
        "--commit-interval",
        type=float,
        default=1.0,
        help="seconds between commits (Quix's default is 5; 1 bounds the timing error at the end)",
    )
    args = parser.parse_args()

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=args.commit_interval,
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    clicks_topic = app.topic(args.clicks, key_deserializer="str", value_deserializer="json")
    users_topic = app.topic(args.users, key_deserializer="str", value_deserializer="json")
    output_topic = app.topic(args.output, key_serializer="str", value_serializer="json")

    clicks = app.dataframe(clicks_topic)
    users = app.dataframe(users_topic)
    joined = clicks.join_asof(users, how="inner", on_merge=merge)
    vip = joined[joined["level"] == "PLATINUM"]
    vip = vip.apply(vip_action, metadata=True)
    vip.to_topic(output_topic)
    app.run()


if __name__ == "__main__":
    main()
