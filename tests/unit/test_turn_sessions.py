"""Session reconstruction from events, and the same facts assembled by ClickHouse (chDB) from
``turn_events`` rows through the materialized views of 0002_turn.sql."""

# ruff: noqa: E501, W291 - real-shaped coturn lines are long; coturn ends denied-peer lines with a space
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from collector.contract import TurnEvent
from collector.turn.coturn import CoturnParser
from collector.turn.sessions import reconstruct_sessions
from processors.rows.turn import rows_for_turn_event
from processors.store.chdb import ChdbSink

# E3 lines, shaped like research/turn_logs.md 1.4b (a TLS session, a denied peer, usage deltas)
LOG = """\
0: (1): INFO: log file opened: /var/log/turnserver/turn.log
0: (1): INFO: Coturn Version 4.6.2
812: (23): INFO: IPv4. tcp or tls connected to: 198.51.100.7:51234
812: (23): INFO: session 002000000000000041: realm <t.example> user <>: incoming packet message processed, error 401: Unauthorized
812: (23): ERROR: session 002000000000000042: check_stun_auth: user bob credentials are incorrect
812: (23): INFO: session 002000000000000042: realm <t.example> user <bob>: incoming packet message processed, error 401: Unauthorized
812: (23): INFO: IPv4. Local relay addr: 203.0.113.10:50001
812: (23): INFO: session 002000000000000041: new, realm=<t.example>, username=<1700003600:bob>, lifetime=600, cipher=TLS_AES_256_GCM_SHA384, method=TLSv1.3
812: (23): INFO: session 002000000000000041: realm <t.example> user <1700003600:bob>: incoming packet ALLOCATE processed, success
813: (23): INFO: session 002000000000000041: peer 198.51.100.99 lifetime updated: 300
813: (23): INFO: session 002000000000000041: realm <t.example> user <1700003600:bob>: incoming packet CREATE_PERMISSION processed, success
813: (23): ERROR: session 002000000000000041: A peer IP 10.1.2.3 denied in the range= 10.0.0.0-10.255.255.255 in server 2 
813: (23): INFO: session 002000000000000041: realm <t.example> user <1700003600:bob>: incoming packet CREATE_PERMISSION processed, error 403: Forbidden IP
813: (23): INFO: session 002000000000000041: realm <t.example> user <1700003600:bob>: incoming packet message processed, error 403: Forbidden IP
813: (23): INFO: session 002000000000000041: peer 198.51.100.99:40000 lifetime updated: 600
813: (23): INFO: session 002000000000000041: realm <t.example> user <1700003600:bob>: incoming packet CHANNEL_BIND processed, success
1112: (23): INFO: session 002000000000000041: refreshed, realm=<t.example>, username=<1700003600:bob>, lifetime=600, cipher=TLS_AES_256_GCM_SHA384, method=TLSv1.3
1112: (23): INFO: session 002000000000000041: realm <t.example> user <1700003600:bob>: incoming packet REFRESH processed, success
1200: (23): INFO: session 002000000000000041: usage: realm=<t.example>, username=<1700003600:bob>, rp=2100, rb=290000, sp=1996, sb=275000
1200: (23): INFO: session 002000000000000041: peer usage: realm=<t.example>, username=<1700003600:bob>, rp=1996, rb=260000, sp=2100, sb=270000
1400: (23): INFO: session 002000000000000041: TLS/TCP socket closed remotely 198.51.100.7:51234
1400: (23): INFO: session 002000000000000041: usage: realm=<t.example>, username=<1700003600:bob>, rp=800, rb=110000, sp=790, sb=105000
1400: (23): INFO: session 002000000000000041: peer usage: realm=<t.example>, username=<1700003600:bob>, rp=790, rb=100000, sp=800, sb=102000
1400: (23): INFO: session 002000000000000041: closed (2nd stage), user <1700003600:bob> realm <t.example> origin <>, local 203.0.113.10:5349, remote 198.51.100.7:51234, reason: TLS/TCP connection closed by client (callback)
1400: (23): INFO: session 002000000000000041: delete: realm=<t.example>, username=<1700003600:bob>
1400: (23): INFO: session 002000000000000041: peer 198.51.100.99 deleted
1460: (23): INFO: session 002000000000000042: usage: realm=<t.example>, username=<bob>, rp=3, rb=300, sp=3, sb=330
1460: (23): INFO: session 002000000000000042: closed (2nd stage), user <bob> realm <t.example> origin <>, local 203.0.113.10:3478, remote 198.51.100.8:4000, reason: allocation watchdog determined stale session state
0: (1): INFO: log file opened: /var/log/turnserver/turn.log
0: (1): INFO: Coturn Version 4.6.2
5: (23): INFO: session 002000000000000041: realm <t.example> user <>: incoming packet message processed, error 401: Unauthorized
"""

START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # the pure reconstruction's clock
# What the store gets: a whole hour two hours back (the store keeps TURN events 30 days and drops
# older rows on insert, so a fixed day would vanish from the tables a month later).
STORED_START = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)


def events(start: datetime = START) -> list[TurnEvent]:
    p = CoturnParser("turn-eu-1", b"k", region="eu")
    out: list[TurnEvent] = []
    off = 0
    for ln in LOG.splitlines(keepends=True):
        up = int(ln.split(":", 1)[0])
        res = p.parse(ln, source="1:2:0", offset=off, received_at=start + timedelta(seconds=up))
        off += len(ln.encode())
        assert isinstance(res, TurnEvent), ln
        out.append(res)
    return out


def test_reconstructed_sessions() -> None:
    sessions = reconstruct_sessions(events())
    assert [s.session_id for s in sessions] == ["002000000000000041", "002000000000000042", "002000000000000041"]
    a, b, again = sessions
    assert a.process_key != again.process_key  # same id, next process: another session
    assert a.realm == "t.example" and a.user_hash and len(a.user_hash) == 24
    assert a.transport == "tls"
    assert a.allocated and a.relay_address == "203.0.113.10:50001"
    assert a.auth_challenges == 1 and a.auth_rejected == 0
    assert a.error_codes == [403] and a.denied_peers == 1  # the duplicate message line is not counted
    assert a.permissions == ["198.51.100.99"] and a.channels == ["198.51.100.99:40000"]
    assert a.refreshes == 1
    assert a.client_bytes == 290000 + 275000 + 110000 + 105000  # usage lines are deltas: summed
    assert a.peer_bytes == 260000 + 270000 + 100000 + 102000
    assert a.close_reason == "TLS/TCP connection closed by client (callback)"
    assert a.listener_address == "203.0.113.10:5349" and a.client_address == "198.51.100.7:51234"
    assert a.started_at == START + timedelta(seconds=812) and a.ended_at == START + timedelta(seconds=1400)
    assert a.duration_s == 588
    assert not b.allocated and b.auth_rejected == 1 and b.error_codes == [401] and b.transport == "udp"
    assert again.auth_challenges == 1 and not again.allocated
    d: dict[str, Any] = a.to_dict()
    fields = {
        "session_id", "realm", "user_hash", "transport", "allocated", "error_codes", "auth_challenges",
        "auth_rejected", "denied_peers", "permissions", "channels", "client_bytes", "peer_bytes",
        "started_at", "ended_at", "close_reason",
    }  # fmt: skip
    assert set(fields) <= set(d)


def test_clickhouse_views_assemble_the_same_sessions(store: ChdbSink) -> None:
    evs = events(STORED_START)
    rows = [r for ev in evs for r in rows_for_turn_event(ev, "t1")["turn_events"]]
    store.insert("turn_events", rows, dedup_token="batch-1")
    store.insert("turn_events", rows, dedup_token="batch-1")  # a retried batch
    store.insert("turn_events", rows)  # the tailer replayed the same lines (same event ids)
    assert store.query("SELECT count() AS n FROM turn_events FINAL")[0]["n"] == len(evs)
    got = store.query(
        """SELECT session_id, process_key, max(transport) AS transport, max(allocated) AS allocated, max(deallocated) AS deallocated,
                  groupUniqArrayArray(error_codes) AS codes, uniqExactIfMerge(auth_challenges) AS challenges,
                  uniqExactIfMerge(auth_rejected) AS rejected, uniqExactIfMerge(denied_peers) AS denied,
                  groupUniqArrayArray(permissions) AS permissions, groupUniqArrayArray(channels) AS channels,
                  max(close_reason) AS close_reason, max(relay_address) AS relay, min(started_at) AS started
           FROM turn_sessions WHERE tenant = 't1'
           GROUP BY session_id, process_key ORDER BY started"""
    )
    want = {(s.process_key, s.session_id): s for s in reconstruct_sessions(evs)}
    assert {(r["process_key"], r["session_id"]) for r in got} == set(want)
    for row in got:
        s = want[(row["process_key"], row["session_id"])]
        assert row["transport"] == (s.transport or "")
        assert bool(row["allocated"]) == s.allocated and bool(row["deallocated"]) == s.deallocated
        assert sorted(row["codes"]) == sorted(s.error_codes)
        assert row["challenges"] == s.auth_challenges and row["rejected"] == s.auth_rejected
        assert row["denied"] == s.denied_peers
        assert sorted(row["permissions"]) == s.permissions and sorted(row["channels"]) == s.channels
        assert row["close_reason"] == (s.close_reason or "")
        assert row["relay"] == (s.relay_address or "")

    minutes = store.query(
        """SELECT minute, uniqExactMerge(lines) AS lines, uniqExactIfMerge(allocs_ok) AS ok,
                  uniqExactIfMerge(auth_rejected) AS rejected, uniqExactIfMerge(auth_challenges) AS challenges,
                  arraySum(x -> x.2, groupUniqArrayIfMerge(relayed_bytes)) AS relayed,
                  uniqExactIfMerge(sessions) AS sessions
           FROM turn_server_minute WHERE tenant = 't1' AND server_id = 'turn-eu-1'
           GROUP BY minute ORDER BY minute"""
    )
    by_minute = {m["minute"][11:16]: m for m in minutes}
    first_ok = f"{STORED_START + timedelta(seconds=812):%H:%M}"  # 812 s after the whole hour: HH:13
    assert by_minute[first_ok]["ok"] == 1
    assert by_minute[first_ok]["rejected"] == 1 and by_minute[first_ok]["challenges"] == 1
    # the replayed lines (same event ids) add nothing: bytes, counts and the heartbeat converge
    assert sum(m["relayed"] for m in minutes) == 260000 + 270000 + 100000 + 102000
    assert sum(m["ok"] for m in minutes) == 1
    assert sum(m["lines"] for m in minutes) == len(evs)
    summary = {(r["process_key"], r["session_id"]): r for r in store.query(
        "SELECT process_key, session_id, client_bytes, peer_bytes FROM turn_session_summary WHERE tenant = 't1'")}
    for key, s in want.items():
        assert (summary[key]["client_bytes"], summary[key]["peer_bytes"]) == (s.client_bytes, s.peer_bytes)
