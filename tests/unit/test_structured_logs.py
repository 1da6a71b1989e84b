"""Log lines are JSON objects that carry the ids of what they are about: a message the store refuses
is logged with its call id or event id as fields of their own (JsonFormatter keeps ``extra=``)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import pytest

from collector.cli_base import JsonFormatter
from processors.service.consumer import Batch, write_batch
from processors.store.chdb import ChdbSink

NOW = "2026-11-26 07:00:00.000"


@dataclass
class Rec:
    topic: str
    partition: int
    offset: int
    value: bytes


def turn_row(event_id: str, **more: object) -> dict[str, object]:
    return {"tenant": "t-logs", "event_id": event_id, "server_id": "turn-1", "session_id": "s1",
            "kind": "usage", "ingested_at": NOW, **more}


def call_row(call_id: str, **more: object) -> dict[str, object]:
    return {"tenant": "t-logs", "call_id": call_id, "segment": 0, "report_id": f"r-{call_id}", "event_time": NOW,
            "ingested_at": NOW, "source_format": "w3c", "richness": 1, **more}


def test_a_refused_message_is_logged_with_its_ids_and_the_rest_is_stored(
    store: ChdbSink, caplog: pytest.LogCaptureFixture
) -> None:
    batch = Batch()
    messages = [
        {"turn_events": [turn_row("ev-good")]},
        {"turn_events": [turn_row("ev-bad", no_such_column=1)]},  # the store refuses the unknown field
        {"calls": [call_row("call-good")]},
        {"calls": [call_row("call-bad", no_such_column=1)]},
    ]
    for offset, rows in enumerate(messages):
        rec = Rec("icewatch.test", 0, offset, b"{}")
        batch.note(rec)
        batch.messages_rows.append((rec, rows, "t-logs"))
    with caplog.at_level(logging.WARNING, logger="processors.service.consumer"):
        write_batch(batch, store, None)

    stored_events = store.query("SELECT event_id FROM turn_events WHERE tenant = 't-logs'")
    assert [r["event_id"] for r in stored_events] == ["ev-good"]
    assert [r["call_id"] for r in store.query("SELECT call_id FROM calls WHERE tenant = 't-logs'")] == ["call-good"]
    letters = store.query("SELECT origin FROM dead_letters WHERE tenant = 't-logs' ORDER BY origin")
    assert [r["origin"] for r in letters] == ["icewatch.test/0/1", "icewatch.test/0/3"]

    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert [(line.get("event_id"), line.get("call_id")) for line in lines] == [("ev-bad", None), (None, "call-bad")]
    assert all(line["level"] == "WARNING" and "icewatch.test/0/" in line["msg"] for line in lines)


def test_json_lines_keep_extra_fields_and_never_break_on_odd_values() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "alert %s", ("watchdog",), None)
    record.labels = {"tenant": "t", "region": "eu"}
    record.call_id = "c-1"
    record.odd = object()  # not JSON: written as its text, never an exception in the logging call
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "alert watchdog"
    assert line["labels"] == {"tenant": "t", "region": "eu"} and line["call_id"] == "c-1"
    assert line["odd"].startswith("<object object")
    assert set(line) == {"ts", "level", "logger", "msg", "labels", "call_id", "odd"}
