"""Reports of one call and segment converge, whatever their order (the ReplacingMergeTree alone
keeps the *last* insert, so a poorer report arriving late would replace a fuller one):

- a report carrying less (``richness``, processors/rows/calls.py) than the stored one of the same
  call and segment is skipped: the fuller one stays;
- a report in another format than the stored one of the same call and segment is refused (a dead
  letter): a call id belongs to the format it was first stored from;
- otherwise (the first, a fuller one, or an equal one: a retry) it is written.

Reads ``calls FINAL`` once per batch, for the batch's call ids. Within a batch, reports are taken in
order, so a replay from offset 0 decides the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from processors.store.sink import Sink

Key = tuple[str, str, int]  # tenant, call id, segment
MessageRows = Mapping[str, Sequence[Mapping[str, Any]]]  # one message's rows, table by table


@dataclass
class Decision:
    """Indexes into the messages given to ``admit``."""

    write: list[int] = field(default_factory=list)
    # A fuller report whose ingested_at is not later than the stored row's (collectors' clocks
    # differ) gets a later one, so the ReplacingMergeTree keeps it: message index -> new ingested_at.
    restamp: dict[int, datetime] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)  # poorer than what is stored: nothing to write
    refused: list[tuple[int, str]] = field(default_factory=list)  # another format: dead letter, with why


def _time(value: Any) -> datetime:
    t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _stored(sink: Sink, keys: set[Key]) -> dict[Key, tuple[str, int, datetime]]:
    out: dict[Key, tuple[str, int, datetime]] = {}
    by_tenant: dict[str, set[str]] = {}
    for tenant, call_id, _ in keys:
        by_tenant.setdefault(tenant, set()).add(call_id)
    for tenant, ids in by_tenant.items():
        rows = sink.query(
            "SELECT call_id, segment, source_format, richness, ingested_at FROM calls FINAL "
            "WHERE tenant = {tenant:String} AND has({ids:Array(String)}, call_id)",
            {"tenant": tenant, "ids": sorted(ids)},
        )
        for r in rows:
            out[(tenant, str(r["call_id"]), int(r["segment"]))] = (
                str(r["source_format"]), int(r["richness"]), _time(r["ingested_at"]))
    return out


def _call_row(rows: MessageRows) -> Mapping[str, Any] | None:
    calls = rows.get("calls")
    return calls[0] if calls else None


def restamped(rows: MessageRows, at: datetime) -> dict[str, list[dict[str, Any]]]:
    """A message's rows with ``ingested_at`` set to ``at`` (see ``Decision.restamp``)."""
    return {table: [{**r, "ingested_at": at} if "ingested_at" in r else dict(r) for r in table_rows]
            for table, table_rows in rows.items()}


def admit(sink: Sink, messages: Sequence[MessageRows]) -> Decision:
    """Which messages' rows to write, in order."""
    keys = {(str(c["tenant"]), str(c["call_id"]), int(c["segment"] or 0))
            for rows in messages if (c := _call_row(rows)) is not None}
    current = _stored(sink, keys) if keys else {}
    out = Decision()
    for i, rows in enumerate(messages):
        c = _call_row(rows)
        if c is None:
            out.write.append(i)
            continue
        key = (str(c["tenant"]), str(c["call_id"]), int(c["segment"] or 0))
        fmt, richness, ingested = str(c["source_format"]), int(c["richness"]), _time(c["ingested_at"])
        before = current.get(key)
        if before is not None and before[0] != fmt:
            out.refused.append((i, f"call {key[1]!r} segment {key[2]} is stored from {before[0]}; "
                                     f"a {fmt} report of the same call is refused (send it under its own call id)"))
            continue
        if before is not None and richness < before[1]:
            out.skipped.append(i)
            continue
        if before is not None and richness > before[1] and ingested <= before[2]:
            ingested = before[2] + timedelta(milliseconds=1)
            out.restamp[i] = ingested
        current[key] = (fmt, richness, ingested)
        out.write.append(i)
    return out
