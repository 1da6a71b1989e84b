"""Which store the settings name: a ClickHouse server (ICEWATCH_CLICKHOUSE__*) or the embedded chDB store."""

from __future__ import annotations

from collector.settings import Settings
from processors.store.migrate import migrate
from processors.store.sink import Sink


def open_store(settings: Settings, apply_migrations: bool = True) -> Sink:
    sink: Sink
    if settings.clickhouse is not None:
        from processors.store.native import NativeSink

        ch = settings.clickhouse
        sink = NativeSink(host=ch.host, port=ch.port, database=ch.database, user=ch.user,
                          password=ch.password.get_secret_value())
    else:
        from processors.store.chdb import ChdbSink

        sink = ChdbSink(settings.data_dir / "store")
    if apply_migrations:
        migrate(sink)
    return sink
