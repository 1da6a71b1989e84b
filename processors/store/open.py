"""Which store the settings name: a ClickHouse server (ICEWATCH_CLICKHOUSE__*) or the embedded chDB store."""

from __future__ import annotations

from collector.errors import ConfigError, StorageUnavailable
from collector.settings import Settings
from processors.store.migrate import migrate
from processors.store.sink import Sink


def open_store(settings: Settings, apply_migrations: bool = True) -> Sink:
    """The store, migrated; at start-up its errors say which setting to look at."""
    sink: Sink
    if settings.clickhouse is not None:
        from processors.store.native import NativeSink

        ch = settings.clickhouse
        sink = NativeSink(host=ch.host, port=ch.port, database=ch.database, user=ch.user,
                          password=ch.password.get_secret_value())
        if apply_migrations:
            try:
                migrate(sink)
            except StorageUnavailable as exc:
                sink.close()
                raise StorageUnavailable(
                    f"cannot reach ClickHouse at {ch.host}:{ch.port}: check ICEWATCH_CLICKHOUSE__HOST and "
                    f"ICEWATCH_CLICKHOUSE__PORT (native protocol, 9000 by default) and that the server is up "
                    f"({str(exc).split(';')[0]})", retry_after=exc.retry_after) from exc
        return sink
    from processors.store.chdb import ChdbSink

    path = settings.data_dir / "store"
    try:
        sink = ChdbSink(path)
    except OSError as exc:
        raise ConfigError(f"cannot create the embedded store in {path} ({exc.strerror}): set ICEWATCH_DATA_DIR "
                          "to a writable directory") from exc
    if apply_migrations:
        migrate(sink)
    return sink
