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
             "misroute:eu:turn-apac-1@0+60", "udp-block:us-west@0+60"]


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
        lines += probe_lines(server, ENDED, r, server.id in cond.servers_auth_broken)
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
