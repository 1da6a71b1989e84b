"""What every package's commands share: JSON logs, the settings loaded once at the root and handed
down, and errors turned into exit messages."""

from __future__ import annotations

import json
import logging
from typing import NoReturn

import click

from collector.errors import ConfigError, IcewatchError
from collector.settings import Settings, load_settings

# What every LogRecord has (and uvicorn's coloured copy of the message); anything else came in
# ``extra=`` (call_id, event_id, labels ...).
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, msg, the ``extra=`` fields of the call (e.g.
    ``call_id``, ``event_id``) as fields of their own, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name,
                                  "msg": record.getMessage()}
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class OneLineConnectionFailure(logging.Filter):
    """clickhouse-driver logs every failed connect attempt with its whole traceback (~30 lines a try
    while ClickHouse is down); the reason fits on the line: keep it, drop the traceback. Our own
    code logs and counts the StorageUnavailable that follows."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {record.exc_info[1]}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    driver = logging.getLogger("clickhouse_driver.connection")
    if not any(isinstance(f, OneLineConnectionFailure) for f in driver.filters):
        driver.addFilter(OneLineConnectionFailure())


class SettingsHolder:
    """Lives in the root click context; loads the settings on first use (so ``--help`` never needs them)."""

    def __init__(self) -> None:
        self._settings: Settings | None = None

    def get(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings()
            except ConfigError as exc:
                fail(exc)
        return self._settings


def current_settings() -> Settings:
    """The settings of this invocation, loaded once at the root and shared by every command."""
    ctx = click.get_current_context()
    return ctx.find_root().ensure_object(SettingsHolder).get()


def fail(exc: IcewatchError) -> NoReturn:
    """Stop the command with the error's message (it says what to do next)."""
    raise click.ClickException(str(exc)) from exc


def local_url(settings: Settings) -> str:
    """The address of this machine's `icewatch run` / `icewatch collector` (ICEWATCH_HOST/PORT)."""
    return f"http://{settings.host}:{settings.port}"
