"""Real captures from ../shared/corpus (never copied into the repo) at the parse level.

What each file is known to contain is in ../shared/corpus/README.md and
../shared/research/sdk_reports.md section 3.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from collector.contract import CallReport, Candidate
from collector.errors import UnsupportedFormat
from collector.reports import parse_file

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
RTCSTATS = CORPUS / "rtcstats"
INTERNALS = CORPUS / "webrtc-internals"
REJECTED = {"empty-dump.txt"}

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not present at {CORPUS}")


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for d in (RTCSTATS, INTERNALS) if d.is_dir() for p in d.iterdir() if p.is_file())


def reports(name: str) -> dict[str, CallReport]:
    path = RTCSTATS / name if (RTCSTATS / name).exists() else INTERNALS / name
    if not path.exists():
        pytest.skip(f"{path} not in the corpus")
    return {r.peer_connection_id or r.call_id: r for r in parse_file(path)}


def selected_local(r: CallReport) -> Candidate:
    assert r.selected_pairs, f"{r.call_id}: no selected pair"
    by_id = {c.id: c for c in r.candidates}
    return by_id[r.selected_pairs[-1].local_candidate_id]


def selected_remote(r: CallReport) -> Candidate:
    by_id = {c.id: c for c in r.candidates}
    return by_id[r.selected_pairs[-1].remote_candidate_id]


def rtts(r: CallReport) -> list[float]:
    return [s.rtt_ms for s in r.samples if s.rtt_ms is not None]


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_every_file_parses_or_is_rejected_clearly(path: Path) -> None:
    if path.name in REJECTED:
        with pytest.raises(UnsupportedFormat):
            parse_file(path)
        return
    out = parse_file(path)
    assert out
    for r in out:
        CallReport.model_validate(r.model_dump())
        assert r.call_id == f"{path.stem}:{r.peer_connection_id}"
        assert r.samples, f"{r.call_id}: no samples"
        assert all(s.start.tzinfo is not None for s in r.samples)
        # Processors deduplicate samples by start (resent segments): starts must be distinct.
        assert len({s.start for s in r.samples}) == len(r.samples)
        assert all(s.end is not None and s.end > s.start for s in r.samples)
        assert all(x >= 0 for s in r.samples for x in (s.packets_sent, s.bytes_received) if x is not None)


def test_chrome_relay_tls_and_rtt() -> None:
    r = reports("chrome-relay")["PC_0"]
    local = selected_local(r)
    assert local.candidate_type == "relay"
    assert (local.relay_protocol, local.relay_protocol_source) == ("tls", "relayProtocol")
    assert local.url == "turns:meet-jit-si-turnrelay.jitsi.net:443?transport=tcp"
    assert selected_remote(r).candidate_type == "srflx"
    samples = rtts(r)
    assert len(samples) == 13
    assert statistics.median(samples) == pytest.approx(26.0, abs=1.0)
    assert {s.rtt_source for s in r.samples if s.rtt_ms is not None} == {"candidate-pair"}
    states = [(s.kind, s.state) for s in r.states]
    assert ("ice", "connected") in states and ("dtls", "connected") in states
    assert r.browser is not None and r.browser.startswith("Chrome 117")


def test_firefox_relay_without_transport_stats() -> None:
    r = reports("firefox-relay")["PC_0"]
    assert r.reported_pair_changes is None  # no transport stats at all
    assert all(s.ice_state is None and s.dtls_state is None for s in r.samples)
    local = selected_local(r)
    assert local.candidate_type == "relay" and local.relay_protocol == "tls"
    assert selected_remote(r).candidate_type == "srflx"
    assert {s.rtt_source for s in r.samples if s.rtt_ms is not None} == {"remote-inbound-rtp"}


def test_undefined_ice_candidate_is_a_dtls_stall() -> None:
    r = reports("undefined-ice-candidate")["PC_0"]
    ice = [s.state for s in r.states if s.kind == "ice"]
    dtls = [s.state for s in r.states if s.kind == "dtls"]
    connection = [s.state for s in r.states if s.kind == "connection"]
    assert "connected" in ice
    assert dtls and "connected" not in dtls
    assert "connected" not in connection and connection[-1] == "failed"
    assert {s.dtls_state for s in r.samples} == {"connecting"}


def test_chrome96_legacy_stats_read() -> None:
    """Labelled chrome_standard, holds only legacy goog* reports: PC_0 is the P2P connection."""
    out = reports("chrome96-standard-stats-p2p-add-transceiver")
    pc0 = out["PC_0"]
    assert (selected_local(pc0).candidate_type, selected_remote(pc0).candidate_type) == ("host", "host")
    # The active pair's remote end was peer-reflexive first, then the signalled host candidate.
    assert [by.remote_candidate_id for by in pc0.selected_pairs] == ["Cand-Lm4KUDea", "Cand-EW/b18xa"]
    assert [s.rtt_ms for s in pc0.samples] == [0.0, 0.0, 0.0]
    assert {s.rtt_source for s in pc0.samples} == {"candidate-pair"}
    # googComponent carries a DTLS cipher from the first poll: DTLS connected.
    assert {s.dtls_state for s in pc0.samples} == {"connected"}
    assert [s.bytes_sent for s in pc0.samples] == [1440, 1440993 - 1440, 3337446 - 1440993]
    relays = {c.id: c for c in pc0.candidates if c.candidate_type == "relay" and not c.is_remote}
    # Legacy relay candidates carry no URL and transport "udp": the priority says UDP / TLS.
    assert {k: (c.relay_protocol, c.relay_protocol_source) for k, c in relays.items()} == {
        "Cand-yxSj4yzQ": ("udp", "priority"),
        "Cand-UUFiRZyf": ("tls", "priority"),
    }
    pc1 = out["PC_1"]  # to the SFU: googRtt 48, 38, 35 ms
    assert [s.rtt_ms for s in pc1.samples] == [48.0, 38.0, 35.0]
    assert pc0.notes == [] and pc1.notes == []


def test_empty_internals_dump_rejected() -> None:
    with pytest.raises(UnsupportedFormat, match="no peer connections"):
        reports("empty-dump.txt")


def test_chrome147_internals_pair_change() -> None:
    out = reports("chrome147-candidate-pair-change.txt")
    assert len(out) == 2
    changed = [r for r in out.values() if len(r.selected_pairs) == 2]
    assert len(changed) == 1
    r = changed[0]
    assert r.reported_pair_changes == 2
    assert r.selected_pairs[0].pair_id != r.selected_pairs[1].pair_id
    assert r.selected_pairs[0].at < r.selected_pairs[1].at
    assert selected_local(r).candidate_type == "host" and selected_remote(r).candidate_type == "host"
    assert [s.state for s in r.states if s.kind == "dtls"][:2] == ["connected", "closed"]
    assert [e.error_code for e in r.candidate_errors] == [701]


def test_chrome_standard_pc_failed() -> None:
    out = reports("chrome-standard-pc-failed")
    pc0 = out["PC_0"]
    assert statistics.median(rtts(pc0)) == pytest.approx(190.0, abs=5.0)
    assert (selected_local(pc0).candidate_type, selected_remote(pc0).candidate_type) == ("prflx", "srflx")
    assert [s.state for s in pc0.states if s.kind == "dtls"] == ["connecting", "connected"]
    for name in ("PC_1", "PC_2"):
        pc = out[name]
        assert pc.selected_pairs == []
        assert [s.state for s in pc.states if s.kind == "dtls"] == ["new"]
        assert [s.state for s in pc.states if s.kind == "connection"][-1] == "failed"


def test_reconnect_sequence() -> None:
    pc0 = reports("chrome-standard-pc-reconnect")["PC_0"]
    connection = [s.state for s in pc0.states if s.kind == "connection"]
    assert connection == ["connecting", "connected", "disconnected", "connected", "disconnected", "connected", "failed"]
