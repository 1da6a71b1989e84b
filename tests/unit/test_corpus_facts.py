"""Real captures (../shared/corpus, read in place) through parse_file + derive_call_facts.

The expected facts are the ones the corpus README and research/sdk_reports.md state for each file.
Skipped when the corpus is not beside the project.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.errors import UnsupportedFormat
from collector.reports import parse_file
from processors.facts.call_facts import FactsEnv, derive_call_facts
from processors.facts.model import LABELS, PATH_CLASSES, CallFacts

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")


def facts_of(relative: str) -> dict[str, CallFacts]:
    path = CORPUS / relative
    if not path.is_file():
        pytest.skip(f"{relative} is not in the corpus")
    env = FactsEnv.default()
    return {r.peer_connection_id or r.call_id: derive_call_facts(r, env) for r in parse_file(path)}


def test_chrome_relay_over_tls_with_excellent_rtt() -> None:
    (f,) = facts_of("rtcstats/chrome-relay").values()
    assert f.path_class == "relay-tls"
    assert (f.local_candidate_type, f.remote_candidate_type) == ("relay", "srflx")
    assert f.turn_url.startswith("turns:")
    assert f.rtt_source == "candidate-pair"
    assert f.rtt_median_ms == pytest.approx(26, abs=1.5)
    assert f.rtt_max_ms == pytest.approx(425, abs=5)
    assert f.rtt_band == "excellent"
    assert f.ice_connected and f.dtls_connected and not f.dtls_stall


def test_firefox_relay_over_tls_without_transport_stats() -> None:
    (f,) = facts_of("rtcstats/firefox-relay").values()
    assert f.path_class == "relay-tls"
    assert f.rtt_source == "remote-inbound-rtp"  # Firefox has no candidate-pair RTT
    assert f.dtls_connected and not f.dtls_stall


def test_undefined_ice_candidate_is_a_dtls_stall() -> None:
    (f,) = facts_of("rtcstats/undefined-ice-candidate").values()
    assert f.ice_connected
    assert f.dtls_stall and not f.dtls_connected
    assert f.dtls_stall_ms is not None and f.dtls_stall_ms > 5000
    assert f.diagnosis == "dtls_stall"


def test_chrome_standard_pc_failed() -> None:
    facts = facts_of("rtcstats/chrome-standard-pc-failed")
    ok = facts["PC_0"]
    assert ok.rtt_median_ms == pytest.approx(190, abs=5) and ok.rtt_band == "acceptable"
    assert (ok.local_candidate_type, ok.remote_candidate_type) == ("prflx", "srflx")
    assert ok.dtls_connected and not ok.ice_failed
    failed = [f for pc, f in facts.items() if pc != "PC_0"]
    assert len(failed) == 2
    for f in failed:
        assert f.ice_failed and f.never_connected and not f.ice_connected
        assert f.path_class == "" and not f.dtls_stall
        assert "ice_failed" in f.labels


def test_chrome_standard_pc_reconnect_counts_recoveries() -> None:
    f = facts_of("rtcstats/chrome-standard-pc-reconnect")["PC_0"]
    assert f.reconnects >= 1 and f.ice_connected


def test_chrome147_internals_pair_change() -> None:
    facts = facts_of("webrtc-internals/chrome147-candidate-pair-change.txt")
    assert max(f.pair_changes for f in facts.values()) >= 1
    assert all(f.path_class == "host" for f in facts.values())


def test_chrome96_legacy_stats_p2p_host() -> None:
    """Labelled standard, holds only legacy goog* stats: read, host/host, RTT 0 ms on every sample."""
    facts = facts_of("rtcstats/chrome96-standard-stats-p2p-add-transceiver")
    p2p = facts["PC_0"]
    assert (p2p.local_candidate_type, p2p.remote_candidate_type, p2p.path_class) == ("host", "host", "host")
    assert (p2p.rtt_samples, p2p.rtt_median_ms, p2p.rtt_max_ms, p2p.rtt_band) == (3, 0.0, 0.0, "excellent")
    assert p2p.rtt_source == "candidate-pair"
    assert p2p.ice_connected and p2p.dtls_connected and not p2p.dtls_stall
    sfu = facts["PC_1"]  # the same client to the SFU: googRtt 48, 38, 35 ms
    assert sfu.path_class == "host" and sfu.rtt_median_ms == pytest.approx(38.0)


def test_every_capture_is_read_with_path_class_and_rtt_band() -> None:
    """No capture is rejected but the empty dump; every peer connection with a selected pair has a
    path class, every one with RTT samples an RTT band, and one that connected without a selected
    pair says why in a reader note."""
    files = sorted(p for p in CORPUS.glob("*/*") if p.parent.name in ("rtcstats", "webrtc-internals"))
    seen = 0
    for path in files:
        if path.name == "empty-dump.txt":
            with pytest.raises(UnsupportedFormat, match="no peer connections"):
                parse_file(path)
            continue
        for report in parse_file(path):
            f = derive_call_facts(report, FactsEnv.default())
            seen += 1
            where = f"{path.name}:{report.peer_connection_id}"
            assert f.path_class in PATH_CLASSES if report.selected_pairs else f.path_class == "", where
            if any(s.rtt_ms is not None for s in report.samples):
                assert f.rtt_band, where
            if f.ice_connected and not report.selected_pairs:
                assert [n.code for n in report.notes] == ["no-selected-pair"], where
            assert f.diagnosis in LABELS and set(f.labels) <= set(LABELS)
            assert derive_call_facts(report, FactsEnv.default()) == f
    assert seen >= 18  # 18 peer connections in 10 readable captures (2026-11-26)
