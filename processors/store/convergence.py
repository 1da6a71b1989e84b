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
from typing import Any

from processors.store.sink import Sink

Key = tuple[str, str, int]  # tenant, call id, segment
MessageRows = Mapping[str, Sequence[Mapping[str, Any]]]  # one message's rows, table by table


@dataclass
class Decision:
    """Indexes into the messages given to ``admit``."""

    write: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # poorer than what is stored: nothing to write
    refused: list[tuple[int, str]] = field(default_factory=list)  # another format: dead letter, with why


def _stored(sink: Sink, keys: set[Key]) -> dict[Key, tuple[str, int]]:
    out: dict[Key, tuple[str, int]] = {}
    by_tenant: dict[str, set[str]] = {}
    for tenant, call_id, _ in keys:
        by_tenant.setdefault(tenant, set()).add(call_id)
    for tenant, ids in by_tenant.items():
        rows = sink.query(
            "SELECT call_id, segment, source_format, richness FROM calls FINAL "
            "WHERE tenant = {tenant:String} AND has({ids:Array(String)}, call_id)",
            {"tenant": tenant, "ids": sorted(ids)},
        )
        for r in rows:
            out[(tenant, str(r["call_id"]), int(r["segment"]))] = (str(r["source_format"]), int(r["richness"]))
    return out


def _call_row(rows: MessageRows) -> Mapping[str, Any] | None:
    calls = rows.get("calls")
    return calls[0] if calls else None


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
        fmt, richness = str(c["source_format"]), int(c["richness"])
        before = current.get(key)
        if before is not None and before[0] != fmt:
            out.refused.append((i, f"call {key[1]!r} segment {key[2]} is stored from {before[0]}; "
                                     f"a {fmt} report of the same call is refused (send it under its own call id)"))
            continue
        if before is not None and richness < before[1]:
            out.skipped.append(i)
            continue
        current[key] = (fmt, richness)
        out.write.append(i)
    return out
