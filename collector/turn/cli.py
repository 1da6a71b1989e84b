"""``turn`` commands: parse a coturn log file offline and show its events or its sessions.

The user-name hash key comes from the collector settings (``ICEWATCH_HASH_KEY``); without one a
random key is used for this run only (hashes then differ between runs).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from collector.contract import TurnEvent
from collector.errors import ConfigError
from collector.turn.coturn import CoturnParser
from collector.turn.sessions import reconstruct_sessions


def _hash_key() -> bytes:
    from collector.cli_base import current_settings
    from collector.turn.config import user_hash_key

    try:
        return user_hash_key(current_settings())
    except ConfigError:
        click.echo("note: ICEWATCH_HASH_KEY is not set; user hashes use a random key for this run", err=True)
        return secrets.token_bytes(32)


def iter_file_events(path: Path, parser: CoturnParser) -> Iterator[TurnEvent]:
    """Events of a file, with the same event ids the tailer gives (file identity + offset)."""
    st = os.stat(path)
    source = f"{st.st_dev}:{st.st_ino}:0"
    offset = 0
    with open(path, "rb") as fh:
        for raw in fh:
            res = parser.parse(raw.decode("utf-8", errors="replace"), source=source, offset=offset)
            offset += len(raw)
            if isinstance(res, TurnEvent):
                yield res


def _summary(parser: CoturnParser) -> None:
    st = parser.stats
    click.echo(f"{st.lines} lines, {st.events} events, {st.unknown} not understood", err=True)
    for sample in st.unknown_samples:
        click.echo(f"  not understood: {sample[:200]}", err=True)


@click.group("turn")
def turn() -> None:
    """TURN server logs (coturn): parse a log file offline. The live tailer is part of the
    collector (ICEWATCH_TURN_LOGS, see `icewatch collector --help`).

    Example: icewatch turn sessions --server-id turn-eu-1 /var/log/turnserver.log
    """


@turn.command("parse")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
@click.option("--server-id", default="local", show_default=True, help="Server id to stamp on events.")
def parse_cmd(file: Path, as_json: bool, server_id: str) -> None:
    """Print the events parsed from FILE.

    Example: icewatch turn parse --json --server-id turn-eu-1 /var/log/turnserver.log
    """
    parser = CoturnParser(server_id, _hash_key())
    out = sys.stdout
    for ev in iter_file_events(file, parser):
        if as_json:
            out.write(ev.model_dump_json(exclude_none=True) + "\n")
        else:
            when = ev.at.isoformat() if ev.at else (f"+{ev.uptime_s}s" if ev.uptime_s is not None else "-")
            parts = [when, ev.kind, ev.session_id or "-"]
            if ev.method:
                parts.append(ev.method)
            if ev.error_code is not None:
                parts.append(str(ev.error_code))
            if ev.reason:
                parts.append(ev.reason)
            out.write(" ".join(parts) + "\n")
    _summary(parser)


@turn.command("sessions")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per session.")
@click.option("--server-id", default="local", show_default=True, help="Server id to stamp on sessions.")
def sessions_cmd(file: Path, as_json: bool, server_id: str) -> None:
    """Print one summary per TURN session found in FILE.

    Example: icewatch turn sessions --json /var/log/turnserver.log
    """
    parser = CoturnParser(server_id, _hash_key())
    for s in reconstruct_sessions(iter_file_events(file, parser)):
        d = s.to_dict()
        if as_json:
            click.echo(json.dumps(d, separators=(",", ":")))
        else:
            codes = ",".join(map(str, s.error_codes)) or "-"
            click.echo(
                f"{s.session_id} {s.transport or '?'} allocated={int(s.allocated)} errors={codes} "
                f"challenges={s.auth_challenges} rejected={s.auth_rejected} denied={s.denied_peers} "
                f"permissions={len(s.permissions)} channels={len(s.channels)} "
                f"client_bytes={s.client_bytes} peer_bytes={s.peer_bytes} close={s.close_reason or '-'}"
            )
    _summary(parser)


if __name__ == "__main__":
    turn()
