"""Where bad records go: `<topic>.dlq`, unchanged, with headers naming their source and error."""

from __future__ import annotations

from clickstream_common.records import OutRecord, Record


def dead_letter_topic(source_topic: str) -> str:
    return f"{source_topic}.dlq"


def dead_letter(record: Record, reason: str, topic: str | None = None) -> OutRecord:
    """Keep the original key, value and headers so the record can be replayed after a fix."""
    headers = tuple((name, value.decode("utf-8", "replace")) for name, value in record.headers)
    return OutRecord(
        topic=topic or dead_letter_topic(record.topic),
        key=record.key,
        value=record.value,
        headers=(
            *headers,
            ("dlq.source.topic", record.topic),
            ("dlq.source.partition", str(record.partition)),
            ("dlq.source.offset", str(record.offset)),
            ("dlq.error", reason),
        ),
    )
