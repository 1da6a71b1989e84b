"""The typed batch every row builder returns and every writer takes: table name -> rows."""

from __future__ import annotations

from typing import Any

Rows = dict[str, list[dict[str, Any]]]


def merge_rows(into: Rows, more: Rows) -> None:
    """Append ``more`` to ``into``, table by table (one insert per table per batch)."""
    for table, rows in more.items():
        if rows:
            into.setdefault(table, []).extend(rows)
