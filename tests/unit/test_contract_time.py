"""contract.Time (checked in pydantic-core, not in a Python function) takes exactly the times the
Python check took (naive read as UTC, then 2000 <= t < 2100), from JSON and from Python values, returns
the same instants in the same zones, and refuses the rest with one error at the field: pydantic's own
for what is not a time, "time is outside 2000-2099" for a time outside the era."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from collector.contract import ERA_END, ERA_START, Sample, Time
from collector.errors import InvalidInput
from collector.reports import UploadContext, parse_upload
from tests.bench.workload import telnyx_segment

PARSE = TypeAdapter(datetime)  # what pydantic reads as a datetime: the first half of the old check
TIME = TypeAdapter(Time)
OPTIONAL = TypeAdapter(Time | None)


def python_check(value: Any, *, json: bool) -> datetime | str:
    """The check as contract.Time made it before, in Python: the time, or the first error's message."""
    try:
        dt = PARSE.validate_json(orjson.dumps(value)) if json else PARSE.validate_python(value)
    except ValidationError as exc:
        return exc.errors()[0]["msg"]
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt if ERA_START <= dt < ERA_END else "Value error, time is outside 2000-2099"


def time_check(value: Any, *, json: bool) -> datetime | str:
    """contract.Time's verdict: the time, or the message of its error (from Python values the only one;
    from JSON the one of the path Python values take, after the one-step check's)."""
    try:
        return TIME.validate_json(orjson.dumps(value)) if json else TIME.validate_python(value)
    except ValidationError as exc:
        locs = [e["loc"] for e in exc.errors()]
        assert locs == ([("zoned",), ("time",)] if json else [()]), locs
        return exc.errors()[-1]["msg"]


def same(one: datetime | str, two: datetime | str) -> None:
    assert type(one) is type(two), (one, two)
    if isinstance(one, datetime) and isinstance(two, datetime):
        assert (one, one.utcoffset(), one.isoformat()) == (two, two.utcoffset(), two.isoformat())
    else:
        assert one == two


PLUS_1, MINUS_1 = timezone(timedelta(hours=1)), timezone(timedelta(hours=-1))
EDGES: list[tuple[Any, bool]] = [  # (value, taken)
    ("1999-12-31T23:59:59.999999Z", False),
    ("2000-01-01T00:00:00Z", True),
    ("2099-12-31T23:59:59.999999Z", True),
    ("2100-01-01T00:00:00Z", False),
    ("2100-01-01", False),  # a date alone is midnight, naive: UTC
    ("2099-12-31", True),
    ("1999-12-31T23:59:59.999999", False),  # naive: read as UTC
    ("2000-01-01T00:00:00", True),
    ("2099-12-31T23:59:59.999999", True),
    ("2100-01-01T00:00:00", False),
    ("2000-01-01T00:30:00+01:00", False),  # 1999-12-31T23:30Z
    ("1999-12-31T23:30:00-01:00", True),  # 2000-01-01T00:30Z
    ("2100-01-01T00:30:00+01:00", True),  # 2099-12-31T23:30Z
    ("2099-12-31T23:30:00-01:00", False),  # 2100-01-01T00:30Z
    ("0001-01-01T00:00:00+14:00", False),
    ("9999-12-31T23:59:59-14:00", False),
    (946_684_799, False),  # unix seconds: 1999-12-31T23:59:59Z
    (946_684_800, True),
    (4_102_444_799, True),
    (4_102_444_800, False),
    (946_684_800_000, True),  # milliseconds, as pydantic reads large numbers
    (946_684_799.5, False),
    ("946684800", True),
    ("2026-06-30T23:59:60Z", False),  # not a time: pydantic's error
    ("yesterday", False),
    ("", False),
    (None, False),
    (True, False),
    ([], False),
    ("2026-11-26T06:00:00.1234567Z", True),  # pydantic truncates beyond microseconds
]


@pytest.mark.parametrize(("value", "taken"), EDGES, ids=[repr(v) for v, _ in EDGES])
@pytest.mark.parametrize("json", [True, False], ids=["json", "python"])
def test_edges_are_taken_and_refused_as_the_python_check_did(value: Any, taken: bool, json: bool) -> None:
    got, want = time_check(value, json=json), python_check(value, json=json)
    same(got, want)
    assert isinstance(got, datetime) is taken
    if isinstance(got, datetime):
        assert got.utcoffset() is not None


PY_EDGES: list[datetime] = [
    datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC),
    datetime(2099, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999_999), datetime(2000, 1, 1), datetime(2100, 1, 1),
    datetime(2099, 12, 31, 23, 59, 59, 999_999),
    datetime(2000, 1, 1, 0, 30, tzinfo=PLUS_1), datetime(1999, 12, 31, 23, 30, tzinfo=MINUS_1),
    datetime(2100, 1, 1, 0, 30, tzinfo=PLUS_1), datetime(2099, 12, 31, 23, 30, tzinfo=MINUS_1),
    datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC), datetime.min, datetime.max,
]


@pytest.mark.parametrize("value", PY_EDGES, ids=[v.isoformat() for v in PY_EDGES])
def test_python_datetimes_keep_their_zone_and_naive_ones_become_utc(value: datetime) -> None:
    got = time_check(value, json=False)
    same(got, python_check(value, json=False))
    if isinstance(got, datetime):
        assert got.tzinfo is (UTC if value.tzinfo is None else value.tzinfo)


def test_a_date_is_read_as_its_midnight_as_before() -> None:
    for d in (date(2000, 1, 1), date(1999, 12, 31), date(2100, 1, 1)):
        same(time_check(d, json=False), python_check(d, json=False))


@settings(max_examples=300, deadline=None)
@given(when=st.datetimes(min_value=datetime(1998, 1, 1), max_value=datetime(2102, 1, 1)),
       offset_minutes=st.one_of(st.none(), st.integers(-23 * 60 - 59, 23 * 60 + 59)),
       json=st.booleans())
def test_any_time_near_the_era_is_judged_as_the_python_check_did(
        when: datetime, offset_minutes: int | None, json: bool) -> None:
    value = when if offset_minutes is None else when.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    text = value.isoformat()
    same(time_check(text, json=json), python_check(text, json=json))
    if not json:
        same(time_check(value, json=False), python_check(value, json=False))


def test_none_stays_none_where_a_time_is_optional() -> None:
    assert OPTIONAL.validate_json(b"null") is None
    assert OPTIONAL.validate_python("2026-11-26T06:00:00") == datetime(2026, 11, 26, 6, tzinfo=UTC)


def test_an_error_names_the_field_once_with_the_parsed_time_as_its_input() -> None:
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate({"start": "2026-11-26T06:00:00Z", "end": "2100-01-01T01:30:00+01:00"})
    (error,) = caught.value.errors(include_url=False)
    assert {k: error[k] for k in ("type", "loc", "msg", "ctx")} == {
        "type": "value_error", "loc": ("end",), "msg": "Value error, time is outside 2000-2099",
        "ctx": {"error": "time is outside 2000-2099"}}
    assert error["input"] == datetime(2100, 1, 1, 0, 30, tzinfo=UTC)  # the parsed time: an instant
    # from JSON (the one-pass decode, which drops its errors) the one-step check's error comes first
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate_json(b'{"start":"2026-11-26T06:00:00Z","end":"2100-01-01T01:30:00+01:00"}')
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [
        (("end", "zoned"), "less_than"), (("end", "time"), "value_error")]
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate({"start": "not a time"})
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(("start",), "datetime_from_date_parsing")]


def test_times_serialize_as_before() -> None:
    s = Sample.model_validate_json(b'{"start":"2026-11-26T06:00:00+01:00","end":"2026-11-26T06:00:01"}')
    assert orjson.loads(s.model_dump_json(include={"start", "end"})) == {
        "start": "2026-11-26T06:00:00+01:00", "end": "2026-11-26T06:00:01Z"}
    assert s.model_dump(mode="json", include={"start", "end"}) == {
        "start": "2026-11-26T06:00:00+01:00", "end": "2026-11-26T06:00:01Z"}
    assert s.model_dump()["start"] == datetime(2026, 11, 26, 5, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["2100-01-01T00:00:00.000Z", "1999-12-31T23:59:59.999Z"])
def test_an_upload_with_an_interval_outside_the_era_is_refused_naming_the_field(bad: str) -> None:
    body = orjson.loads(telnyx_segment("call-era", intervals=3))
    body["stats"][1]["intervalEndUtc"] = bad
    with pytest.raises(InvalidInput) as caught:
        parse_upload(orjson.dumps(body), UploadContext(format_hint="telnyx"))
    assert caught.value.message == "Value error, time is outside 2000-2099"
    assert caught.value.path == "end"  # the Telnyx reader builds each Sample itself: its field, as before
