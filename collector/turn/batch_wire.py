"""TURN events -> compact ``turn_event_batch`` Kafka messages (collector/contract.py).

One message carries many events as rows: the column names once, then one JSON array per event
in the order of ``TURN_EVENT_COLUMNS`` (``null`` for a missing value). Rows are encoded one by
one so a message is cut before it would pass the broker's size limit; events of different
servers go into different messages (the key is the server id). Pure: no Kafka, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

import orjson

from collector.contract import MAX_TURN_BATCH, SCHEMA_VERSION, TURN_EVENT_COLUMNS, TurnEvent, utcnow
from collector.errors import PayloadTooLarge

SCHEMA = "turn_event_batch"
_row_of = itemgetter(*TURN_EVENT_COLUMNS)
_SERVER = TURN_EVENT_COLUMNS.index("server_id")
_COLUMNS_JSON = orjson.dumps(list(TURN_EVENT_COLUMNS))
_TAIL = b"]}}"
_Row = tuple[Any, ...]


def _head(source_host: str, tenant: str, produced_at: datetime) -> bytes:
    envelope = orjson.dumps({"schema": SCHEMA, "version": SCHEMA_VERSION[SCHEMA],
                             "produced_at": produced_at.isoformat(), "source_host": source_host, "tenant": tenant})
    return envelope[:-1] + b',"payload":{"columns":' + _COLUMNS_JSON + b',"rows":['


def encode_turn_batches(
    events: Sequence[TurnEvent],
    *,
    source_host: str,
    tenant: str,
    max_bytes: int,
    produced_at: datetime | None = None,
    max_rows: int = MAX_TURN_BATCH,
) -> list[tuple[str, bytes, int]]:
    """``(key, message, events in it)`` for every message, each at most ``max_bytes`` long.
    Raises PayloadTooLarge when one event alone does not fit."""
    return encode_turn_rows([_row_of(ev.__dict__) for ev in events], source_host=source_host, tenant=tenant,
                            max_bytes=max_bytes, produced_at=produced_at, max_rows=max_rows)


def encode_turn_rows(
    rows: Sequence[_Row],
    *,
    source_host: str,
    tenant: str,
    max_bytes: int,
    produced_at: datetime | None = None,
    max_rows: int = MAX_TURN_BATCH,
) -> list[tuple[str, bytes, int]]:
    """``encode_turn_batches`` for events already made rows (``CoturnParser.parse_row``: the values
    in the order of ``TURN_EVENT_COLUMNS``)."""
    head = _head(source_host, tenant, produced_at or utcnow())
    by_server: dict[str, list[_Row]] = {}
    for row in rows:
        server_id = row[_SERVER]
        same = by_server.get(server_id)
        if same is None:
            same = by_server[server_id] = []
        same.append(row)
    out: list[tuple[str, bytes, int]] = []
    for server_id, same in by_server.items():
        for i in range(0, len(same), max_rows):
            _fit(server_id, same[i : i + max_rows], head, max_bytes, out)
    return out


def _fit(key: str, rows: list[_Row], head: bytes, max_bytes: int, out: list[tuple[str, bytes, int]]) -> None:
    """Encode ``rows`` in one go (one orjson call for the whole list: far cheaper than one per
    row); when the message is too long, cut the rows into as many equal parts as its size asks
    for and encode each again."""
    body = orjson.dumps(rows)  # "[[...],[...]]": its brackets are the rows list's own
    size = len(head) - 1 + len(body) + len(_TAIL) - 1
    if size <= max_bytes:
        out.append((key, head + body[1:-1] + _TAIL, len(rows)))
        return
    if len(rows) == 1:
        raise PayloadTooLarge(f"one turn_event is {size} bytes in its message; the limit is {max_bytes}")
    parts = min(len(rows), -(-size * 11 // (max_bytes * 10)))  # ceil(size / max_bytes) with 10 % slack
    step = -(-len(rows) // max(parts, 2))
    for i in range(0, len(rows), step):
        _fit(key, rows[i : i + step], head, max_bytes, out)
