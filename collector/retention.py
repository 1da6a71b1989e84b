"""How long the store keeps the rows each input becomes, and so which times the collector accepts.

ClickHouse and chDB drop a row already past its table's TTL when it is inserted: an input older
than its table keeps would be acknowledged and then vanish without a trace. The collector refuses
it visibly instead: a 422 naming the field over HTTP (call reports, probe results), a dead letter
saying why from the TURN log tailer and the syslog receiver. A time far ahead is a broken clock
(or a unit mistake) and is refused the same way.

The retentions below are the TTLs of processors/store/migrations (tests/unit/test_retention.py
checks them against those files). Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta

# The shortest retention among the tables each input is written to.
CALL_SAMPLES_KEPT = timedelta(days=30)  # call_samples (0001_calls.sql): a call report's shortest
TURN_EVENTS_KEPT = timedelta(days=30)  # turn_events (0002_turn.sql)
PROBES_KEPT = timedelta(days=90)  # probes and probe_minute (0003_probes.sql)

# An accepted input stays queryable at least this long before its rows expire.
QUERYABLE_FOR = timedelta(days=1)

CALL_REPORT_MAX_AGE = CALL_SAMPLES_KEPT - QUERYABLE_FOR  # 29 days
TURN_EVENT_MAX_AGE = TURN_EVENTS_KEPT - QUERYABLE_FOR  # 29 days
PROBE_RESULT_MAX_AGE = PROBES_KEPT - QUERYABLE_FOR  # 89 days
# Clocks run a little ahead; more than this is a broken clock or a unit mistake.
MAX_AHEAD = timedelta(days=1)


def outside_window(at: datetime, now: datetime, max_age: timedelta, table: str) -> str | None:
    """Why ``at`` (timezone-aware) cannot be stored, or None when it lies within the window:
    from ``max_age`` before ``now`` to ``MAX_AHEAD`` after it. ``table`` names where it would go."""
    if at < now - max_age:
        return (f"{at.isoformat()} is more than {max_age.days} days before {now.isoformat()}: {table} "
                f"keeps {(max_age + QUERYABLE_FOR).days} days, it would expire before it could be queried")
    if at > now + MAX_AHEAD:
        return (f"{at.isoformat()} is more than {MAX_AHEAD.days} day after {now.isoformat()}: "
                "a clock far ahead (or a unit mistake)")
    return None
