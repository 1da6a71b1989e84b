"""A store whose schema stops at an older migration, for tests of what a later migration does to
data written before it."""

from __future__ import annotations

import shutil
from pathlib import Path

from processors.store.chdb import ChdbSink
from processors.store.migrate import MIGRATIONS_DIR, migrate


def store_at_version(tmp_path: Path, last: int) -> ChdbSink:
    """An embedded store in ``tmp_path`` migrated through version ``last`` only (the caller closes it)."""
    older = tmp_path / f"migrations-{last:04d}"
    older.mkdir()
    for sql in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(sql.name[:4]) <= last:
            shutil.copy(sql, older / sql.name)
    sink = ChdbSink(tmp_path / "store")
    migrate(sink, older)
    return sink
