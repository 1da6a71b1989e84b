"""Peer-connection event handling shared by the dump formats (rtcstats, webrtc-internals, W3C)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson

from collector.contract import MAX_CANDIDATE_ERRORS, MAX_CANDIDATES, MAX_SAMPLES, MAX_STATES, CandidateError, StateKind
from collector.errors import PayloadTooLarge
from collector.reports import candidates as cand
from collector.reports._values import count, integer, text
from collector.reports.budget import Budget
from collector.reports.legacy_stats import is_legacy_type, to_standard
from collector.reports.stats_series import SeriesEvents, Snapshot, state_change

# Event names (rtcstats, webrtc-internals new and old, W3C) -> state kind.
STATE_EVENTS: dict[str, StateKind] = {
    "oniceconnectionstatechange": "ice",
    "iceconnectionstatechange": "ice",
    "onconnectionstatechange": "connection",
    "connectionstatechange": "connection",
    "onicegatheringstatechange": "gathering",
    "icegatheringstatechange": "gathering",
    "onsignalingstatechange": "signaling",
    "signalingstatechange": "signaling",
    "ondtlsstatechange": "dtls",
    "dtlsstatechange": "dtls",
}

# Standard objects that make a peer connection read from its standard stats (legacy ones ignored).
_STANDARD_MARKERS = frozenset({"candidate-pair", "transport"})
# A real hour-long call polled every second has ~3600 snapshots of ~50-300 objects.
MAX_STATS_OBJECTS = 3_000_000
# Candidate events of one peer connection: a report holds MAX_CANDIDATES candidates, events and
# stats objects of the same candidate merge, so twice that many events is already a broken client.
MAX_CANDIDATE_EVENTS = 2 * MAX_CANDIDATES


# Old Chrome's webrtc-internals wrote state enum names ("ICEConnectionStateConnected",
# "SignalingStateHaveLocalOffer"; some tools "kICEConnectionStateConnected").
_OLD_STATE_NAME = re.compile(
    r"k?(?:ICEConnectionState|IceConnection|ICEGatheringState|IceGathering|SignalingState|PeerConnectionState)"
    r"([A-Z][A-Za-z]{1,30})"
)
_CAMEL_HUMP = re.compile(r"(?<!^)(?=[A-Z])")


def unquote_state(value: object) -> str | None:
    """State values, which Chrome writes JSON-encoded (``"\\"connected\\""``) in some dumps and as
    enum names (``ICEConnectionStateConnected`` -> ``connected``) in old webrtc-internals."""
    if not isinstance(value, str):
        return None
    s = value.strip()
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        s = s[1:-1]
    old = _OLD_STATE_NAME.fullmatch(s)
    if old:
        s = _CAMEL_HUMP.sub("-", old.group(1)).lower()
    return s or None


def ice_server_urls(servers: object) -> list[list[str]]:
    """``iceServers`` ([{urls: str | [str]}]) -> list of URL lists; credentials are dropped."""
    out: list[list[str]] = []
    if not isinstance(servers, list):
        return out
    for server in servers:
        if not isinstance(server, dict):
            continue
        urls = server.get("urls", server.get("url"))
        if isinstance(urls, str):
            out.append([urls])
        elif isinstance(urls, list):
            good = [u for u in urls if isinstance(u, str)]
            if good:
                out.append(good)
    return out


def transport_policy(value: object) -> Literal["all", "relay"] | None:
    if value == "relay":
        return "relay"
    if value == "all":
        return "all"
    return None


def candidate_error(at: datetime | None, value: dict[str, Any]) -> CandidateError | None:
    """An icecandidateerror payload in any of the spellings (errorCode / error_code)."""
    code = integer(value.get("errorCode", value.get("error_code")))
    if code is None:
        return None
    port = count(value.get("port"))
    return CandidateError(
        at=at,
        url=text(value.get("url")),
        error_code=code,
        error_text=text(value.get("errorText", value.get("error_text"))),
        address=text(value.get("address")),
        port=port if port is not None and port <= 65535 else None,
    )


def decode_json_text(value: object) -> object:
    """A value that may itself be a JSON document in a string (webrtc-internals); else as is."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


@dataclass
class PeerConnectionLog:
    """Everything collected for one peer connection of a dump."""

    events: SeriesEvents = field(default_factory=SeriesEvents)
    snapshots: list[Snapshot] = field(default_factory=list)
    ice_servers: list[list[str]] = field(default_factory=list)
    policy: Literal["all", "relay"] | None = None
    created_at: datetime | None = None
    closed_at: datetime | None = None
    legacy_stats: bool = False
    standard_stats: bool = False
    stats_objects: int = 0  # summed over snapshots: bounds the work a crafted dump can cause
    budget: Budget | None = None  # the upload's, shared by its peer connections: charged per event

    def configure(self, config: object) -> None:
        if isinstance(config, dict):
            self.ice_servers = ice_server_urls(config.get("iceServers")) or self.ice_servers
            self.policy = transport_policy(config.get("iceTransportPolicy")) or self.policy

    def add_candidate(self, at: datetime | None, value: object, is_remote: bool) -> None:
        value = decode_json_text(value)
        line = value.get("candidate") if isinstance(value, dict) else value
        if isinstance(line, str):
            if len(self.events.candidates) >= MAX_CANDIDATE_EVENTS:
                raise PayloadTooLarge(f"more than {MAX_CANDIDATE_EVENTS} candidate events in one peer connection")
            if self.budget is not None:
                self.budget.charge_event()
            c = cand.from_sdp(line, is_remote, at)
            if c is not None:
                self.events.candidates.append(c)

    def add_state(self, at: datetime, kind: StateKind, value: object) -> None:
        state = unquote_state(value)
        if state:
            if len(self.events.states) >= MAX_STATES:
                raise PayloadTooLarge(f"more than {MAX_STATES} state changes in one peer connection")
            if self.budget is not None:
                self.budget.charge_event()
            self.events.states.append(state_change(at, kind, state))

    def add_error(self, at: datetime | None, value: object) -> None:
        value = decode_json_text(value)
        if isinstance(value, dict):
            err = candidate_error(at, value)
            if err is not None:
                if len(self.events.errors) >= MAX_CANDIDATE_ERRORS:
                    raise PayloadTooLarge(f"more than {MAX_CANDIDATE_ERRORS} candidate errors in one peer connection")
                if self.budget is not None:
                    self.budget.charge_event()
                self.events.errors.append(err)

    def add_snapshot(self, at: datetime, stats: dict[str, dict[str, Any]]) -> None:
        """Each snapshot becomes one sample of the report: beyond MAX_SAMPLES it could not be stored."""
        if len(self.snapshots) >= MAX_SAMPLES:
            raise PayloadTooLarge(f"more than {MAX_SAMPLES} getStats snapshots in one peer connection")
        self.stats_objects += len(stats)
        if self.stats_objects > MAX_STATS_OBJECTS:
            raise PayloadTooLarge(f"more than {MAX_STATS_OBJECTS} stats objects in one peer connection")
        # once standard objects were seen the legacy ones are never read (stats_series): no more to learn
        for s in () if self.standard_stats else stats.values():
            typ = s.get("type")
            if isinstance(typ, str):
                if typ in _STANDARD_MARKERS:
                    self.standard_stats = True
                elif is_legacy_type(typ):
                    self.legacy_stats = True
        self.snapshots.append((at, stats))

    def stats_series(self) -> list[Snapshot]:
        """The snapshots to read: the standard objects when the peer connection has any (a dump
        holding both readings of the same connection), else the legacy goog* reports translated
        to standard objects (collector/reports/legacy_stats.py)."""
        if self.standard_stats or not self.legacy_stats:
            return self.snapshots
        return [(at, to_standard(stats)) for at, stats in self.snapshots]

    def apply(self, method: str, at: datetime | None, value: object) -> bool:
        """Apply a non-stats event; False when the method is not one icewatch uses."""
        kind = STATE_EVENTS.get(method)
        if kind is not None:
            if at is not None:
                self.add_state(at, kind, value)
        elif method in ("onicecandidate", "icecandidate", "onIceCandidate"):
            self.add_candidate(at, value, is_remote=False)
        elif method == "addIceCandidate":
            self.add_candidate(at, value, is_remote=True)
        elif method in ("onicecandidateerror", "icecandidateerror"):
            self.add_error(at, value)
        elif method in ("create", "setConfiguration"):
            self.configure(decode_json_text(value))
            if method == "create" and self.created_at is None:
                self.created_at = at
        elif method == "close":
            self.closed_at = at
        else:
            return False
        return True
