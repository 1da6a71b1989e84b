"""Where the TURN collector's parser gets its settings: the user-name hash key comes from the
collector settings (``ICEWATCH_HASH_KEY``); a missing key stops the start with a clear message."""

from __future__ import annotations

from collector.errors import ConfigError
from collector.settings import Settings
from collector.turn.coturn import CoturnParser


def user_hash_key(settings: Settings) -> bytes:
    key = settings.hash_key.get_secret_value()
    if not key:
        raise ConfigError(
            "ICEWATCH_HASH_KEY is empty: TURN user names are stored only as a keyed hash; "
            "set it to a long random secret (the same on every collector, so hashes match)"
        )
    return key.encode()


def coturn_parser(server_id: str, settings: Settings, region: str | None = None) -> CoturnParser:
    """A parser for one TURN server's log stream, keyed from the settings."""
    return CoturnParser(server_id, user_hash_key(settings), region=region)
