"""The real, unmodified Telnyx WebRTC SDK (npm ``@telnyx/webrtc`` 2.27.10) uploads its own call report
to icewatch, in headless Chromium (tests/telnyx_sdk/sdk_call.py on the testbed of tests/webrtc_testbed.py).

Per scenario (host; relay over UDP; relay over TCP through a real coturn) the SDK makes one call
against an in-page fake Verto server and, when the server hangs up, posts its report across
origins (CORS preflight) to icewatch's ``POST /call_report``, which writes to an embedded chDB
store. The tests check the upload (the SDK's headers and body) and what the store's ``calls`` row
says against the call's real setup: path class, candidate types, relay protocol, TURN URL, RTT,
DTLS, and ICE/DTLS connect times equal to the ones the SDK logged in its ``[CallTimings]`` table.
The committed bodies in tests/fixtures/telnyx-sdk/ get the same checks without a browser.
A missing prerequisite (chromium, coturn, root, the npm-installed SDK) fails, never skips.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from collector.contract import CallReport
from collector.http_app import IngestConfig, build_app
from collector.reports import UploadContext, parse_upload
from processors.facts.call_facts import FactsEnv, derive_call_facts
from processors.rows.builder import RowBuilder
from processors.service.embedded import EmbeddedPublisher
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate
from tests.cdp import CdpError
from tests.telnyx_sdk.sdk_call import SCENARIOS, SDK_VERSION, SdkCall, record_sdk_call, sdk_problems
from tests.webrtc_testbed import NS_ADDRESS, TURN_USER, Scenario, TestbedError, check_prerequisites

FIXTURES = Path(__file__).parent.parent / "fixtures" / "telnyx-sdk"
SECONDS = 3  # how long each call stays up once active: three 1-second stats intervals
RELAY_PROTOCOL = {Scenario.RELAY_UDP: "udp", Scenario.RELAY_TCP: "tcp"}
PATH_CLASS = {Scenario.HOST: "host", Scenario.RELAY_UDP: "relay-udp", Scenario.RELAY_TCP: "relay-tcp"}
ICE_STEP = "ICE connection established"
DTLS_STEP = "Secure media channel established (DTLS)"
# "[CallTimings][outbound][non-trickle] <step>   <delta>ms   <from start>ms", read here on its own.
TIMING_LINE = re.compile(r"^\[CallTimings\]\[[a-z]+\]\[[a-z-]+\] (?P<step>\S.*?) +(?:-|[\d.]+ms) +(?P<at>[\d.]+)ms$")

Body = dict[str, Any]


# --------------------------------------------------------------------------------------------
# What the SDK's own body says
# --------------------------------------------------------------------------------------------


def logged_timings(body: Body) -> dict[str, float]:
    """The SDK's call-establishment table from its ``logs``: step -> ms from the call's start."""
    out: dict[str, float] = {}
    for entry in body["logs"]:
        match = TIMING_LINE.match(entry["message"])
        if match:
            out[match["step"]] = float(match["at"])
    return out


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def check_body(scenario: Scenario, body: Body, call_id: str, turn_urls: list[str]) -> dict[str, float]:
    """The SDK's own report of the call (its summary, stats and logs); returns its logged timings."""
    summary = body["summary"]
    assert (summary["callId"], summary["sdkVersion"], summary["direction"]) == (call_id, SDK_VERSION, "outbound")
    assert summary["state"] == "destroy"  # the final report, posted once the call ended
    media = summary["clientSummary"]["media"]
    assert media["forceRelayCandidate"] is (scenario in RELAY_PROTOCOL)
    assert [u for s in media.get("iceServers", []) for u in s["urls"]] == turn_urls
    assert "segment" not in body  # one final report, no intermediate segments
    # The SDK's own view of the selected pair, in every interval collected while the peer was open.
    pairs = [s["ice"] for s in body["stats"] if "ice" in s]
    assert pairs, "no stats interval with an ice block"
    for ice in pairs:
        assert (ice["state"], ice["nominated"]) == ("succeeded", True)
        assert ice["remote"]["candidateType"] == "host"
        local = ice["local"]
        if scenario is Scenario.HOST:
            assert (local["candidateType"], local["protocol"], local["address"]) == ("host", "udp", NS_ADDRESS)
        else:
            assert (local["candidateType"], local["relayProtocol"]) == ("relay", RELAY_PROTOCOL[scenario])
            assert local["url"] == turn_urls[0]
    assert all(s["transport"]["dtlsState"] == "connected" for s in body["stats"] if "transport" in s)
    timings = logged_timings(body)
    assert 0 < timings[ICE_STEP] <= timings[DTLS_STEP], timings
    return timings


def check_facts(scenario: Scenario, facts: Mapping[str, Any], timings: dict[str, float], body: Body,
                turn_urls: list[str]) -> None:
    """icewatch's facts of the call (a ``calls`` row or CallFacts) against the call's real setup."""
    assert (facts["source_format"], facts["sdk_name"], facts["sdk_version"]) == ("telnyx", "telnyx-webrtc-js",
                                                                                  SDK_VERSION)
    assert facts["path_class"] == PATH_CLASS[scenario]
    assert (facts["remote_candidate_type"], facts["local_protocol"]) == ("host", "udp")
    if scenario is Scenario.HOST:
        assert (facts["local_candidate_type"], facts["relay_protocol"], facts["turn_url"]) == ("host", "", "")
        assert list(facts["gathered_types"]) == ["host"]
    else:
        assert facts["local_candidate_type"] == "relay"
        assert facts["relay_protocol"] == RELAY_PROTOCOL[scenario]
        assert facts["turn_url"] == turn_urls[0]
        assert list(facts["gathered_types"]) == ["relay"]
        assert bool(facts["configured_turn"])
    assert bool(facts["ice_connected"]) and bool(facts["dtls_connected"])
    assert not (facts["never_connected"] or facts["ice_failed"] or facts["dtls_stall"] or facts["dtls_failed"])
    # RTT: the candidate pair's, present in every open interval; one machine, so a few ms at most.
    assert facts["rtt_samples"] >= 1
    assert facts["rtt_median_ms"] is not None and 0 <= facts["rtt_median_ms"] < 100
    assert facts["rtt_band"] == "excellent"
    assert facts["diagnosis"] == "ok"
    # The SDK's own warnings: 33005 (only host candidates) for the host-only call alone.
    assert ("33005" in facts["sdk_warnings"]) is (scenario is Scenario.HOST)
    # Bytes of the whole connection (headers included), so both directions carried something.
    assert facts["connection_send_kbps"] > 0 and facts["connection_recv_kbps"] > 0
    # Connect times: the SDK's own (ICE from its call start; DTLS after ICE), not a stats interval's end.
    assert facts["ice_connect_ms"] == pytest.approx(timings[ICE_STEP], abs=0.05)
    assert facts["dtls_connect_ms"] == pytest.approx(timings[DTLS_STEP] - timings[ICE_STEP], abs=0.05)
    first_interval_end = (utc(body["stats"][0]["intervalEndUtc"]) - utc(body["summary"]["startTimestamp"]))
    assert facts["ice_connect_ms"] < first_interval_end.total_seconds() * 1000


def check_notes(scenario: Scenario, report: CallReport, call_report_id: str, voice_sdk_id: str) -> None:
    """The SDK's ids (from its headers) and its warnings are kept for support."""
    notes = {(n.source, n.code): n.text for n in report.notes}
    assert notes[("sdk", "call-report-id")] == call_report_id
    assert notes[("sdk", "voice-sdk-id")] == voice_sdk_id
    # 33005 "Only local network candidates available": the SDK warns for the host-only call alone.
    assert (("sdk", "33005") in notes) is (scenario is Scenario.HOST)


def canonical(body: bytes, headers: Mapping[str, str]) -> CallReport:
    ctx = UploadContext(format_hint="telnyx", call_id_hint=headers.get("x-call-id"),
                        report_id_hint=headers.get("x-call-report-id"),
                        voice_sdk_id_hint=headers.get("x-voice-sdk-id"), hash_key=b"test")
    (report,) = parse_upload(body, ctx)
    return report


# --------------------------------------------------------------------------------------------
# Real calls
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbSink]:
    sink = ChdbSink(tmp_path_factory.mktemp("telnyx-sdk-store"))
    try:
        migrate(sink)
        yield sink
    finally:
        sink.close()


@pytest.fixture(scope="module")
def sdk_call(store: ChdbSink) -> Callable[[Scenario], SdkCall]:
    """Runs each scenario's SDK call once per module (inside the test, so a failure fails that test)."""
    done: dict[Scenario, SdkCall | str] = {}

    def ingest(origin: str) -> Any:
        config = IngestConfig(api_keys={}, max_body_bytes=8 << 20, hash_key=b"test", cors_origins=(origin,))
        return build_app(EmbeddedPublisher(store, RowBuilder(FactsEnv())), config)

    def get(scenario: Scenario) -> SdkCall:
        if scenario not in done:
            try:
                done[scenario] = record_sdk_call(scenario, SECONDS, ingest)
            except (TestbedError, CdpError, OSError) as exc:
                done[scenario] = f"{type(exc).__name__}: {exc}"
        result = done[scenario]
        if isinstance(result, str):
            pytest.fail(f"the {scenario} SDK call could not run:\n{result}", pytrace=False)
        return result

    return get


def turn_urls(call: SdkCall) -> list[str]:
    return [u for server in call.ice_servers for u in server["urls"]]


@pytest.mark.chromium
def test_prerequisites() -> None:
    problems = check_prerequisites() + sdk_problems()
    if problems:
        pytest.fail("the Telnyx SDK test cannot run here:\n" + "\n".join(problems), pytrace=False)


@pytest.mark.chromium
@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_sdk_posts_its_own_report_across_origins(sdk_call: Callable[[Scenario], SdkCall], scenario: Scenario) -> None:
    call = sdk_call(scenario)
    page = call.page
    assert page["errors"] == [] and page["vertoErrors"] == [], page
    assert page["states"][-3:] == ["active", "hangup", "destroy"]
    assert page["sdkSent"][:3] == ["login", "telnyx_rtc.gatewayState", "telnyx_rtc.invite"]
    assert page["serverSent"] == ["telnyx_rtc.clientReady", "telnyx_rtc.answer", "telnyx_rtc.bye"]
    # The browser asked first (custom x-* headers), then the SDK posted its final report once.
    assert call.requests == [("OPTIONS", "/call_report"), ("POST", "/call_report")]
    (upload,) = call.uploads
    assert upload.status == 202
    assert upload.headers["origin"] == call.page_origin
    assert upload.headers["x-call-report-id"] == call.call_report_id  # from the REGED gateway state
    assert upload.headers["x-voice-sdk-id"] == call.voice_sdk_id
    assert upload.headers["x-call-id"] == page["callId"]
    check_body(scenario, json.loads(upload.body), page["callId"], turn_urls(call))


@pytest.mark.chromium
@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_store_holds_the_calls_real_setup(sdk_call: Callable[[Scenario], SdkCall], store: ChdbSink,
                                          scenario: Scenario) -> None:
    call = sdk_call(scenario)
    (upload,) = call.uploads
    body = json.loads(upload.body)
    timings = check_body(scenario, body, call.page["callId"], turn_urls(call))
    rows = store.query("SELECT * FROM calls FINAL WHERE call_id = {c:String}", {"c": call.page["callId"]})
    assert len(rows) == 1, rows
    assert rows[0]["browser"].startswith("Chrome 1")  # from the request's User-Agent (HeadlessChrome/156)
    check_facts(scenario, rows[0], timings, body, turn_urls(call))
    check_notes(scenario, canonical(upload.body, upload.headers), call.call_report_id, call.voice_sdk_id)


@pytest.mark.chromium
@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_relay_calls_went_through_coturn(sdk_call: Callable[[Scenario], SdkCall], scenario: Scenario) -> None:
    log = sdk_call(scenario).turn_log
    if scenario is Scenario.HOST:
        assert log == ""  # no TURN server at all
    else:
        assert f"user <{TURN_USER}>: incoming packet ALLOCATE processed, success" in log
        assert "CREATE_PERMISSION processed, success" in log


# --------------------------------------------------------------------------------------------
# The committed bodies (fast; no browser)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_fixture_is_a_real_sdk_report_of_its_scenario(scenario: Scenario) -> None:
    raw = (FIXTURES / f"{scenario.value}.json").read_bytes()
    headers: dict[str, str] = json.loads((FIXTURES / f"{scenario.value}.headers.json").read_text())
    body = json.loads(raw)
    assert headers["x-call-report-id"] == f"testbed-{scenario.value}"
    urls = [u for s in body["summary"]["clientSummary"]["media"].get("iceServers", []) for u in s["urls"]]
    if scenario is Scenario.HOST:
        assert urls == []
    else:
        (url,) = urls
        assert re.fullmatch(rf"turn:{re.escape(NS_ADDRESS)}:\d+\?transport={RELAY_PROTOCOL[scenario]}", url), url
    timings = check_body(scenario, body, headers["x-call-id"], urls)
    report = canonical(raw, headers)
    check_facts(scenario, derive_call_facts(report, FactsEnv()).model_dump(), timings, body, urls)
    check_notes(scenario, report, headers["x-call-report-id"], headers["x-voice-sdk-id"])
