"""The typed batch every row builder returns and every writer takes: table name -> rows.

A table's rows are a list of dicts, or ``ColumnRows``: the same rows held as columns (what a call's
samples are built as: a list per column instead of a dict per sample, and chDB takes the columns as
they are). Both are sequences of dict rows to whatever reads them row by row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload


class ColumnRows(Sequence[dict[str, Any]]):
    """Rows of one table as columns: column name -> values, every column as long as the others."""

    __slots__ = ("columns",)

    def __init__(self, columns: dict[str, list[Any]]) -> None:
        if len({len(values) for values in columns.values()}) > 1:
            raise ValueError("columns of different lengths")
        self.columns = columns

    def column_lists(self) -> Mapping[str, list[Any]]:
        """The columns themselves (not copies: read, don't change)."""
        return self.columns

    def __len__(self) -> int:
        for values in self.columns.values():
            return len(values)
        return 0

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError("row index out of range")
        return {name: values[index] for name, values in self.columns.items()}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        names = list(self.columns)
        for values in zip(*self.columns.values(), strict=True):
            yield dict(zip(names, values, strict=True))

    def __repr__(self) -> str:
        return f"ColumnRows({len(self)} rows: {', '.join(self.columns)})"

    def copy(self) -> ColumnRows:
        return ColumnRows({name: list(values) for name, values in self.columns.items()})

    def takes(self, rows: Sequence[Mapping[str, Any]]) -> bool:
        """Whether ``rows`` have exactly these columns (so ``extend`` keeps every row as it is)."""
        names = self.columns.keys()
        if isinstance(rows, ColumnRows):
            return rows.columns.keys() == names
        return all(row.keys() == names for row in rows)

    def extend(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not self.takes(rows):
            raise ValueError("rows with other columns than " + ", ".join(self.columns))
        if isinstance(rows, ColumnRows):
            for name, values in self.columns.items():
                values.extend(rows.columns[name])
            return
        for name, values in self.columns.items():
            values.extend(row[name] for row in rows)


TableRows = list[dict[str, Any]] | ColumnRows
Rows = dict[str, TableRows]
MessageRows = Mapping[str, Sequence[dict[str, Any]]]  # one message's rows, to read: Rows or plain dict lists


def merge_rows(into: Rows, more: MessageRows) -> None:
    """Append ``more`` to ``into``, table by table (one insert per table per batch). Columns stay
    columns while every message brings the same ones; otherwise the table becomes a list of dicts."""
    for table, rows in more.items():
        if not rows:
            continue
        have = into.get(table)
        if have is None:
            into[table] = rows.copy() if isinstance(rows, ColumnRows) else list(rows)
        elif isinstance(have, ColumnRows):
            if have.takes(rows):
                have.extend(rows)
            else:
                into[table] = [*have, *rows]
        else:
            have.extend(rows)
