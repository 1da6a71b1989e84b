"""wire.decode_call_report (envelope + call report validated by pydantic straight from the bytes) takes
exactly what the two-step decode (orjson -> Envelope -> CallReport) takes, with equal values; whatever it
refuses falls back to the two steps, so a hostile message is dead-lettered with the same reason and
tenant as before; and the consumer stores the same rows and dead letters either way."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from collector import wire
from collector.contract import CallReport, Envelope, Model, Sample, utcnow
from collector.reports import UploadContext, parse_upload
from collector.wire import decode_call_report, decode_envelope, encode
from processors.facts.call_facts import FactsEnv
from processors.rows.builder import RowBuilder
from processors.service.consumer import Batch, process_record, write_batch
from processors.store.chdb import ChdbSink
from tests.bench.workload import w3c_report
from tests.kafka_record import Rec


def two_steps(value: bytes) -> tuple[Envelope, Model] | None:
    try:
        env = decode_envelope(value)
        return env, env.decode()
    except Exception:  # every refusal counts as one here: which one is the consumer test's concern
        return None


def report(i: int = 0, intervals: int = 5) -> CallReport:
    return parse_upload(w3c_report(f"call-{i}", intervals, seed=i), UploadContext())[0]


def message(i: int = 0, intervals: int = 5, tenant: str = "acme") -> bytes:
    return encode(report(i, intervals), source_host="h", tenant=tenant)


def envelope_head(value: bytes) -> dict[str, Any]:
    return {k: v for k, v in orjson.loads(value).items() if k != "payload"}


def with_payload(payload: bytes, head: bytes = b'{"schema":"call_report","version":1,'
                 b'"produced_at":"2026-11-26T06:00:00Z","source_host":"h","tenant":"acme",') -> bytes:
    return head + b'"payload":' + payload + b"}"


def sample_payload(extra: bytes) -> bytes:
    return (b'{"call_id":"c1","report_id":"r1","source_format":"w3c","samples":[{"start":"2026-11-26T06:00:00Z"'
            + extra + b"}]}")


BUILDER = RowBuilder(FactsEnv.default())


def same_values(one: Model, two: Model) -> None:
    """Equal field by field, and the processor derives the same rows from both."""
    assert isinstance(one, CallReport) and all(isinstance(s, Sample) for s in one.samples)
    assert one.model_dump() == two.model_dump()
    at = utcnow()
    rows_one, rows_two = BUILDER.rows(one, "t", at), BUILDER.rows(two, "t", at)
    assert {t: list(r) for t, r in rows_one.items()} == {t: list(r) for t, r in rows_two.items()}


def test_the_one_pass_validates_into_the_contracts_own_call_report() -> None:
    """No copy of a contract model in wire.py: the payload is contract.CallReport (its samples, times and
    limits), so a constraint cannot differ between the one pass and the two steps."""
    assert wire._CallReportEnvelope.model_fields["payload"].annotation is CallReport
    assert set(wire._CallReportEnvelope.model_fields) == set(Envelope.model_fields)
    one = decode_call_report(message())
    assert one is not None and type(one[1]) is CallReport and all(type(s) is Sample for s in one[1].samples)


def test_valid_reports_take_the_one_pass_path_with_the_two_step_values() -> None:
    for i in range(20):
        value = message(i, intervals=1 + 17 * i)
        one = decode_call_report(value)
        two = two_steps(value)
        assert one is not None and two is not None
        same_values(one[1], two[1])
        assert (one[0].tenant, one[0].produced_at, one[0].source_host, one[0].version) == (
            two[0].tenant, two[0].produced_at, two[0].source_host, two[0].version)


HOSTILE: dict[str, bytes] = {
    "NaN": with_payload(sample_payload(b',"rtt_ms":NaN')),
    "Infinity": with_payload(sample_payload(b',"jitter_ms":Infinity')),
    "-Infinity": with_payload(sample_payload(b',"rtt_ms":-Infinity')),
    "1e400": with_payload(sample_payload(b',"rtt_ms":1e400')),
    "int beyond 64 bits": with_payload(sample_payload(b',"bytes_sent":123456789012345678901234567890')),
    "int beyond UInt63": with_payload(sample_payload(b',"bytes_sent":9223372036854775808')),
    "negative counter": with_payload(sample_payload(b',"packets_received":-1')),
    "lone surrogate": with_payload(sample_payload(b',"ice_state":"\\ud800"')),
    "invalid UTF-8": with_payload(sample_payload(b',"ice_state":"\xff\xfe"')),
    "control character": with_payload(sample_payload(b',"ice_state":"a\\u0000"')),
    "trailing bytes": with_payload(sample_payload(b"")) + b" {}",
    "BOM": b"\xef\xbb\xbf" + with_payload(sample_payload(b"")),
    "time before 2000": with_payload(sample_payload(b',"end":"1999-12-31T23:59:59Z"')),
    "time after 2099": with_payload(sample_payload(b',"end":"2100-01-01T00:00:00Z"')),
    "naive time": with_payload(sample_payload(b',"end":"2026-11-26T06:00:01"')),
    "naive start": with_payload(b'{"call_id":"c1","report_id":"r1","source_format":"w3c","samples":'
                                b'[{"start":"2026-11-26T06:00:00"}]}'),
    "zone puts it before 2000": with_payload(sample_payload(b',"end":"2000-01-01T00:30:00+01:00"')),
    "zone puts it in 2000": with_payload(sample_payload(b',"end":"1999-12-31T23:30:00-01:00"')),
    "zone puts it in 2099": with_payload(sample_payload(b',"end":"2100-01-01T00:30:00+01:00"')),
    "zone puts it after 2099": with_payload(sample_payload(b',"end":"2099-12-31T23:30:00-01:00"')),
    "first instant of 2000": with_payload(sample_payload(b',"end":"2000-01-01T00:00:00Z"')),
    "last second of 1999 (unix)": with_payload(sample_payload(b',"end":946684799')),
    "year 1": with_payload(sample_payload(b',"end":"0001-01-01T00:00:00+14:00"')),
    "year 9999": with_payload(sample_payload(b',"end":"9999-12-31T23:59:59-14:00"')),
    "leap second": with_payload(sample_payload(b',"end":"2026-06-30T23:59:60Z"')),
    "unix time": with_payload(sample_payload(b',"end":1764136801')),
    "numbers as text": with_payload(sample_payload(b',"packets_lost":"3","rtt_ms":"4.5"')),
    "float for int": with_payload(sample_payload(b',"packets_lost":3.0')),
    "fraction for int": with_payload(sample_payload(b',"packets_lost":3.5')),
    "bool for int": with_payload(sample_payload(b',"packets_lost":true')),
    "unknown sample key": with_payload(sample_payload(b',"evil":1')),
    "duplicate sample key": with_payload(sample_payload(b',"rtt_ms":1,"rtt_ms":2')),
    "duplicate tenant": with_payload(sample_payload(b""), b'{"schema":"call_report","version":1,"produced_at":'
                                     b'"2026-11-26T06:00:00Z","source_host":"h","tenant":"acme","tenant":"other",'),
    # the consumer test stores its event, whose time is produced_at: an hour ago, since the store
    # keeps TURN events 30 days and drops older rows on insert
    "schema repeated as another": with_payload(
        b'{"events":[{"event_id":"e","server_id":"s","process_key":"p","kind":"other","raw":"x"}]}',
        b'{"schema":"call_report","schema":"turn_event_batch","version":1,"produced_at":"'
        + f"{utcnow() - timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}".encode() + b'",'
        b'"source_host":"h","tenant":"acme",'),
    "bad tenant": with_payload(sample_payload(b""), b'{"schema":"call_report","version":1,"produced_at":'
                               b'"2026-11-26T06:00:00Z","source_host":"h","tenant":"../etc",'),
    "unknown envelope key": with_payload(sample_payload(b""), b'{"schema":"call_report","version":1,"produced_at":'
                                         b'"2026-11-26T06:00:00Z","source_host":"h","evil":1,'),
    "no produced_at": with_payload(sample_payload(b""), b'{"schema":"call_report","version":1,"source_host":"h",'),
    "payload null": with_payload(b"null"),
    "payload a list": with_payload(b"[]"),
    "payload a turn batch": with_payload(
        b'{"events":[{"event_id":"e","server_id":"s","process_key":"p","kind":"other","raw":"x"}]}'),
    "deep nesting": with_payload(b'{"call_id":' + b"[" * 5000 + b"]" * 5000 + b"}"),
    "too many samples": with_payload(b'{"call_id":"c1","report_id":"r1","source_format":"w3c","samples":['
                                     + b",".join([b'{"start":"2026-11-26T06:00:00Z"}'] * 20_001) + b"]}"),
    "escaped key": with_payload(sample_payload(b',"rtt\\u005fms":5')),
    "blank call id": with_payload(b'{"call_id":" ","report_id":"r1","source_format":"w3c"}'),
    "truncated": with_payload(sample_payload(b""))[:-7],
    "empty": b"",
    "accepted minimal": with_payload(sample_payload(b',"rtt_ms":0,"packets_lost":-5')),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_one_pass_takes_only_what_the_two_steps_take_with_the_same_values(name: str) -> None:
    value = HOSTILE[name]
    one, two = decode_call_report(value), two_steps(value)
    if one is not None:
        assert two is not None, f"{name}: the one pass accepted what the two steps refuse"
        same_values(one[1], two[1])
        assert (one[0].tenant, one[0].produced_at) == (two[0].tenant, two[0].produced_at)
    elif two is not None and value.startswith(b'{"schema":"call_report",'):
        # not a hole (the consumer falls back to the two steps), but the one pass should not miss these
        assert name not in {"accepted minimal", "unix time", "numbers as text", "float for int",
                            "duplicate sample key", "escaped key", "zone puts it in 2000", "zone puts it in 2099",
                            "first instant of 2000", "naive time", "naive start"}, name


def test_other_schemas_and_other_key_orders_are_left_to_the_two_steps() -> None:
    value = message()
    reordered = orjson.dumps({"tenant": "acme", **orjson.loads(value)})
    assert decode_call_report(reordered) is None
    assert two_steps(reordered) is not None
    turn = with_payload(b'{"events":[{"event_id":"e","server_id":"s","process_key":"p","kind":"other","raw":"x"}]}',
                        b'{"schema":"turn_event_batch","version":1,"produced_at":"2026-11-26T06:00:00Z",'
                        b'"source_host":"h","tenant":"acme",')
    assert decode_call_report(turn) is None
    assert two_steps(turn) is not None


def test_consumer_stores_good_reports_and_dead_letters_hostile_ones_with_the_two_step_reason(store: ChdbSink) -> None:
    values = [message(1, 30), HOSTILE["NaN"], HOSTILE["time after 2099"], HOSTILE["bad tenant"],
              HOSTILE["schema repeated as another"], message(2, 40, tenant="other"), HOSTILE["deep nesting"]]
    batch = Batch()
    for offset, value in enumerate(values):
        process_record(Rec("calls", 0, offset, value), BUILDER.rows, batch)
    write_batch(batch, store, None)

    calls = store.query("SELECT tenant, call_id FROM calls ORDER BY call_id")
    assert [(c["tenant"], c["call_id"]) for c in calls] == [("acme", "call-1"), ("other", "call-2")]
    samples = store.query("SELECT call_id, count() AS n FROM call_samples GROUP BY call_id ORDER BY call_id")
    assert [(s["call_id"], s["n"]) for s in samples] == [("call-1", 30), ("call-2", 40)]
    dead = store.query("SELECT tenant, origin, reason FROM dead_letters ORDER BY origin")
    assert [d["origin"] for d in dead] == ["calls/0/1", "calls/0/2", "calls/0/3", "calls/0/6"]
    # a repeated schema key: the last one counts (orjson's rule), so this one is read as a TURN batch
    assert store.query("SELECT tenant, event_id FROM turn_events") == [{"tenant": "acme", "event_id": "e"}]
    reasons = {d["origin"]: (d["tenant"], d["reason"]) for d in dead}
    # the reasons and tenants of the two-step decode: the JSON error of orjson, the payload's field with
    # the envelope's tenant, the envelope's field without one
    assert reasons["calls/0/1"][0] == "default" and reasons["calls/0/1"][1].startswith("JSONDecodeError")
    assert reasons["calls/0/2"][0] == "acme" and "samples.0.end" in reasons["calls/0/2"][1]
    assert reasons["calls/0/3"][0] == "default" and "tenant" in reasons["calls/0/3"][1]
    assert reasons["calls/0/6"][0] == "default" and reasons["calls/0/6"][1].startswith("JSONDecodeError")  # too deep
