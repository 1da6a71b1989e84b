"""coturn line parser: every event kind in every prefix era, behind every wrapper; the real
lines of ../shared/corpus/coturn/real_lines.txt; restart detection; user-name privacy."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collector.contract import TurnEvent, stable_id
from collector.turn.coturn import CoturnParser, UnknownLine
from collector.turn.prefix import split_coturn, unwrap

KEY = b"test-key"
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
REF = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def parser() -> CoturnParser:
    return CoturnParser("turn-1", KEY, region="eu")


def one(line: str, p: CoturnParser | None = None, offset: int = 100) -> TurnEvent:
    res = (p or parser()).parse(line, source="f", offset=offset, received_at=REF)
    assert isinstance(res, TurnEvent), (line, res)
    return res


# ------------------------------------------------------------------------------- prefixes
ERAS = {
    "E1": lambda lvl, m: f"1318: {'ERROR: ' if lvl == 'ERROR' else ''}{m}",
    "E2": lambda lvl, m: f"1318: : {'ERROR: ' if lvl == 'ERROR' else ''}{m}",
    "E2-ts": lambda lvl, m: f"2021-05-11T10:00:00+0000: {'ERROR: ' if lvl == 'ERROR' else ''}{m}",
    "E3": lambda lvl, m: f"1318: (17): {lvl}: {m}",
    "E3-ts": lambda lvl, m: f"2023-06-06T13:40:55+0000(24): {lvl}: {m}",
    "E4": lambda lvl, m: f"2026-08-02T17:32:31.297-0700 {lvl} {m}",
    "E4-counter": lambda lvl, m: f"1318 {lvl} {m}",
}


@pytest.mark.parametrize("era", sorted(ERAS))
@pytest.mark.parametrize("level", ["INFO", "ERROR"])
def test_prefix_eras(era: str, level: str) -> None:
    line = ERAS[era](level, "session 001000000000000003: usage: realm=<r>, username=<u>, rp=1, rb=2, sp=3, sb=4")
    p = split_coturn(line)
    assert p is not None
    assert p.era == era.split("-")[0]
    assert p.level == level
    assert p.msg.startswith("session 001000000000000003: usage:")
    if era in ("E1", "E2", "E3", "E4-counter"):
        assert p.uptime == 1318 and p.at is None
    else:
        assert p.uptime is None and p.at is not None
    if era == "E4":
        assert p.at == datetime(2026, 8, 3, 0, 32, 31, 297000, tzinfo=UTC)


def test_empty_record_start_and_epoch_counter() -> None:
    p = split_coturn("0: : ")
    assert p is not None and p.era == "E2" and p.msg == ""
    p = split_coturn("1392819637: IPv4. Local relay addr: 1.2.3.4:5")  # rfc5766-turn-server epoch
    assert p is not None and p.uptime is None and p.at == datetime.fromtimestamp(1392819637, UTC)


WRAPPED = "245431: session 001000000000001750: delete: realm=<simplex.chat>, username=<private>"


@pytest.mark.parametrize(
    ("line", "wrapper", "host", "at"),
    [
        (f"May 18 06:37:28 localhost turnserver[1304473]: {WRAPPED}", "rfc3164", "localhost", (5, 18, 6, 37, 28)),
        (f"<14>May 18 06:37:28 localhost turnserver[7]: {WRAPPED}", "rfc3164", "localhost", (5, 18, 6, 37, 28)),
        (f"<14>May  8 06:37:28 turnserver[7]: {WRAPPED}", "rfc3164", None, (5, 8, 6, 37, 28)),
        (f"<14>1 2026-05-18T06:37:28.5Z h1 turnserver 7 - - {WRAPPED}", "rfc5424", "h1", (5, 18, 6, 37, 28)),
        (f'<14>1 2026-05-18T06:37:28Z h1 turnserver 7 ID1 [x@1 a="b\\]"] {WRAPPED}', "rfc5424", "h1", None),
        (f"2026-05-18T06:37:28+0000 host2 turnserver[9]: {WRAPPED}", "journald", "host2", (5, 18, 6, 37, 28)),
        (
            '{"__REALTIME_TIMESTAMP":"1779086248000000","_HOSTNAME":"h3","MESSAGE":"' + WRAPPED + '"}',
            "journald-json",
            "h3",
            None,
        ),
        (f"MESSAGE={WRAPPED}", "journald-export", None, None),
        (f"matrix_coturn     | {WRAPPED}", "docker", None, None),
        (f"coturn-1  | {WRAPPED}", "docker", None, None),
    ],
)
def test_wrappers(line: str, wrapper: str, host: str | None, at: tuple[int, ...] | None) -> None:
    w = unwrap(line, REF)
    assert w.wrapper == wrapper
    assert w.body == WRAPPED
    assert w.host == host
    if at is not None:
        assert w.at is not None and (w.at.month, w.at.day, w.at.hour, w.at.minute, w.at.second) == at
    ev = one(line)
    assert ev.kind == "allocation" and ev.reason == "delete" and ev.session_id == "001000000000001750"
    assert ev.uptime_s == 245431


def test_e4_level_word_is_not_taken_for_a_journald_host() -> None:
    w = unwrap("2026-08-02T17:32:31.297-0700 INFO handle_udp_packet: New UDP endpoint: local addr a:1, remote addr b:2")
    assert w.wrapper is None


def test_journald_export_record_time() -> None:
    p = parser()
    assert p.parse("__REALTIME_TIMESTAMP=1779086248000000", source="f", offset=0) is None
    assert p.parse("_HOSTNAME=h", source="f", offset=40) is None
    ev = one(f"MESSAGE={WRAPPED}", p, 60)
    assert ev.at == datetime.fromtimestamp(1779086248, UTC)


def test_bsd_syslog_year_rolls_back_in_january() -> None:
    w = unwrap("Dec 31 23:59:59 h turnserver: 1: x", datetime(2027, 1, 1, 0, 0, 5, tzinfo=UTC))
    assert w.at == datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(("ref", "at"), [
    (datetime(2028, 3, 1, tzinfo=UTC), datetime(2028, 2, 29, 12, tzinfo=UTC)),  # a leap year's own day
    (datetime(2029, 1, 2, tzinfo=UTC), datetime(2028, 2, 29, 12, tzinfo=UTC)),  # read in the next (common) year
    (datetime(2029, 3, 1, tzinfo=UTC), datetime(2028, 2, 29, 12, tzinfo=UTC)),
    (datetime(2028, 2, 28, 13, tzinfo=UTC), datetime(2028, 2, 29, 12, tzinfo=UTC)),  # under a day ahead: this year
    (datetime(2028, 1, 5, tzinfo=UTC), None),  # weeks ahead, and 2027 has no Feb 29: no time (it raised)
    (datetime(2027, 6, 1, tzinfo=UTC), None),  # neither 2027 nor 2026 has one
])
def test_bsd_syslog_feb_29_takes_the_leap_year_it_can_be_or_no_time(ref: datetime, at: datetime | None) -> None:
    line = "<134>Feb 29 12:00:00 h turnserver: 5: (23): INFO: session 001: closed"
    assert unwrap(line, ref).at == at
    # through the parser: an event (its time the receive time when the line's has no year), never a raise
    ev = parser().parse(line, source="syslog:h:-", offset=0, received_at=ref)
    assert isinstance(ev, TurnEvent) and ev.at == (at or ref)


# ------------------------------------------------------------------------------- kinds
S = "session 002000000000000041: "
U = "1700003600:bob"
KINDS: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "INFO",
        S + f"realm <turn.example.org> user <{U}>: incoming packet ALLOCATE processed, success",
        "request",
        {"method": "ALLOCATE", "success": True, "realm": "turn.example.org", "user_present": True},
    ),
    (
        "INFO",
        S + f"origin <https://a.example> realm <r> user <{U}>: incoming packet REFRESH processed, success",
        "request",
        {"method": "REFRESH", "success": True, "realm": "r"},
    ),
    (
        "INFO",
        S + "realm <r> user <>: incoming packet message processed, error 401: Unauthorized",
        "request",
        {"method": None, "error_code": 401, "user_present": False, "user_hash": "", "reason": "Unauthorized"},
    ),
    (
        "INFO",
        S + f"realm <r> user <{U}>: incoming packet message processed, error 401: Unauthorized",
        "request",
        {"error_code": 401, "user_present": True, "success": False},
    ),
    (
        "INFO",
        S + f"realm <r> user <{U}>: incoming packet ALLOCATE processed, error 486: Allocation Quota Reached",
        "request",
        {"method": "ALLOCATE", "error_code": 486, "reason": "Allocation Quota Reached"},
    ),
    (
        "INFO",
        S + f"realm <r> user <{U}>: incoming packet CREATE_PERMISSION processed, error 403: Forbidden IP",
        "request",
        {"method": "CREATE_PERMISSION", "error_code": 403},
    ),
    (
        "INFO",
        S + "realm <r> user <>: incoming packet BINDING processed, success",
        "request",
        {"method": "BINDING", "success": True, "user_present": False},
    ),
    (
        "INFO",
        S + f"new, realm=<r>, username=<{U}>, lifetime=600, cipher=TLS_AES_256_GCM_SHA384, method=TLSv1.3",
        "allocation",
        {"reason": "new", "lifetime_s": 600, "transport": "tls", "realm": "r"},
    ),
    (
        "INFO",
        S + f"new, realm=<r>, username=<{U}>, lifetime=600, cipher=ECDHE-RSA-AES256-SHA, method=DTLSv1.2",
        "allocation",
        {"reason": "new", "transport": "dtls"},
    ),
    (
        "INFO",
        S + f"refreshed, realm=<r>, username=<{U}>, lifetime=0",
        "allocation",
        {"reason": "refreshed", "lifetime_s": 0},
    ),
    ("INFO", S + f"delete: realm=<r>, username=<{U}>", "allocation", {"reason": "delete"}),
    (
        "INFO",
        S + "peer 198.51.100.99 lifetime updated: 300",
        "permission",
        {"peer_address": "198.51.100.99", "lifetime_s": 300},
    ),
    (
        "INFO",
        S + "peer 198.51.100.99:40000 lifetime updated: 600",
        "channel_bind",
        {"peer_address": "198.51.100.99:40000"},
    ),
    ("INFO", S + "peer 198.51.100.99 deleted", "permission", {"lifetime_s": 0, "reason": "deleted"}),
    (
        "INFO",
        S + f"usage: realm=<r>, username=<{U}>, rp=2100, rb=290000, sp=1996, sb=275000",
        "usage",
        {"rx_packets": 2100, "rx_bytes": 290000, "tx_packets": 1996, "tx_bytes": 275000},
    ),
    (
        "INFO",
        S + f"peer usage: realm=<r>, username=<{U}>, rp=1996, rb=260000, sp=2100, sb=270000",
        "peer_usage",
        {"rx_bytes": 260000, "tx_bytes": 270000},
    ),
    (
        "INFO",
        S + f"closed (2nd stage), user <{U}> realm <r> origin <>, local 203.0.113.10:5349, "
        "remote 198.51.100.7:51234, reason: TLS/TCP connection closed by client (callback)",
        "closed",
        {
            "listener_address": "203.0.113.10:5349",
            "client_address": "198.51.100.7:51234",
            "reason": "TLS/TCP connection closed by client (callback)",
            "transport": "tls",
        },
    ),
    (
        "INFO",
        S + "closed (2nd stage), user <> realm <r> origin <>, local 10.0.0.4:80, remote 2.3.4.5:19724, "
        "reason: TCP connection closed by client (callback)",
        "closed",
        {"transport": "tcp", "user_hash": ""},
    ),
    ("INFO", "IPv4. Local relay addr: 203.0.113.10:50001", "relay_address", {"relay_address": "203.0.113.10:50001"}),
    ("INFO", "IPv6. Local relay addr: [2001:db8::1]:50001", "relay_address", {"relay_address": "[2001:db8::1]:50001"}),
    (
        "ERROR",
        S + f"check_stun_auth: Cannot find credentials of user <{U}>",
        "auth_error",
        {"reason": "Cannot find credentials", "level": "ERROR"},
    ),
    (
        "ERROR",
        S + "check_stun_auth: user bob credentials are incorrect",
        "auth_error",
        {"reason": "credentials are incorrect"},
    ),
    ("ERROR", f"check_stun_auth: Cannot find credentials of user <{U}>", "auth_error", {"session_id": None}),
    (
        "ERROR",
        S + "A peer IP 10.1.2.3 denied in the range= 10.0.0.0-10.255.255.255 in server 2 ",
        "denied_peer",
        {"peer_address": "10.1.2.3", "reason": "in the range= 10.0.0.0-10.255.255.255"},
    ),
    (
        "ERROR",
        S
        + "A peer IP fe80::1 denied: link-local/unique-local/site-local scope is not a permitted "
        + "relay peer in server 3 ",
        "denied_peer",
        {"peer_address": "fe80::1"},
    ),
    ("ERROR", "A peer IP 127.0.0.5 denied in the range: 127.0.0.5", "denied_peer", {"peer_address": "127.0.0.5"}),
    (
        "INFO",
        "IPv4. tcp or tls connected to: 198.51.100.7:51234",
        "connection",
        {"client_address": "198.51.100.7:51234"},
    ),
    (
        "INFO",
        "handle_udp_packet: New UDP endpoint: local addr 172.31.1.100:3478, remote addr 37.1.2.3:22583",
        "connection",
        {"transport": "udp", "listener_address": "172.31.1.100:3478"},
    ),
    ("INFO", S + "TLS/TCP socket closed remotely 198.51.100.7:51234", "connection", {"transport": "tls"}),
    (
        "ERROR",
        S + "TCP socket error: Connection reset by peer 127.0.0.1:42928",
        "connection",
        {"transport": "tcp", "client_address": "127.0.0.1:42928"},
    ),
    (
        "INFO",
        S + "SSL shutdown received, socket to be closed: x (local 10.1.0.5:443, remote 82.19.114.105:49111)",
        "connection",
        {"listener_address": "10.1.0.5:443"},
    ),
    ("INFO", "Listener address to use: 127.0.0.1", "other", {}),
    ("INFO", "Coturn Version 4.17.1 'Dan Eider'", "process_start", {}),
]


@pytest.mark.parametrize("era", sorted(ERAS))
@pytest.mark.parametrize(("level", "msg", "kind", "fields"), KINDS, ids=[f"{k[2]}-{i}" for i, k in enumerate(KINDS)])
def test_every_kind_in_every_era(era: str, level: str, msg: str, kind: str, fields: dict[str, Any]) -> None:
    ev = one(ERAS[era](level, msg))
    assert ev.kind == kind
    for k, v in fields.items():
        assert getattr(ev, k) == v, k
    assert ev.server_id == "turn-1" and ev.region == "eu"
    if msg.startswith("session "):
        assert ev.session_id == "002000000000000041"
    assert "bob" not in ev.raw  # user names are hashed in raw too


def test_duplicate_message_line_after_a_failure() -> None:
    p = parser()
    lines = [
        S + "realm <r> user <u>: incoming packet message processed, error 438: Wrong nonce",
        S + "realm <r> user <u>: incoming packet REFRESH processed, error 437: Invalid allocation",
        S + "realm <r> user <u>: incoming packet message processed, error 437: Invalid allocation",
        S + "realm <r> user <u>: incoming packet message processed, error 438: Stale nonce",
    ]
    evs = [one(ln, p, i) for i, ln in enumerate(lines)]
    assert [e.kind for e in evs] == ["request", "request", "request_message", "request"]
    assert evs[2].method == "REFRESH"


def test_relay_address_attached_to_the_following_new_allocation() -> None:
    p = parser()
    one("1: : IPv4. Local relay addr: 10.0.1.193:38522", p, 0)
    one("1: : IPv4. Local reserved relay addr: 10.0.1.193:38523", p, 50)
    ev = one("1: : session 000000000000000007: new, realm=<r>, username=<u>, lifetime=600", p, 100)
    assert ev.relay_address == "10.0.1.193:38522"


def test_transport_inferred_for_close_lines() -> None:
    p = parser()
    one("0: : log file opened: /var/log/turn.log", p, 0)
    one("0: : Coturn Version 4.6.1", p, 40)  # the start of the process was seen
    one("5: : IPv4. tcp or tls connected to: 1.2.3.4:1000", p, 80)
    tcp = one(
        f"9: : {S}closed (2nd stage), user <u> realm <r> origin <>, local a:3478, remote 1.2.3.4:1000, "
        "reason: allocation timeout",
        p,
        120,
    )
    assert tcp.transport == "tcp"
    udp = one(
        "9: : session 000000000000000001: closed (2nd stage), user <u> realm <r> origin <>, local a:3478, "
        "remote 5.6.7.8:2000, reason: allocation timeout",
        p,
        200,
    )
    assert udp.transport == "udp"
    one("9: : session 000000000000000002: new, realm=<r>, username=<u>, lifetime=600, cipher=X, method=TLSv1.2", p, 300)
    tls = one("9: : session 000000000000000002: usage: realm=<r>, username=<u>, rp=1, rb=1, sp=1, sb=1", p, 350)
    assert tls.transport == "tls"


def test_transport_unknown_when_the_process_start_was_not_seen() -> None:
    ev = one(
        f"900: : {S}closed (2nd stage), user <u> realm <r> origin <>, local a:3478, remote 5.6.7.8:2000, "
        "reason: allocation timeout"
    )
    assert ev.transport is None


# ------------------------------------------------------------------------------- process key
CHALLENGE = "session 001000000000000001: realm <r> user <>: incoming packet message processed, error 401: Unauthorized"


def test_process_key_changes_at_restart_by_banner_and_by_counter_reset() -> None:
    p = parser()
    lines = [
        "0: : log file opened: /var/log/turn.log",
        "0: : ",
        "Version Coturn-4.6.1 'Gorst'",
        "5: : " + CHALLENGE,
        "90: : session 001000000000000001: usage: realm=<r>, username=<u>, rp=1, rb=2, sp=3, sb=4",
        "0: : log file opened: /var/log/turn.log",  # counter reset: a new process
        "0: : ",
        "RFC 3489/5389/5766/5780/6062/6156 STUN/TURN Server",
        "Version Coturn-4.6.1 'Gorst'",
        "3: : " + CHALLENGE,
    ]
    offsets = []
    keys = []
    off = 0
    for ln in lines:
        offsets.append(off)
        ev = one(ln, p, off)
        keys.append(ev.process_key)
        off += len(ln) + 1
    assert keys[0] == keys[4] == "f@0"
    assert keys[5] == keys[9] == f"f@{offsets[5]}"
    assert [one(x).kind for x in ("Version Coturn-4.6.1 'Gorst'",)] == ["process_start"]


def test_log_reopen_is_not_a_restart_but_a_banner_is() -> None:
    p = parser()
    a = one(
        "2026-11-23T00:04:18+0000: session 001000000000000001: usage: realm=<r>, username=<u>, rp=1, rb=1, sp=1, sb=1",
        p,
        0,
    )
    b = one("2026-11-23T00:05:00+0000: log file opened: /tmp/t.log", p, 200)  # SIGHUP reopen
    c = one(
        "2026-11-23T00:05:01+0000: session 001000000000000002: usage: realm=<r>, username=<u>, rp=1, rb=1, sp=1, sb=1",
        p,
        300,
    )
    assert a.process_key == b.process_key == c.process_key
    d = one("2026-11-23T00:09:00.000+0000 INFO Coturn Version 4.17.1", p, 500)
    assert d.kind == "process_start" and d.process_key == "f@500"


def test_state_round_trip_keeps_process_and_duplicate_tracking() -> None:
    p = parser()
    one("0: : Coturn Version 4.6.1", p, 0)
    one(S + "realm <r> user <u>: incoming packet ALLOCATE processed, error 508: Cannot create socket", p, 10)
    q = parser()
    q.restore(p.state())
    ev = one(S + "realm <r> user <u>: incoming packet message processed, error 508: Cannot create socket", q, 20)
    assert ev.kind == "request_message" and ev.process_key == "f@0"


# ------------------------------------------------------------------------------- unknown, privacy
def test_unknown_lines_are_counted_and_sampled_never_fatal() -> None:
    p = parser()
    p.parse(
        "0: : session 001000000000000001: usage: realm=<r>, username=<u>, rp=1, rb=1, sp=1, sb=1", source="f", offset=0
    )
    res = p.parse(
        "[info] Accepting long-term STUN/TURN authentication [UDP, session x, user <alice>]", source="f", offset=9
    )
    assert isinstance(res, UnknownLine)
    assert "alice" not in res.raw
    assert p.parse("", source="f", offset=20) is None
    assert p.parse("\x00\xff garbage", source="f", offset=30) is not None
    assert p.stats.unknown == 2 and len(p.stats.unknown_samples) == 2 and p.stats.skipped == 1


def test_user_names_are_keyed_hashes() -> None:
    line = f"1: : {S}realm <r> user <{U}>: incoming packet ALLOCATE processed, success"
    a = one(line)
    b = CoturnParser("turn-1", b"other-key").parse(line, source="f", offset=0)
    assert isinstance(b, TurnEvent)
    assert a.user_hash and re.fullmatch(r"[0-9a-f]{24}", a.user_hash)
    assert a.user_hash != b.user_hash
    assert U not in a.raw and f"<h:{a.user_hash}>" in a.raw
    assert a.event_id == one(line).event_id == stable_id("turn-1", "f", 100)  # server + source + offset


# ------------------------------------------------------------------------------- real lines
def _expected_kind(msg: str) -> str | None:
    """An independent reading of what each real line is (by its wording)."""
    rules = [
        ("Accepting long-term", None),
        ("Creating TURN allocation", None),
        ("incoming packet message processed, error", "request"),  # or request_message (checked below)
        ("incoming packet", "request"),
        (": new, realm", "allocation"),
        (": refreshed, realm", "allocation"),
        (": delete: ", "allocation"),
        ("lifetime updated: 600", "channel_bind"),
        ("lifetime updated", "permission"),
        (" deleted", "permission"),
        ("peer usage:", "peer_usage"),
        (": usage:", "usage"),
        ("closed (2nd stage)", "closed"),
        ("Local relay addr", "relay_address"),
        ("check_stun_auth", "auth_error"),
        ("denied in the range", "denied_peer"),
        ("tcp or tls connected", "connection"),
        ("New UDP endpoint", "connection"),
        ("socket closed remotely", "connection"),
        ("socket disconnected", "connection"),
        ("SSL shutdown received", "connection"),
    ]
    for needle, kind in rules:
        if needle in msg:
            return kind
    return "other"


def test_every_real_line_parses_to_the_right_kind() -> None:
    path = CORPUS / "coturn" / "real_lines.txt"
    if not path.exists():
        pytest.skip(f"corpus not present at {path}")
    p = parser()
    off = 0
    seen: set[str] = set()
    n = 0
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            off += len(raw) + 1
            continue
        n += 1
        res = p.parse(raw, source="corpus", offset=off, received_at=REF)
        off += len(raw) + 1
        want = _expected_kind(raw)
        if want is None:  # eturnal lines: not coturn
            assert isinstance(res, UnknownLine), raw
            assert "1732942469:0130366f6d7b39e4" not in res.raw  # the user name is hashed even here
            continue
        assert isinstance(res, TurnEvent), raw
        got = res.kind
        if want == "request" and got == "request_message":
            got = "request"
        assert got == want, raw
        if "handle_turn_command" in raw or "new Allocation:" in raw:
            assert res.kind == "other"
        assert "@plague-doctor" not in res.raw and "<private>" not in res.raw
        seen.add(res.kind)
    assert n > 100
    assert seen >= {
        "request", "request_message", "allocation", "permission", "channel_bind", "usage",
        "peer_usage", "closed", "relay_address", "auth_error", "connection", "other",
    }  # fmt: skip
