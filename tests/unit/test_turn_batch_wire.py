"""The compact ``turn_event_batch`` message: what the tailer's lines become on Kafka, and what a
processor makes of it (the same ``turn_events`` rows as one message per event), including
messages that are cut at the size limit and hostile batches that must be refused whole."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from collector.contract import MAX_TURN_BATCH, TURN_EVENT_COLUMNS, TurnEvent, TurnEventBatch, message_key
from collector.errors import PayloadTooLarge
from collector.turn.batch_wire import encode_turn_batches, encode_turn_rows
from collector.turn.coturn import CoturnParser
from collector.wire import decode
from processors.rows.turn import rows_for_turn_batch, rows_for_turn_event

LOG = [
    "0: (1): INFO: Coturn Version Coturn-4.6.2 'Gorst'\n",
    "2: (17): INFO: IPv4. tcp or tls connected to: 198.51.100.7:50400\n",
    "2: (17): INFO: session 001000000000000001: realm <r.example> user <>: incoming packet message processed,"
    " error 401: Unauthorized\n",
    "2: (17): INFO: IPv4. Local relay addr: 203.0.113.10:50001\n",
    "2: (17): INFO: session 001000000000000001: new, realm=<r.example>, username=<alice>, lifetime=600\n",
    "3: (17): INFO: session 001000000000000001: peer usage: realm=<r.example>, username=<alice>, rp=5, rb=600,"
    " sp=4, sb=500\n",
    "2026-11-23T10:00:05+0000(17): INFO: session 001000000000000001: closed (2nd stage), user <alice> realm"
    " <r.example> origin <>, local 203.0.113.10:3478, remote 198.51.100.7:50400, reason: TCP connection closed"
    " by client (callback)\n",
    "4: (17): INFO: some message with ünïcode and \"quotes\" \\ and a tab\t\n",
]


def events(lines: list[str] = LOG, server_id: str = "turn-1") -> list[TurnEvent]:
    parser = CoturnParser(server_id, b"key")
    out: list[TurnEvent] = []
    off = 0
    for ln in lines:
        ev = parser.parse(ln, source="8:9:0", offset=off)
        off += len(ln.encode())
        assert isinstance(ev, TurnEvent)
        out.append(ev)
    return out


def test_round_trip_gives_equal_events_and_the_same_rows() -> None:
    evs = events()
    at = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    [(key, value, n)] = encode_turn_batches(evs, source_host="h1", tenant="acme", max_bytes=1_000_000)
    assert (key, n) == ("turn-1", len(evs))
    env, batch = decode(value)
    assert (env.schema_name, env.version, env.tenant, env.source_host) == ("turn_event_batch", 1, "acme", "h1")
    assert isinstance(batch, TurnEventBatch)
    assert batch.events == evs  # every field, the datetime of the timestamped line included
    assert batch.events[-2].at == datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)
    one_by_one = [r for ev in evs for r in rows_for_turn_event(ev, "acme", at)["turn_events"]]
    assert rows_for_turn_batch(batch, "acme", at) == {"turn_events": one_by_one}
    # the compact form names each column once
    payload = orjson.loads(value)["payload"]
    assert payload["columns"] == list(TURN_EVENT_COLUMNS) and len(payload["rows"]) == len(evs)
    assert message_key(batch) == "turn-1"


def test_messages_are_cut_at_the_size_limit_and_keep_every_event_in_order() -> None:
    lines = [f"{i}: : session 001000000000000002: usage: realm=<r>, username=<u{i}>, rp={i}, rb=1, sp=1, sb=1\n"
             for i in range(1, 3001)]
    evs = events(lines)
    limit = 40_000
    msgs = encode_turn_batches(evs, source_host="h", tenant="default", max_bytes=limit)
    assert len(msgs) > 5
    assert all(len(value) <= limit for _, value, _ in msgs)
    back = [ev for _, value, _ in msgs for ev in decode(value)[1].events]  # type: ignore[attr-defined]
    assert back == evs
    assert sum(n for _, _, n in msgs) == len(evs)


def test_row_count_per_message_is_bounded() -> None:
    evs = events([f"{i}: : general line {i}\n" for i in range(1, 26)])
    msgs = encode_turn_batches(evs, source_host="h", tenant="default", max_bytes=1_000_000, max_rows=10)
    assert [n for _, _, n in msgs] == [10, 10, 5]


def test_each_server_gets_its_own_messages_keyed_by_server() -> None:
    a, b = events(server_id="turn-a"), events(server_id="turn-b")
    mixed = [ev for pair in zip(a, b, strict=True) for ev in pair]
    msgs = encode_turn_batches(mixed, source_host="h", tenant="default", max_bytes=1_000_000)
    assert [(k, n) for k, _, n in msgs] == [("turn-a", len(a)), ("turn-b", len(b))]
    assert decode(msgs[1][1])[1].events == b  # type: ignore[attr-defined]


def test_an_event_that_cannot_fit_alone_is_refused() -> None:
    evs = events(["1: : " + "x" * 30_000 + "\n"])
    with pytest.raises(PayloadTooLarge, match="limit is 20000"):
        encode_turn_batches(evs, source_host="h", tenant="default", max_bytes=20_000)


def _batch(columns: Any, rows: Any) -> dict[str, Any]:
    return {"columns": columns, "rows": rows}


def _good_row() -> list[Any]:
    ev = events()[1]
    return [ev.__dict__[c] for c in TURN_EVENT_COLUMNS]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_batch(list(TURN_EVENT_COLUMNS), [_good_row()[:-1]]), "row 0 is not a list of"),
        (_batch(list(TURN_EVENT_COLUMNS), [_good_row(), "x"]), "row 1 is not a list of"),
        (_batch([*TURN_EVENT_COLUMNS, "secret"], [[*_good_row(), 1]]), "distinct TurnEvent fields"),
        (_batch(["event_id", "event_id"], [["a", "b"]]), "distinct TurnEvent fields"),
        (_batch([1, 2], [[1, 2]]), "list of field names"),
        (_batch(list(TURN_EVENT_COLUMNS), {"0": _good_row()}), "at most"),
        (_batch(list(TURN_EVENT_COLUMNS), [[]] * (MAX_TURN_BATCH + 1)), "at most"),
        ({**_batch(list(TURN_EVENT_COLUMNS), [_good_row()]), "events": []}, "exactly the keys"),
        (_batch(list(TURN_EVENT_COLUMNS), []), "at least 1"),
        (_batch(["event_id", "server_id", "process_key", "kind", "raw"], [["i", "s", "p", "no-such-kind", "r"]]),
         "kind"),
        (_batch(["event_id", "server_id", "process_key", "kind"], [["i", "s", "p", "other"]]), "raw"),
        (_batch(["event_id", "server_id", "process_key", "kind", "raw", "rx_bytes"],
                [["i", "s", "p", "usage", "r", "many"]]), "rx_bytes"),
    ],
)
def test_hostile_batches_are_refused_whole(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TurnEventBatch.model_validate(payload)


def test_missing_columns_are_optional_fields_left_out() -> None:
    batch = TurnEventBatch.model_validate(
        _batch(["raw", "kind", "event_id", "process_key", "server_id"], [["a line", "other", "e1", "p@0", "s"]])
    )
    assert batch.events == [TurnEvent(event_id="e1", server_id="s", process_key="p@0", kind="other", raw="a line")]


def test_parsed_events_copy_like_validated_ones_without_touching_each_other() -> None:
    a, b = events()[:2]
    c = a.model_copy(update={"region": "eu"})
    assert (c.region, a.region, b.region) == ("eu", None, None)
    assert c.model_fields_set is not a.model_fields_set and "region" in c.model_fields_set
    assert a.model_fields_set == b.model_fields_set == set(TURN_EVENT_COLUMNS)
    assert copy.deepcopy(b) == b == TurnEvent.model_validate(b.model_dump())


def test_rows_from_parse_row_make_the_same_messages_as_events() -> None:
    at = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    parser = CoturnParser("turn-1", b"key")
    rows = []
    off = 0
    for ln in LOG:
        row = parser.parse_row(ln, source="8:9:0", offset=off)
        off += len(ln.encode())
        assert isinstance(row, tuple)
        rows.append(row)
    by_rows = encode_turn_rows(rows, source_host="h", tenant="t", max_bytes=2_000, produced_at=at)
    by_events = encode_turn_batches(events(), source_host="h", tenant="t", max_bytes=2_000, produced_at=at)
    assert by_rows == by_events and len(by_rows) > 1
