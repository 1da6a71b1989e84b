"""Candidate-type mix: the selected pair, the path class, gathered types, the TURN server used.

Rules:
- The *selected pair* of a report is its last ``selected_pairs`` entry by time (the pair media
  ended on). ``pair_changes`` counts switches to a different pair after the first selection:
  the larger of the switches seen in the ``selected_pairs`` timeline and the reported
  ``selectedCandidatePairChanges`` counter minus one (W3C counts the first selection too).
- The *path class* is decided by the LOCAL candidate of the selected pair only: a local relay
  gives ``relay-<relay protocol>`` (the leg from the client to its TURN server, the one that
  adds latency and that firewalls block); otherwise the local candidate type
  (``host``/``srflx``/``prflx``). A remote relay does not make the path ``relay-*``.
- The *relay protocol* of a local relay candidate: the collector's resolved ``relay_protocol``;
  else the project's one inference order (collector/ice_url.py: URL, then
  ``priority >> 24``), so a report the collector left unresolved is read the same way; else the
  candidate ``protocol`` (source ``protocol``). Unknown relay protocols count as ``relay-udp``.
- The *TURN server* used: the local relay candidate's URL through the inventory, else its
  relayed address.
- *Configured* servers: ``ice_servers`` URLs; when the report carries no configuration, the
  URLs seen on local candidates and candidate errors stand in for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from collector.contract import CallReport, Candidate, SelectedPair
from collector.ice_url import infer_relay_protocol, parse_ice_url
from collector.inventory import Inventory, Server

CANDIDATE_TYPE_ORDER = ("host", "srflx", "prflx", "relay")


@dataclass(frozen=True)
class CandidateMix:
    local: Candidate | None  # the selected pair's local candidate (None: no pair, or unknown id)
    remote: Candidate | None
    local_candidate_type: str
    remote_candidate_type: str
    local_protocol: str
    relay_protocol: str
    relay_protocol_source: str
    path_class: str  # one of processors.facts.PATH_CLASSES, "" when no pair was selected
    turn_url: str
    turn_server_id: str
    turn_region: str
    gathered_types: tuple[str, ...]  # local candidate types, in CANDIDATE_TYPE_ORDER
    gathered_relay_protocols: tuple[str, ...]  # relay protocols of gathered local relays
    configured_stun: bool
    configured_turn: bool
    configured_turn_udp: bool  # a UDP TURN URL (turn: without transport=tcp) was configured
    configured_turn_server_id: str  # the inventory server of the first configured TURN URL it knows
    configured_turn_region: str
    pair_changes: int

    @property
    def is_relay(self) -> bool:
        return self.path_class.startswith("relay-")


def local_candidates(report: CallReport) -> list[Candidate]:
    """Local candidates, one per id (a duplicated segment repeats them)."""
    seen: dict[str, Candidate] = {}
    for c in report.candidates:
        if not c.is_remote:
            seen.setdefault(c.id, c)
    return list(seen.values())


def ordered_pairs(report: CallReport) -> list[SelectedPair]:
    """The selected-pair timeline in time order, exact duplicates dropped."""
    unique = {(p.at, p.local_candidate_id, p.remote_candidate_id): p for p in report.selected_pairs}
    return [unique[k] for k in sorted(unique, key=lambda k: k[0])]


def count_pair_switches(pairs: Iterable[SelectedPair]) -> int:
    switches = 0
    last: tuple[str, str] | None = None
    for p in pairs:
        ids = (p.local_candidate_id, p.remote_candidate_id)
        if last is not None and ids != last:
            switches += 1
        last = ids
    return switches


def resolve_relay_protocol(c: Candidate) -> tuple[str, str]:
    """(relay protocol, how it was resolved) for a local relay candidate; ("", "") if unknown."""
    if c.relay_protocol:
        return c.relay_protocol, c.relay_protocol_source or "relayProtocol"
    protocol, source = infer_relay_protocol(None, c.url, c.priority)
    if protocol is not None and source is not None:
        return protocol, source
    if c.protocol:
        return c.protocol, "protocol"
    return "", ""


def _find(cands: Iterable[Candidate], cid: str, remote: bool) -> Candidate | None:
    fallback: Candidate | None = None
    for c in cands:
        if c.id == cid:
            if c.is_remote == remote:
                return c
            fallback = fallback or c
    return fallback


def configured_urls(report: CallReport) -> list[str]:
    """Configured ICE server URLs; without a configuration, the URLs seen on candidates/errors."""
    urls = [u for s in report.ice_servers for u in s.urls]
    if urls:
        return urls
    seen = [c.url for c in report.candidates if c.url and not c.is_remote]
    seen += [e.url for e in report.candidate_errors if e.url]
    return list(dict.fromkeys(seen))


def derive_candidate_mix(report: CallReport, inventory: Inventory) -> CandidateMix:
    pairs = ordered_pairs(report)
    locals_ = local_candidates(report)
    local = remote = None
    if pairs:
        last = pairs[-1]
        local = _find(report.candidates, last.local_candidate_id, remote=False)
        remote = _find(report.candidates, last.remote_candidate_id, remote=True)

    relay_protocol = relay_source = path_class = turn_url = ""
    server: Server | None = None
    if local is not None:
        if local.candidate_type == "relay":
            relay_protocol, relay_source = resolve_relay_protocol(local)
            path_class = f"relay-{relay_protocol or 'udp'}"
            turn_url = local.url or ""
            server = inventory.server_by_url(local.url) or inventory.server_by_address(local.address)
        else:
            path_class = local.candidate_type

    gathered = {c.candidate_type for c in locals_}
    relay_protocols = {resolve_relay_protocol(c)[0] for c in locals_ if c.candidate_type == "relay"}

    urls = [u for u in map(parse_ice_url, configured_urls(report)) if u is not None]
    turn_urls = [u for u in urls if u.is_turn]
    configured_server = next(
        (s for s in (inventory.server_by_hostname(u.host) for u in turn_urls) if s is not None), None
    )

    reported = (report.reported_pair_changes or 0) - 1
    return CandidateMix(
        local=local,
        remote=remote,
        local_candidate_type=local.candidate_type if local else "",
        remote_candidate_type=remote.candidate_type if remote else "",
        local_protocol=(local.protocol or "") if local else "",
        relay_protocol=relay_protocol,
        relay_protocol_source=relay_source,
        path_class=path_class,
        turn_url=turn_url,
        turn_server_id=server.id if server else "",
        turn_region=server.region if server else "",
        gathered_types=tuple(t for t in CANDIDATE_TYPE_ORDER if t in gathered),
        gathered_relay_protocols=tuple(p for p in ("udp", "tcp", "tls") if p in relay_protocols),
        configured_stun=any(u.is_stun for u in urls),
        configured_turn=bool(turn_urls),
        configured_turn_udp=any(u.scheme == "turn" and u.transport in (None, "udp") for u in turn_urls),
        configured_turn_server_id=configured_server.id if configured_server else "",
        configured_turn_region=configured_server.region if configured_server else "",
        pair_changes=max(reported, count_pair_switches(pairs), 0),
    )
