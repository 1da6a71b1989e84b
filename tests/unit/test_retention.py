"""collector/retention.py is the one home of the collector's time window: its retentions must be
the TTLs the migrations give the tables each input is written to (a TTL changed by a later
migration changes what the collector may accept), and every window leaves a day to query."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.retention import (
    CALL_REPORT_MAX_AGE,
    CALL_SAMPLES_KEPT,
    MAX_AHEAD,
    PROBE_RESULT_MAX_AGE,
    PROBES_KEPT,
    TURN_EVENT_MAX_AGE,
    TURN_EVENTS_KEPT,
    outside_window,
)

MIGRATIONS = Path(__file__).resolve().parents[2] / "processors" / "store" / "migrations"
_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)|ALTER TABLE (\w+)")
_TTL = re.compile(r"TTL [^;]*?INTERVAL (\d+) DAY")


def ttl_days() -> dict[str, int]:
    """Each table's TTL in days, as the migrations leave it (later files override earlier ones)."""
    out: dict[str, int] = {}
    for sql in sorted(MIGRATIONS.glob("*.sql")):
        for statement in sql.read_text().split(";\n"):
            t, ttl = _TABLE.search(statement), _TTL.search(statement)
            if t is not None and ttl is not None:
                out[t.group(1) or t.group(2)] = int(ttl.group(1))
    return out


def test_retentions_are_the_migrations_ttls() -> None:
    days = ttl_days()
    assert days["call_samples"] == CALL_SAMPLES_KEPT.days
    # the shortest of a call report's tables: its other rows are kept at least as long
    assert min(days[t] for t in ("calls", "call_samples", "candidates", "candidate_errors")) == CALL_SAMPLES_KEPT.days
    assert days["turn_events"] == TURN_EVENTS_KEPT.days
    assert min(days["probes"], days["probe_minute"]) == PROBES_KEPT.days


def test_each_window_ends_a_day_before_its_rows_expire() -> None:
    now = datetime.now(UTC)
    second = timedelta(seconds=1)
    for max_age, kept, table in ((CALL_REPORT_MAX_AGE, CALL_SAMPLES_KEPT, "call_samples"),
                                 (TURN_EVENT_MAX_AGE, TURN_EVENTS_KEPT, "turn_events"),
                                 (PROBE_RESULT_MAX_AGE, PROBES_KEPT, "probes")):
        assert kept - max_age == timedelta(days=1)
        assert outside_window(now - max_age + second, now, max_age, table) is None
        assert outside_window(now + MAX_AHEAD - second, now, max_age, table) is None
        old = outside_window(now - max_age - second, now, max_age, table)
        assert old is not None and f"{table} keeps {kept.days} days" in old
        assert (now - max_age - second).isoformat() in old
        ahead = outside_window(now + MAX_AHEAD + second, now, max_age, table)
        assert ahead is not None and (now + MAX_AHEAD + second).isoformat() in ahead
