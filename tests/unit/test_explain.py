"""`icewatch explain` for a person: rounded numbers with units, the path in words, the evidence behind each
diagnosis with its threshold named where it is set, the runbook's what-to-check line, the capture's notes;
on real captures (the project's Chromium and Telnyx SDK fixtures, ../shared/corpus when present) and on
hand-made reports for the labels no capture shows."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.rules import RUNBOOKS_DIR
from collector.cli_root import main
from collector.contract import CallReport, IceServer, ReportNote, Sample
from collector.reports import parse_file
from processors.explain import LABEL_MEANING, explain_report, explanation_json, render_text
from processors.explain_runbooks import HINTS, check_for, what_to_check_items
from processors.facts import units
from processors.facts.call_facts import FactsEnv, derive_call_facts
from processors.facts.model import LABELS, PATH_CLASSES, CallFacts
from tests.unit.test_facts_fixtures import (
    BERLIN_IP,
    STUN_EU,
    TURN_EU_UDP,
    TURN_USE_UDP,
    TURNS_EU,
    at,
    cand,
    err,
    make_env,
    make_report,
    pair,
    relay_call,
    srflx_call,
    state,
)

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"
CHROMIUM = REPO / "tests" / "fixtures" / "chromium"
TELNYX = REPO / "tests" / "fixtures" / "telnyx-sdk"
MORE_THAN_TWO_DECIMALS = re.compile(r"\d\.\d{3,}")


def explain(*args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(main, ["explain", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def labels_of(text: str) -> set[str]:
    """The section labels of the calls' text ("source", "evidence", "check", ...)."""
    return {line.split()[0] for line in text.splitlines() if line.startswith("  ") and not line.startswith("   ")}


def block(text: str, key: str) -> list[str]:
    """The lines of a keyed section of one call's text: its own line and the indented lines under it."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {key} "))
    out = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith("              "):
            break
        out.append(line)
    return [line.strip() for line in out]


def runbook_plain(runbook: str) -> str:
    text = (RUNBOOKS_DIR / f"{runbook}.md").read_text()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).replace("**", "").replace("`", "")
    return " ".join(" ".join(re.sub(r"^\s*(?:[-*]|\d+\.)\s+", "", line) for line in text.splitlines()).split())


def explain_one(report: CallReport, env: FactsEnv) -> tuple[str, dict[str, Any]]:
    e = explain_report(report, env)
    return render_text(e, "hand-made"), explanation_json(e, "hand-made")


# ---- real captures: the project's own fixtures -------------------------------------------------


def test_the_chromium_dtls_stall_shows_its_evidence_and_what_to_check() -> None:
    text = explain(str(CHROMIUM / "dtls_stall.json"))
    assert "diagnosis   dtls_stall: ICE connected but the DTLS handshake did not finish" in text
    evidence = block(text, "evidence")
    assert evidence[0] == "evidence    dtls_stall"
    assert evidence[1] == 'ICE connected at +7 ms (ICE state "connected")'
    assert 'stats samples\' DTLS state: "connecting" in 3 of 3 samples' in evidence
    assert "0 media packets received in 3 samples" in evidence
    # 3 s is under the 5 s threshold: the stall is the final report's, and the line says so
    assert evidence[-1].startswith("the report is final: the call ended 3.0 s after ICE connected without DTLS")
    assert evidence[-1].endswith("(threshold 5.0 s: ICEWATCH_DTLS_STALL_MS)")
    check = block(text, "check")
    assert check[0] == "check       dtls_stall [alerts/runbooks/dtls-stall-spike.md]"
    assert check[1].startswith("Direct (srflx/prflx) from one network or country")  # a host path: not a TURN one
    assert check[1] in runbook_plain("dtls-stall-spike")


def test_turn_stopped_and_wrong_password_name_the_error_the_url_and_the_runbook() -> None:
    stopped = explain(str(CHROMIUM / "turn_stopped.json"))
    [error] = [e for e in parse_file(CHROMIUM / "turn_stopped.json")[0].candidate_errors]
    assert error.url is not None
    assert f'candidate error 701 "Failed to establish connection" on {error.url}, 1 time, first at +' in stopped
    assert block(stopped, "check")[0] == "check       turn_unreachable [alerts/runbooks/relay-gathering-failing.md]"
    assert block(stopped, "check")[1].startswith("701 on turn:/turns: URLs (server not reachable): check the probes")
    assert "path        no candidate pair was selected; gathered nothing" in stopped
    wrong = explain(str(CHROMIUM / "wrong_password.json"))
    assert re.search(r'candidate error 401 "Unauthorized\." on turn:198\.18\.0\.1:\d+\?transport=udp, 1 time', wrong)
    check = block(wrong, "check")
    assert check[0] == "check       turn_auth_failed [alerts/runbooks/turn-auth-failures.md]"
    assert check[1].startswith("Recent changes:") and check[1] in runbook_plain("turn-auth-failures")


def test_a_healthy_call_has_rounded_numbers_and_no_evidence() -> None:
    text = explain(str(CHROMIUM / "relay_tcp.json"), str(CHROMIUM / "host.json"))
    facts = [derive_call_facts(r, FactsEnv.default()) for f in ("relay_tcp.json", "host.json")
             for r in parse_file(CHROMIUM / f)]
    assert "path        relayed over TURN/TCP via turn:198.18.0.1:" in text
    assert "remote peer direct (host); gathered relay" in text
    assert f"MOS {facts[1].mos:.2f}," in text and facts[1].mos is not None and len(str(facts[1].mos)) > 5
    labels = labels_of(text)  # (not the words: the source path may hold them, e.g. a clone under /check)
    assert "evidence" not in labels and "check" not in labels
    assert {"source", "diagnosis", "path", "RTT", "media"} <= labels
    numbers = "\n".join(line for line in text.splitlines() if not line.startswith("  source "))  # versions
    assert not MORE_THAN_TWO_DECIMALS.search(numbers)


def test_the_example_path_in_words_with_the_inventory() -> None:
    inventory = str(REPO / "deploy/inventory.example.yaml")
    text = explain("--inventory", inventory, str(REPO / "docs/examples/w3c-call.json"))
    path = "path        relayed over TURN/UDP via turn-eu-1 (Europe), remote peer direct (srflx); gathered srflx, relay"
    assert path in text
    assert "jitter 4 ms, loss 0.41 %, MOS 4.35" in text
    assert "diagnosis   ok: no problem found (also symmetric_nat_relay)" in text
    assert "(203.0.113.7): the NAT maps per destination" in text


def test_telnyx_sdk_warnings_are_shown_as_notes() -> None:
    path = TELNYX / "host.json"
    text = explain(str(path))
    notes = block(text, "notes")
    assert re.fullmatch(r"notes {7}sdk 33005 at \+\d+ ms: Only local network candidates available", notes[0])
    [rows] = [json.loads(explain("--json", str(path)))]
    [row] = rows
    assert {"source": "sdk", "code": "33005"}.items() <= row["notes"][0].items()
    [report] = parse_file(path)
    assert len(row["notes"]) == len(report.notes) == len(notes)


def test_json_keeps_every_fact_and_adds_evidence_checks_and_notes() -> None:
    path = CHROMIUM / "dtls_stall.json"
    [row] = json.loads(explain("--json", str(path)))
    [report] = parse_file(path)
    facts = derive_call_facts(report, FactsEnv.default()).model_dump(mode="json")
    assert {k: row[k] for k in facts} == facts and row["file"] == str(path)
    assert set(row) - set(facts) == {"file", "evidence", "what_to_check", "notes"}
    assert row["evidence"][-1]["threshold"] == {"value": 5000.0, "unit": "ms", "name": "ICEWATCH_DTLS_STALL_MS"}
    assert row["evidence"][0]["at_ms"] == facts["ice_connect_ms"]
    assert [c["runbook"] for c in row["what_to_check"]] == ["alerts/runbooks/dtls-stall-spike.md"]
    assert row["notes"] == []


# ---- the corpus (real captures nobody on this project wrote) -----------------------------------


def needs_corpus() -> None:
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is absent")


def test_the_corpus_dtls_stall_capture() -> None:
    needs_corpus()
    text = explain(str(CORPUS / "rtcstats" / "undefined-ice-candidate"))
    assert "diagnosis   dtls_stall:" in text
    assert "DTLS        not connected 20.0 s after ICE connected (stalled)" in text
    assert "path        direct over UDP (local prflx), remote peer direct (srflx)" in text
    assert block(text, "evidence") == [
        "evidence    dtls_stall",
        'ICE connected at +2.0 s (ICE state "connected")',
        'DTLS state "connecting" at +2.0 s, never "connected"',
        'stats samples\' DTLS state: "connecting" in 3 of 3 samples',
        'connection state "failed" at +17.0 s, never "connected"',
        "0 media packets received in 3 samples",
        "DTLS still not connected 20.0 s after ICE connected, more than the threshold "
        "(threshold 5.0 s: ICEWATCH_DTLS_STALL_MS)",
    ]
    check = block(text, "check")
    assert check[0] == "check       dtls_stall [alerts/runbooks/dtls-stall-spike.md]"
    assert check[1].startswith("Direct (srflx/prflx) from one network or country: a middlebox on the client's side.")
    assert check[1] in runbook_plain("dtls-stall-spike")


def test_the_threshold_is_the_setting() -> None:
    """ICEWATCH_DTLS_STALL_MS=30000: the 20 s wait is under the threshold; the call still stalled because
    it ended without DTLS, and the evidence says that, with the 30 s threshold."""
    needs_corpus()
    env = {"ICEWATCH_DTLS_STALL_MS": "30000"}
    text = explain(str(CORPUS / "rtcstats" / "undefined-ice-candidate"), env=env)
    assert block(text, "evidence")[-1] == (
        "the report is final: the call ended 20.0 s after ICE connected without DTLS; shorter than the threshold, "
        "but an ended call cannot connect later (threshold 30.0 s: ICEWATCH_DTLS_STALL_MS)")
    [row] = json.loads(explain("--json", str(CORPUS / "rtcstats" / "undefined-ice-candidate"), env=env))
    assert row["evidence"][-1]["threshold"]["value"] == 30000.0


def test_the_corpus_ice_failure_and_unreachable_stun() -> None:
    needs_corpus()
    text = explain(str(CORPUS / "rtcstats" / "chrome-standard-pc-failed"))
    failed = text.split("\n\n")[1]
    assert "diagnosis   ice_failed:" in failed and "ICE         failed, never connected" in failed
    evidence = block(failed, "evidence")
    assert evidence[1] == 'connection state "failed" at +15.5 s'
    assert "ICE never connected and no candidate pair was ever selected" in evidence
    assert block(failed, "check")[0] == "check       ice_failed [alerts/runbooks/ice-failure-spike.md]"
    # host and srflx gathered: the checks failed after gathering (not "gathered host only")
    assert block(failed, "check")[1].startswith("Gathered relay (and srflx) but failed")
    pair_change = explain(str(CORPUS / "webrtc-internals" / "chrome147-candidate-pair-change.txt"))
    assert ('candidate error 701 "STUN host lookup received error." on stun:stun.l.google.com:19302, 1 time, '
            "first at +") in pair_change


def test_every_corpus_capture_reads_with_rounded_numbers_and_unchanged_facts() -> None:
    needs_corpus()
    skipped = ("empty-dump.txt", "real_lines.txt")  # rejected by design; a TURN log
    files = [p for p in sorted(CORPUS.glob("*/*")) if p.is_file() and p.name not in skipped]
    assert len(files) >= 10
    text = explain(*map(str, files))
    numbers = "\n".join(line for line in text.splitlines() if not line.startswith("  source "))
    assert not MORE_THAN_TWO_DECIMALS.search(numbers), MORE_THAN_TWO_DECIMALS.search(numbers)
    rows = json.loads(explain("--json", *map(str, files)))
    expected = [derive_call_facts(r, FactsEnv.default()).model_dump(mode="json") for f in files for r in parse_file(f)]
    assert [{k: row[k] for k in facts} for row, facts in zip(rows, expected, strict=True)] == expected
    assert text.count("\ncall ") + 1 == len(rows)


# ---- hand-made reports: the labels no capture here shows ------------------------------------------


def test_distant_relay_and_high_rtt_name_servers_distances_and_thresholds(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    local = cand("r1", "relay", "198.51.100.7", url=TURN_USE_UDP, relay_protocol="udp", related_address=BERLIN_IP)
    report = relay_call(local, rtts=[320.0, 330.0, 310.0, 900.0, 315.0])
    facts = derive_call_facts(report, env)
    assert facts.labels == ["distant_relay", "high_rtt"]
    assert facts.relay_distance_km is not None and 6000 < facts.relay_distance_km < 7500  # Berlin -> Ashburn
    text, row = explain_one(report, env)
    assert "path        relayed over TURN/UDP via turn-use-1 (US East), remote peer direct (srflx)" in text
    evidence = block(text, "evidence")
    assert f"relayed via turn-use-1, {units.km(facts.relay_distance_km)} from the client" in evidence
    assert f"nearest TURN server turn-eu-1, {units.km(facts.nearest_distance_km)} away" in evidence
    assert (f"{units.km(facts.excess_km)} farther than the nearest, more than the threshold "
            "(threshold 1,500 km: ICEWATCH_DISTANT_RELAY_KM)") in evidence
    assert "client located at 203.0.113.0, DE (position from mmdb)" in evidence
    high = text.split("              high_rtt\n")[1].splitlines()
    assert high[0].strip() == ("median RTT 320 ms over 5 samples (candidate-pair), at or above the threshold "
                               "(threshold 300 ms: processors/facts/diagnosis.py HIGH_RTT_MS)")
    assert high[1].strip().startswith("worst sample 900 ms at +")
    assert [c["label"] for c in row["what_to_check"]] == ["distant_relay"]  # no runbook for high RTT
    assert block(text, "check")[1].startswith("Is the nearest server healthy?")
    assert "relay       " in text and f"{units.km(facts.relay_distance_km)} from the client" in text


def test_udp_blocked_tcp_relay_shows_what_was_gathered_and_offered(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    local = cand("r1", "relay", "198.51.100.131", url=TURNS_EU, relay_protocol="tls", related_address=BERLIN_IP)
    text, row = explain_one(relay_call(local), env)
    assert block(text, "evidence") == [
        "evidence    udp_blocked_tcp_relay",
        "media relayed over TURN/TLS (relay-tls)",
        "relay candidates gathered over TLS, none over UDP",
        f"TURN over UDP was offered: {TURN_EU_UDP}",
    ]
    assert row["what_to_check"] == [] and "check" not in labels_of(text)


def test_stun_unreachable_and_ice_failed_on_a_host_only_call(tmp_path: Path) -> None:
    report = make_report(
        ice_servers=[], candidates=[cand("h1", "host", "192.168.1.10", gathered=0.01)],
        candidate_errors=[err(STUN_EU, 701, seconds=0.2), err(STUN_EU, 701, seconds=0.9)],
        states=[state(0.1, "ice", "checking"), state(15, "ice", "failed")],
    )
    text, row = explain_one(report, make_env(tmp_path))
    assert [e["label"] for e in row["evidence"]][:2] == ["stun_unreachable", "stun_unreachable"]
    assert f'candidate error 701 on {STUN_EU}, 2 times, first at +200 ms' in text
    assert "the report carries no ICE server configuration" in text
    assert 'ICE state "failed" at +15.0 s' in text
    assert "1 local candidate (host), 0 remote candidates" in text
    checks = {c["label"]: c["text"] for c in row["what_to_check"]}
    assert checks["ice_failed"].startswith("Gathered host only: STUN and TURN both failed")
    assert checks["stun_unreachable"].startswith("Our STUN service")


def test_notes_are_shown_and_hostile_text_cannot_drive_the_terminal(tmp_path: Path) -> None:
    hostile = "SDK says\x1b[2J\x1b]0;pwned\x07\nfake line\u202eevil\r"
    report = srflx_call(notes=[
        ReportNote(source="sdk", code="33005", text="Only local network candidates available", at=at(1.5)),
        ReportNote(source="reader", code="no-selected-pair", text=hostile),
    ])
    text, row = explain_one(report, make_env(tmp_path))
    notes = block(text, "notes")
    assert notes[0] == "notes       sdk 33005 at +1.5 s: Only local network candidates available"
    assert notes[1] == r"reader no-selected-pair: SDK says\u001b[2J\u001b]0;pwned\u0007\u000afake line\u202eevil\u000d"
    assert not any(c in text for c in "\x1b\x07\r\u202e") and "\nfake line" not in text
    assert row["notes"][1]["text"] == hostile and row["notes"][0]["at_ms"] == 1500.0


# ---- the one home of the label -> runbook mapping ------------------------------------------------


def facts_variants() -> list[CallFacts]:
    base = CallFacts(call_id="c", report_id="r", segment=0, source_format="w3c")
    gathered = [[], ["host"], ["host", "srflx"], ["host", "relay"], ["host", "srflx", "relay"]]
    return [base.model_copy(update={"path_class": p, "gathered_types": g}) for p in ("", *PATH_CLASSES)
            for g in gathered]


def test_every_label_has_words_and_every_hint_finds_its_runbook_item() -> None:
    assert set(LABEL_MEANING) == set(LABELS)
    assert set(HINTS) <= set(LABELS)
    for label, hint in HINTS.items():
        items = what_to_check_items(hint.runbook)
        assert items, hint.runbook
        for facts in facts_variants():
            lead = hint.item(facts)
            assert any(i.startswith(lead) for i in items), (label, lead, hint.runbook)
            check = check_for(label, facts)
            assert check is not None and check.text.startswith(lead)
            assert check.text.removesuffix("…") in runbook_plain(hint.runbook) or check.text.endswith("…")
    for label in set(LABELS) - set(HINTS):
        assert check_for(label, facts_variants()[0]) is None


def test_dtls_stall_check_follows_the_path(tmp_path: Path) -> None:
    variants = {f.path_class: check_for("dtls_stall", f) for f in facts_variants()}
    assert variants["relay-udp"] is not None and variants["relay-udp"].text.startswith("Relayed over UDP through one")
    assert variants["relay-udp"].text.endswith("…") and len(variants["relay-udp"].text) <= 240
    assert variants["relay-tls"] is not None and variants["relay-tls"].text.startswith("All paths and regions at once")
    assert variants["srflx"] is not None and variants["srflx"].text.startswith("Direct (srflx/prflx)")


def test_the_readme_example_is_the_commands_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the README runs it from the repository's root
    readme = (REPO / "README.md").read_text()
    command = "$ .venv/bin/icewatch explain tests/fixtures/chromium/dtls_stall.json\n"
    shown = readme.split(command, 1)[1].split("\n```", 1)[0]
    result = CliRunner().invoke(main, ["explain", "tests/fixtures/chromium/dtls_stall.json"])
    assert result.exit_code == 0
    assert shown == result.output.rstrip("\n")


# ---- any report: explain never crashes, never lets capture text act on a terminal ---------------

URLS = st.sampled_from([STUN_EU, TURN_EU_UDP, TURNS_EU, TURN_USE_UDP, "turn:[2001:db8::1]:3478", "stun:x\x1b[31m",
                        "not a url", ""])
TIMES = st.floats(min_value=0, max_value=120).map(at)
TEXT = st.text(max_size=40)


@st.composite
def any_report(draw: st.DrawFn) -> CallReport:
    ids = [f"c{i}" for i in range(draw(st.integers(0, 5)))]
    candidates = [cand(i, draw(st.sampled_from(["host", "srflx", "prflx", "relay"])), draw(st.sampled_from(
        ["192.168.1.10", BERLIN_IP, "198.51.100.7", "198.51.100.130", "x.local", ""])),
        gathered=draw(st.none() | st.floats(0, 60)), url=draw(st.none() | URLS),
        relay_protocol=draw(st.none() | st.sampled_from(["udp", "tcp", "tls"])),
        related_address=draw(st.none() | st.just(BERLIN_IP)), remote=draw(st.booleans())) for i in ids]
    states = draw(st.lists(st.builds(lambda t, k, s: state(t, k, s), st.floats(0, 120),
                                     st.sampled_from(["ice", "dtls", "connection", "gathering"]),
                                     st.sampled_from(["new", "checking", "connecting", "connected", "completed",
                                                      "disconnected", "failed", "complete", "c\u202ed"])),
                           max_size=8))
    samples = draw(st.lists(st.builds(
        lambda start, rtt, dtls, ice, got, lost: Sample(start=at(start), end=at(start + 1), rtt_ms=rtt,
                                                        rtt_source="candidate-pair", dtls_state=dtls, ice_state=ice,
                                                        packets_received=got, packets_lost=lost),
        st.floats(0, 120), st.none() | st.floats(0, 2000), st.none() | st.sampled_from(["connecting", "connected",
                                                                                           "failed"]),
        st.none() | st.sampled_from(["checking", "connected", "failed"]), st.none() | st.integers(0, 500),
        st.none() | st.integers(-5, 50)), max_size=6))
    pairs = [pair(draw(st.sampled_from(ids)), draw(st.sampled_from(ids)), draw(st.floats(0, 60)))
             for _ in range(draw(st.integers(0, 2)))] if ids else []
    errors = [err(draw(URLS), draw(st.sampled_from([701, 401, 486, 0])), seconds=draw(st.none() | st.floats(0, 60)))
              for _ in range(draw(st.integers(0, 3)))]
    notes = [ReportNote(source=draw(st.sampled_from(["sdk", "reader"])), code=draw(st.sampled_from(["33005", "x"])),
                        text=draw(TEXT), at=draw(st.none() | TIMES)) for _ in range(draw(st.integers(0, 2)))]
    servers = draw(st.sampled_from([[], [IceServer(urls=[STUN_EU, TURN_EU_UDP])], [IceServer(urls=[TURNS_EU])]]))
    return make_report(candidates=candidates, states=states, samples=samples, selected_pairs=pairs,
                       candidate_errors=errors, notes=notes, ice_servers=servers, final=draw(st.booleans()))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(report=any_report())
def test_any_report_explains_with_evidence_for_every_problem(report: CallReport) -> None:
    env = FactsEnv.default()
    e = explain_report(report, env)
    text = render_text(e, "fuzz")
    json.dumps(explanation_json(e, "fuzz"))
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in text.replace("\n", ""))
    assert len(text.splitlines()) == text.count("\n") + 1
    problems = [label for label in e.facts.labels if label not in ("ok", "symmetric_nat_relay")]
    for label in problems:
        assert any(ev.label == label for ev in e.evidence), (label, e.evidence)
    assert {ev.label for ev in e.evidence} <= set(e.facts.labels)
    if e.facts.dtls_stall and not e.facts.dtls_failed:
        assert any(ev.threshold is not None and ev.threshold.setting == "dtls_stall_ms" for ev in e.evidence)


def test_a_connected_call_without_a_selected_pair_points_to_the_readers_note(tmp_path: Path) -> None:
    why = "Connected (ice state connected) but no selected candidate pair: none of its 3 getStats samples holds one"
    report = srflx_call(selected_pairs=[], notes=[ReportNote(source="reader", code="no-selected-pair", text=why,
                                                             at=at(0.5))])
    text, _ = explain_one(report, make_env(tmp_path))
    assert "path        no candidate pair was selected (the reader says why: see notes); gathered host, srflx, relay" \
        in text
    assert block(text, "notes") == [f"notes       reader no-selected-pair at +500 ms: {why}"]


def test_relay_distance_says_what_is_missing(tmp_path: Path) -> None:
    local = cand("r1", "relay", "198.51.100.131", url=TURN_EU_UDP, relay_protocol="udp", related_address=BERLIN_IP)
    report = relay_call(local)
    with_geo = make_env(tmp_path)
    text, _ = explain_one(report, FactsEnv(geo=with_geo.geo))  # a GeoIP database, no inventory
    assert "relay       distance unknown: no inventory of TURN servers (ICEWATCH_INVENTORY) to measure against" in text
    text, _ = explain_one(report, FactsEnv(inventory=with_geo.inventory))  # an inventory, no GeoIP database
    assert "relay       distance unknown: no client position (no GeoIP database, or no public client address)" in text
    facts = derive_call_facts(report, with_geo)
    text, _ = explain_one(report, with_geo)
    assert (f"relay       {units.km(facts.relay_distance_km)} from the client; nearest TURN server turn-eu-1 at "
            f"{units.km(facts.nearest_distance_km)}; client region eu") in text
