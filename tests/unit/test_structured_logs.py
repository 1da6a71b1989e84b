"""Log lines are JSON objects that carry the ids of what they are about: a message the store refuses
is logged with its call id or event id as fields of their own (JsonFormatter keeps ``extra=``)."""

from __future__ import annotations

import json
import logging
import socket
from datetime import UTC, datetime, timedelta

import pytest
from clickhouse_driver import Client
from clickhouse_driver.errors import NetworkError

from collector.cli_base import JsonFormatter, setup_logging
from processors.service.consumer import Batch, write_batch
from processors.store.chdb import ChdbSink
from tests.kafka_record import Rec

# an hour ago: the store keeps TURN events 30 days and calls 400, and drops older rows on insert
NOW = f"{datetime.now(UTC) - timedelta(hours=1):%Y-%m-%d %H:%M:%S}.000"


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


def test_a_refused_clickhouse_connection_logs_one_line_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    setup_logging("warning")
    try:
        with pytest.raises(NetworkError):
            Client(host="127.0.0.1", port=port, connect_timeout=1).execute("SELECT 1")
    finally:
        logging.basicConfig(force=True)  # leave the root logger as pytest's own
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    failed = [line for line in lines if line["logger"] == "clickhouse_driver.connection"]
    assert failed, lines
    assert failed[0]["msg"].startswith(f"Failed to connect to 127.0.0.1:{port}: ")
    assert "refused" in failed[0]["msg"].lower()
    assert "exc" not in failed[0] and all("Traceback" not in line["msg"] for line in failed)
