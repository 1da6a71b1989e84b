"""The simulated fleet: seeded and reproducible, reports the parsers accept, coturn lines the parser
knows, incidents written and read back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.contract import TurnEvent
from collector.inventory import load_inventory
from collector.reports import UploadContext, parse_upload
from collector.reports.window import check_queryable
from collector.simulator.coturn_log import call_lines, probe_lines
from collector.simulator.incidents import Conditions, conditions_at, parse_incident
from collector.simulator.plan import Fleet
from collector.simulator.run import upload
from collector.turn.coturn import CoturnParser

INVENTORY = load_inventory(Path(__file__).resolve().parents[2] / "deploy" / "inventory.example.yaml")
ENDED = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
INCIDENTS = ["turn-down:turn-eu-1@0+60", "turn-auth:turn-us-east-1@0+60", "stun-blocked:apac@0+60",
             "misroute:eu:turn-apac-1@0+60", "udp-block:us-west@0+60", "dtls-block:us-east@0+60",
             "turn-quota:turn-us-west-1@0+60"]


def conditions(spec: str | None) -> Conditions:
    return conditions_at((parse_incident(spec),), 1.0) if spec else Conditions()


def test_same_seed_same_calls_reports_and_lines() -> None:
    a, b, c = Fleet(INVENTORY, 5), Fleet(INVENTORY, 5), Fleet(INVENTORY, 6)
    for i in range(50):
        pa, pb = a.plan(i, ENDED, Conditions()), b.plan(i, ENDED, Conditions())
        assert pa == pb
        assert upload(pa) == upload(pb) and call_lines(pa) == call_lines(pb)
    assert [a.plan(i, ENDED, Conditions()) for i in range(50)] != [c.plan(i, ENDED, Conditions()) for i in range(50)]


def test_the_fleet_has_the_mix_it_promises() -> None:
    fleet = Fleet(INVENTORY, 1)
    plans = [fleet.plan(i, ENDED, Conditions()) for i in range(2000)]
    paths = {p.path for p in plans}
    assert {"host", "srflx", "relay-udp", "relay-tcp", "relay-tls", "failed"} <= paths
    assert {p.fmt for p in plans} == {"w3c", "telnyx"} and len({p.region for p in plans}) == 4
    relayed = sum(p.relayed for p in plans) / len(plans)
    assert 0.2 < relayed < 0.45
    assert 0 < sum(p.configured.region != p.region for p in plans) / len(plans) < 0.05  # distant TURN, sometimes
    assert sum(p.dtls_stall for p in plans) > 0


@pytest.mark.parametrize("spec", [None, *INCIDENTS])
def test_every_report_is_accepted_by_the_parsers_and_the_http_window(spec: str | None) -> None:
    fleet = Fleet(INVENTORY, 3)
    now = datetime.now(UTC)
    for i in range(120):
        plan = fleet.plan(i, now - timedelta(minutes=1), conditions(spec))
        path, body, headers = upload(plan)
        ctx = UploadContext(client_address=headers["x-forwarded-for"], format_hint="telnyx" if plan.fmt == "telnyx"
                            else None, call_id_hint=headers.get("x-call-id"))
        [report] = parse_upload(body, ctx)
        check_queryable(report, now)
        assert report.call_id == plan.call_id and report.source_format == plan.fmt
        assert path == ("/call_report" if plan.fmt == "telnyx" else "/v1/call-reports")


@pytest.mark.parametrize("spec", [None, *INCIDENTS])
def test_every_coturn_line_parses_to_a_known_kind(spec: str | None) -> None:
    fleet = Fleet(INVENTORY, 3)
    cond = conditions(spec)
    lines = [line for i in range(300) for line in call_lines(fleet.plan(i, ENDED, cond))]
    for r, server in enumerate(fleet.turn_servers):
        lines += probe_lines(server, ENDED, r, server.id in cond.servers_auth_broken,
                             server.id in cond.servers_quota_full)
    parser = CoturnParser("turn-x", b"k")
    kinds = set()
    for offset, line in enumerate(lines):
        event = parser.parse(line, source="sim", offset=offset, received_at=ENDED)
        assert isinstance(event, TurnEvent), line
        assert event.kind != "other", line
        kinds.add(event.kind)
    assert {"request", "allocation", "relay_address", "permission", "usage", "peer_usage", "closed"} <= kinds
    if spec and spec.startswith("turn-auth"):
        assert "auth_error" in kinds
    if spec and spec.startswith("turn-quota"):
        assert "request_message" in kinds  # coturn repeats a failed request's error on a `message` line


def test_incident_specs_are_checked() -> None:
    inc = parse_incident("misroute:eu:turn-apac-1@30+45")
    assert (inc.kind, inc.args, inc.active(29), inc.active(30), inc.active(75)) == (
        "misroute", ("eu", "turn-apac-1"), False, True, False)
    for bad in ("turn-down@1+2", "teleport:eu@1+2", "misroute:eu@1+2", "turn-down:x@-1+2", "turn-down:x"):
        with pytest.raises(ValueError, match=r"expected|takes"):
            parse_incident(bad)


def test_a_server_that_is_down_writes_no_line_and_fails_its_probes() -> None:
    from collector.simulator.probes import probe_results

    fleet = Fleet(INVENTORY, 2)
    cond = conditions("turn-down:turn-eu-1@0+60")
    results = probe_results(fleet.inventory, ENDED, cond, 0, 2)
    assert {r.server_id for r in results if not r.success} == {"turn-eu-1"}
    assert all(r.vantage.startswith("simulated") for r in results)
    plans = [fleet.plan(i, ENDED, cond) for i in range(300)]
    down = [p for p in plans if p.configured.id == "turn-eu-1"]
    assert down and not any(p.relayed for p in down)
    assert all((u, 701) in p.errors for p in down for u in p.urls)
    json.dumps([upload(p)[2] for p in down])  # headers are plain strings


def test_new_incident_kinds_are_written_and_their_targets_checked() -> None:
    from collector.simulator.run import Simulator, SimulatorConfig

    assert conditions("dtls-block:us-east@0+60").regions_dtls_blocked == {"us-east"}
    assert conditions("turn-quota:turn-us-west-1@0+60").servers_quota_full == {"turn-us-west-1"}
    assert str(parse_incident("turn-quota:turn-eu-1@5+10")) == "turn-quota:turn-eu-1@5+10"
    for bad in ("dtls-block:mars@0+60", "turn-quota:turn-mars-1@0+60"):
        with pytest.raises(ValueError, match="unknown incident target"):
            Simulator(INVENTORY, SimulatorConfig(url="http://127.0.0.1:9", incidents=(parse_incident(bad),)))


def _same_but(a: object, b: object, *fields: str) -> bool:
    from dataclasses import asdict

    da, db = asdict(a), asdict(b)  # type: ignore[call-overload]
    return {k: v for k, v in da.items() if k not in fields} == {k: v for k, v in db.items() if k not in fields}


def test_dtls_block_stalls_the_regions_udp_paths_only() -> None:
    from collector.simulator.render import w3c_report

    fleet = Fleet(INVENTORY, 7)
    cond = conditions("dtls-block:us-east@0+60")
    base = [fleet.plan(i, ENDED, Conditions()) for i in range(600)]
    hit = [fleet.plan(i, ENDED, cond) for i in range(600)]
    stalled_paths = set()
    for b, h in zip(base, hit, strict=True):
        assert _same_but(b, h, "dtls_stall")  # ICE, paths, relays, errors: all as before
        # other regions, failed calls, and TURN TCP/TLS relays (DTLS inside their stream) as before
        if h.region != "us-east" or h.path in ("failed", "relay-tcp", "relay-tls"):
            assert h.dtls_stall == b.dtls_stall
        else:
            assert h.dtls_stall
            stalled_paths.add(h.path)
    assert {"srflx", "relay-udp"} <= stalled_paths
    east = [h for h in hit if h.region == "us-east" and h.dtls_stall and h.fmt == "w3c"]
    events = w3c_report(east[0])["events"]
    dtls = [e["state"] for e in events if e["type"] == "dtlsstatechange"]
    ice = [e["state"] for e in events if e["type"] == "iceconnectionstatechange"]
    assert dtls == ["connecting"] and "connected" in ice
    relayed = [h for h in east if h.path == "relay-udp"]
    assert relayed and all(_session_media(call_lines(h)) == 0 for h in relayed)  # allocated, no media


def _session_media(lines: list[str]) -> int:
    parser = CoturnParser("turn-x", b"k")
    total = 0
    for n, line in enumerate(lines):
        ev = parser.parse(line, source="s", offset=n, received_at=ENDED)
        if isinstance(ev, TurnEvent) and ev.kind == "peer_usage":
            total += (ev.rx_bytes or 0) + (ev.tx_bytes or 0)
    return total


def test_turn_quota_refuses_allocations_after_the_challenge() -> None:
    from collector.simulator.probes import probe_results
    from collector.simulator.render import w3c_report
    from processors.rows.turn import turn_flags

    fleet = Fleet(INVENTORY, 7)
    cond = conditions("turn-quota:turn-us-west-1@0+60")
    base = [fleet.plan(i, ENDED, Conditions()) for i in range(600)]
    hit = [fleet.plan(i, ENDED, cond) for i in range(600)]
    codes = set()
    for b, h in zip(base, hit, strict=True):
        if h.configured.id != "turn-us-west-1":
            assert h == b and h.alloc_refused is None
            continue
        assert h.alloc_refused in (486, 508) and not h.relayed
        codes.add(h.alloc_refused)
        turn_urls = [u for u in h.urls if u.startswith("turn")]
        assert set(h.errors) == {(u, h.alloc_refused) for u in turn_urls}  # STUN still answers
        if b.path == "srflx":
            assert h.path == "srflx"  # a cone NAT connects directly
        if b.path == "relay-udp" and b.nat == "symmetric":
            assert h.path == "failed"
    assert codes == {486, 508}
    refused = next(h for h in hit if h.alloc_refused and h.fmt == "w3c")
    errors = [e for e in w3c_report(refused)["events"] if e["type"] == "icecandidateerror"]
    assert errors and {e["errorCode"] for e in errors} == {refused.alloc_refused}
    assert {e["errorText"] for e in errors} <= {"Allocation Quota Reached", "Cannot create socket"}
    # the server's log: the challenge, then the ALLOCATE refused (a failed allocation, not a rejection)
    parser = CoturnParser("turn-us-west-1", b"k")
    events = [parser.parse(line, source="s", offset=n, received_at=ENDED) for n, line in enumerate(call_lines(refused))]
    flags = [turn_flags(e) for e in events if isinstance(e, TurnEvent)]
    assert sum(f["is_auth_challenge"] for f in flags) == 1
    assert sum(f["is_alloc_failed"] for f in flags) == 1 and sum(f["is_alloc_ok"] for f in flags) == 0
    assert sum(f["is_auth_rejected"] for f in flags) == 0
    server = INVENTORY.server("turn-us-west-1")
    assert server is not None
    probe = [parser.parse(line, source="p", offset=n, received_at=ENDED)
             for n, line in enumerate(probe_lines(server, ENDED, 2, False, full=True))]
    assert {e.error_code for e in probe if isinstance(e, TurnEvent) and e.method == "ALLOCATE"} == {508}
    # its probes: TURN Allocate answered 486/508 (with a latency: the server answered), STUN fine
    results = [r for r in probe_results(INVENTORY, ENDED, cond, 0, 7) if r.server_id == "turn-us-west-1"]
    allocate = [r for r in results if r.kind == "turn_allocate"]
    assert allocate and all(not r.success and r.error_code == 486 and r.latency_ms is not None for r in allocate)
    assert all(r.success for r in results if r.kind == "stun_binding")
    others = [r for r in probe_results(INVENTORY, ENDED, cond, 0, 7) if r.server_id != "turn-us-west-1"]
    assert all(r.success for r in others)
