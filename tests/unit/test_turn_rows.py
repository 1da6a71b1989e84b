"""TURN rows: client networks only (column and raw line); what the rollup flags count."""

from __future__ import annotations

from collector.contract import TurnEvent
from processors.rows.turn import client_host, rows_for_turn_event


def test_client_address_is_truncated_in_column_and_raw_line() -> None:
    raw = ("1: : session 001000000000000001: closed (2nd stage), user <h:ab> realm <r> origin <>, "
           "local 198.51.100.10:3478, remote 203.0.113.77:51234, reason: allocation timeout")
    ev = TurnEvent(event_id="e1", server_id="s", process_key="p", session_id="001000000000000001", kind="closed",
                   client_address="203.0.113.77:51234", listener_address="198.51.100.10:3478", raw=raw)
    [row] = rows_for_turn_event(ev)["turn_events"]
    assert row["client_address"] == "203.0.113.0"
    assert "203.0.113.77" not in row["raw"] and "remote 203.0.113.0:51234" in row["raw"]
    assert row["listener_address"] == "198.51.100.10:3478"


def test_client_host_forms() -> None:
    assert client_host("203.0.113.7:5") == "203.0.113.7"
    assert client_host("[2001:db8::1]:5") == "2001:db8::1"
    assert client_host("2001:db8::1") == "2001:db8::1"


def test_the_nonce_challenge_is_not_an_allocation_failure() -> None:
    from processors.rows.turn import turn_flags

    def req(code: int, user_present: bool) -> TurnEvent:
        return TurnEvent(event_id="e", server_id="s", process_key="p", kind="request", method="ALLOCATE",
                         success=False, error_code=code, user_present=user_present, raw="x")

    assert turn_flags(req(401, False))["is_alloc_failed"] == 0
    assert turn_flags(req(401, False))["is_auth_challenge"] == 1
    assert turn_flags(req(401, True))["is_alloc_failed"] == 1
    assert turn_flags(req(486, True))["is_alloc_failed"] == 1
