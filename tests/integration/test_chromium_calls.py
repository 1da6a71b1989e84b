"""Real WebRTC calls from headless Chromium through a local coturn, one per scenario.

Each scenario places one call (tests/webrtc_testbed.py), checks the caller's report in the
icewatch W3C format against what the scenario must produce, then runs the report through
``collector.reports.parse_upload`` and checks the canonical CallReport. The same checks run on
the committed fixtures under tests/fixtures/chromium/, so those stay what they claim to be.
A missing prerequisite (chromium, coturn, root for network namespaces) fails, never skips.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collector.contract import CallReport, Candidate
from collector.reports import UploadContext, parse_upload
from tests.cdp import CdpError
from tests.webrtc_testbed import (
    MAPPED_ADDRESS,
    NS_ADDRESS,
    TURN_USER,
    CallRun,
    Scenario,
    TestbedError,
    check_prerequisites,
    record_call,
    w3c_format_problems,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "chromium"
TESTED = [s for s in Scenario if s is not Scenario.TURN_STOPPED_UDP]  # UDP 701 needs ~40 s
# Connected calls run long enough for several RTT samples; failures show at once.
SECONDS = {
    Scenario.HOST: 5,
    Scenario.SRFLX: 3,
    Scenario.RELAY_UDP: 5,
    Scenario.RELAY_TCP: 5,
    Scenario.WRONG_PASSWORD: 3,
    Scenario.TURN_STOPPED: 3,
    Scenario.DTLS_STALL: 5,
}

Report = dict[str, Any]


# --------------------------------------------------------------------------------------------
# Reading a W3C report
# --------------------------------------------------------------------------------------------


def final_stats(report: Report) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in report["snapshots"][-1]["stats"]}


def of_type(stats: dict[str, dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [s for s in stats.values() if s["type"] == kind]


def selected_pair(report: Report) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The final snapshot's selected pair (via the transport) and its local and remote candidates."""
    stats = final_stats(report)
    (transport,) = of_type(stats, "transport")
    pair = stats[transport["selectedCandidatePairId"]]
    return pair, stats[pair["localCandidateId"]], stats[pair["remoteCandidateId"]]


def local_candidate_types(report: Report) -> set[str]:
    return {s["candidateType"] for snap in report["snapshots"] for s in snap["stats"] if s["type"] == "local-candidate"}


def states(report: Report, event_type: str) -> list[str]:
    return [e["state"] for e in report["events"] if e["type"] == event_type]


def candidate_errors(report: Report) -> list[dict[str, Any]]:
    return [e for e in report["events"] if e["type"] == "icecandidateerror"]


# --------------------------------------------------------------------------------------------
# What each scenario must produce
# --------------------------------------------------------------------------------------------


def assert_connected(report: Report) -> None:
    assert states(report, "iceconnectionstatechange")[-1] in ("connected", "completed")
    assert states(report, "connectionstatechange")[-1] == "connected"
    assert states(report, "dtlsstatechange") == ["connecting", "connected"]
    assert states(report, "icegatheringstatechange") == ["gathering", "complete"]
    assert candidate_errors(report) == []
    pair, _, _ = selected_pair(report)
    assert pair["state"] == "succeeded" and pair["nominated"] is True
    # Seconds. One machine: 1-8 ms once settled; the first second of a relayed call read up to 245 ms.
    assert 0 <= pair["currentRoundTripTime"] < 1.0
    (transport,) = of_type(final_stats(report), "transport")
    assert (transport["iceState"], transport["dtlsState"]) == ("connected", "connected")
    assert of_type(final_stats(report), "outbound-rtp")[0]["packetsSent"] > 0
    assert of_type(final_stats(report), "inbound-rtp")[0]["packetsReceived"] > 0


def assert_never_connected(report: Report, code: int) -> None:
    """The call that could not gather a relay candidate: errors only, and states stay `new`."""
    errors = candidate_errors(report)
    assert {e["errorCode"] for e in errors} == {code}
    # One error per server URL; for an unreachable UDP TURN server Chromium adds one for the
    # stun: URL it derives from the turn: URL (measured on Chromium 156).
    assert report["ice_servers"][0]["urls"][0] in {e["url"] for e in errors}
    assert states(report, "iceconnectionstatechange") == []  # never left `new`, never `failed`
    assert states(report, "connectionstatechange") == []
    assert states(report, "dtlsstatechange") == []
    assert states(report, "icegatheringstatechange") == ["gathering", "complete"]
    assert local_candidate_types(report) == set()
    stats = final_stats(report)
    assert of_type(stats, "candidate-pair") == []
    (transport,) = of_type(stats, "transport")
    assert transport.get("iceState", "new") == "new"
    assert transport["dtlsState"] == "new"
    assert "selectedCandidatePairId" not in transport
    gathered = [e for e in report["events"] if e["type"] == "icecandidate"]
    assert [e["candidate"] for e in gathered] == [None]


def assert_dtls_stalled(report: Report) -> None:
    """ICE connected on the host pair, DTLS never finished, no media."""
    assert states(report, "iceconnectionstatechange")[-1] == "connected"
    assert states(report, "dtlsstatechange") == ["connecting"]
    assert states(report, "connectionstatechange") == ["connecting"]
    pair, local, remote = selected_pair(report)
    assert (local["candidateType"], remote["candidateType"]) == ("host", "host")
    assert pair["state"] == "succeeded"
    (transport,) = of_type(final_stats(report), "transport")
    assert (transport["iceState"], transport["dtlsState"]) == ("connected", "connecting")
    assert transport["packetsReceived"] == 0
    assert of_type(final_stats(report), "inbound-rtp") == []
    assert all(s["packetsSent"] == 0 for s in of_type(final_stats(report), "outbound-rtp"))


def check_scenario(scenario: Scenario, report: Report) -> None:
    assert w3c_format_problems(report) == []
    assert report["sdk"]["name"] == "chromium-testbed"
    assert report["sdk"]["version"].split(".")[0].isdigit()
    relay = scenario not in (Scenario.HOST, Scenario.SRFLX, Scenario.DTLS_STALL)
    assert report["ice_transport_policy"] == ("relay" if relay else "all")
    if scenario is Scenario.DTLS_STALL:
        assert report["ice_servers"] == []
        assert_dtls_stalled(report)
        return
    if scenario is Scenario.HOST:
        assert report["ice_servers"] == []
        assert_connected(report)
        _, local, remote = selected_pair(report)
        assert (local["candidateType"], remote["candidateType"]) == ("host", "host")
        assert local["protocol"] == "udp"
        assert local_candidate_types(report) == {"host"}
        return
    (url,) = report["ice_servers"][0]["urls"]
    if scenario is Scenario.SRFLX:
        assert url.startswith("stun:")
        assert_connected(report)
        _, local, remote = selected_pair(report)
        assert (local["candidateType"], remote["candidateType"]) == ("host", "host")
        assert local_candidate_types(report) == {"host", "srflx"}
        (srflx,) = [s for s in of_type(final_stats(report), "local-candidate") if s["candidateType"] == "srflx"]
        assert (srflx["address"], srflx["relatedAddress"], srflx["url"]) == (MAPPED_ADDRESS, NS_ADDRESS, url)
    elif scenario in (Scenario.RELAY_UDP, Scenario.RELAY_TCP):
        transport = "udp" if scenario is Scenario.RELAY_UDP else "tcp"
        assert url.startswith("turn:") and url.endswith(f"?transport={transport}")
        assert_connected(report)
        _, local, remote = selected_pair(report)
        assert (local["candidateType"], remote["candidateType"]) == ("relay", "host")
        assert local["relayProtocol"] == transport
        assert local["url"] == url
        assert local["protocol"] == "udp"  # the relayed leg is UDP whatever reaches the server
        assert local_candidate_types(report) == {"relay"}
    elif scenario is Scenario.WRONG_PASSWORD:
        assert url.endswith("?transport=udp")
        assert_never_connected(report, 401)
    elif scenario in (Scenario.TURN_STOPPED, Scenario.TURN_STOPPED_UDP):
        assert_never_connected(report, 701)
    else:  # pragma: no cover - a new scenario needs its checks here
        raise AssertionError(f"no checks for {scenario}")


def check_turn_log(scenario: Scenario, log: str) -> None:
    """coturn's side of the same call."""
    if scenario in (Scenario.HOST, Scenario.DTLS_STALL):
        assert log == ""
    elif scenario in (Scenario.RELAY_UDP, Scenario.RELAY_TCP):
        assert f"user <{TURN_USER}>: incoming packet ALLOCATE processed, success" in log
        assert "CREATE_PERMISSION processed, success" in log
    elif scenario is Scenario.WRONG_PASSWORD:
        assert f"user {TURN_USER} credentials are incorrect" in log
        assert f"user <{TURN_USER}>: incoming packet message processed, error 401" in log
        assert "ALLOCATE processed, success" not in log
    elif scenario is Scenario.TURN_STOPPED:
        assert "session " not in log  # stopped before the call: no session at all
    elif scenario is Scenario.SRFLX:
        assert f"UDP listener opened on: {NS_ADDRESS}" in log  # answered STUN Binding only
        assert "ALLOCATE" not in log


# --------------------------------------------------------------------------------------------
# The canonical CallReport that parse_upload makes of it
# --------------------------------------------------------------------------------------------

_STATE_KINDS = {
    "iceconnectionstatechange": "ice",
    "connectionstatechange": "connection",
    "icegatheringstatechange": "gathering",
    "dtlsstatechange": "dtls",
}


def epoch_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def canonical(report: Report) -> CallReport:
    (call_report,) = parse_upload(json.dumps(report).encode(), UploadContext())
    return call_report


def selected_candidates(call_report: CallReport) -> tuple[Candidate, Candidate]:
    by_id = {c.id: c for c in call_report.candidates}
    last = call_report.selected_pairs[-1]
    local, remote = by_id[last.local_candidate_id], by_id[last.remote_candidate_id]
    assert (local.is_remote, remote.is_remote) == (False, True)
    return local, remote


def canonical_states(call_report: CallReport, kind: str) -> set[str]:
    return {s.state for s in call_report.states if s.kind == kind}


def check_canonical(scenario: Scenario, report: Report) -> None:
    call_report = canonical(report)
    assert call_report.source_format == "w3c"
    assert call_report.call_id == report["call_id"]
    assert (call_report.sdk_name, call_report.sdk_version) == ("chromium-testbed", report["sdk"]["version"])
    assert call_report.browser == "chrome"
    assert call_report.ice_transport_policy == report["ice_transport_policy"]
    assert [s.urls for s in call_report.ice_servers] == [s["urls"] for s in report["ice_servers"]]
    # Every state event is kept with its own time.
    got = {(s.at, s.kind, s.state) for s in call_report.states}
    for e in report["events"]:
        if e["type"] in _STATE_KINDS:
            assert (epoch_ms(e["at"]), _STATE_KINDS[e["type"]], e["state"]) in got
    errors = [(e.at, e.url, e.error_code) for e in call_report.candidate_errors]
    assert errors == [(epoch_ms(e["at"]), e["url"], e["errorCode"]) for e in candidate_errors(report)]
    assert call_report.samples, "one sample per stats interval"

    if scenario in (Scenario.HOST, Scenario.SRFLX, Scenario.RELAY_UDP, Scenario.RELAY_TCP):
        local, remote = selected_candidates(call_report)
        assert remote.candidate_type == "host"
        for kind in ("ice", "dtls", "connection"):
            assert "connected" in canonical_states(call_report, kind)
        last = call_report.samples[-1]
        assert (last.ice_state, last.dtls_state) == ("connected", "connected")
        assert last.rtt_source == "candidate-pair" and last.rtt_ms is not None
        assert last.rtt_ms == pytest.approx(1000 * selected_pair(report)[0]["currentRoundTripTime"])
        assert last.packets_received and last.packets_sent
        if scenario in (Scenario.HOST, Scenario.SRFLX):
            assert (local.candidate_type, local.relay_protocol) == ("host", None)
            gathered = {c.candidate_type for c in call_report.candidates if not c.is_remote}
            assert gathered == ({"host", "srflx"} if scenario is Scenario.SRFLX else {"host"})
            if scenario is Scenario.SRFLX:
                (srflx,) = [c for c in call_report.candidates if c.candidate_type == "srflx"]
                assert (srflx.address, srflx.url) == (MAPPED_ADDRESS, report["ice_servers"][0]["urls"][0])
        else:
            transport = "udp" if scenario is Scenario.RELAY_UDP else "tcp"
            assert local.candidate_type == "relay"
            assert (local.relay_protocol, local.relay_protocol_source) == (transport, "relayProtocol")
            assert local.url == report["ice_servers"][0]["urls"][0]
    elif scenario is Scenario.DTLS_STALL:
        local, remote = selected_candidates(call_report)
        assert (local.candidate_type, remote.candidate_type) == ("host", "host")
        assert "connected" in canonical_states(call_report, "ice")
        assert canonical_states(call_report, "dtls") == {"connecting"}
        assert "connected" not in canonical_states(call_report, "connection")
        last = call_report.samples[-1]
        assert (last.ice_state, last.dtls_state, last.packets_received) == ("connected", "connecting", 0)
    else:  # never connected: no candidate, no pair, every state still `new`
        expected = {Scenario.WRONG_PASSWORD: 401, Scenario.TURN_STOPPED: 701, Scenario.TURN_STOPPED_UDP: 701}
        assert {e.error_code for e in call_report.candidate_errors} == {expected[scenario]}
        assert [c for c in call_report.candidates if not c.is_remote] == []
        assert call_report.selected_pairs == []
        for kind in ("ice", "connection", "dtls"):
            assert canonical_states(call_report, kind) <= {"new"}
        assert all(s.ice_state in (None, "new") and s.rtt_ms is None for s in call_report.samples)


# --------------------------------------------------------------------------------------------
# Real calls
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def call() -> Callable[[Scenario], CallRun]:
    """Runs each scenario's call once per module (inside the test, so a failure fails that test)."""
    done: dict[Scenario, CallRun | str] = {}

    def get(scenario: Scenario) -> CallRun:
        if scenario not in done:
            try:
                done[scenario] = record_call(scenario, SECONDS[scenario])
            except (TestbedError, CdpError, OSError) as exc:
                done[scenario] = f"{type(exc).__name__}: {exc}"
        result = done[scenario]
        if isinstance(result, str):
            pytest.fail(f"the {scenario} call could not run:\n{result}", pytrace=False)
        return result

    return get


@pytest.mark.chromium
def test_prerequisites() -> None:
    problems = check_prerequisites()
    if problems:
        pytest.fail("the Chromium testbed cannot run here:\n" + "\n".join(problems), pytrace=False)


@pytest.mark.chromium
@pytest.mark.parametrize("scenario", TESTED, ids=str)
def test_real_call_report(call: Callable[[Scenario], CallRun], scenario: Scenario, tmp_path: Path) -> None:
    run = call(scenario)
    try:
        check_scenario(scenario, run.report)
        assert len(run.report["snapshots"]) == SECONDS[scenario]
    except AssertionError as exc:  # keep the real report of a failing call for a look
        kept = tmp_path / f"{scenario.value}.json"
        kept.write_text(json.dumps(run.report, indent=1))
        raise AssertionError(f"{exc}\n(the report is in {kept})") from exc


@pytest.mark.chromium
@pytest.mark.parametrize("scenario", TESTED, ids=str)
def test_real_call_canonical_report(call: Callable[[Scenario], CallRun], scenario: Scenario) -> None:
    check_canonical(scenario, call(scenario).report)


@pytest.mark.chromium
@pytest.mark.parametrize("scenario", TESTED, ids=str)
def test_real_call_turn_log(call: Callable[[Scenario], CallRun], scenario: Scenario) -> None:
    check_turn_log(scenario, call(scenario).turn_log)


# --------------------------------------------------------------------------------------------
# The committed fixtures (fast; no browser)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", TESTED, ids=str)
def test_fixture_is_a_real_report_of_its_scenario(scenario: Scenario) -> None:
    path = FIXTURES / f"{scenario.value}.json"
    report = json.loads(path.read_text())
    check_scenario(scenario, report)
    check_canonical(scenario, report)
    assert report["call_id"] == f"chromium-testbed-{scenario.value}"
