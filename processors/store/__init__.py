"""The only code that talks to ClickHouse: sinks (chDB, native), migrations, named queries."""
