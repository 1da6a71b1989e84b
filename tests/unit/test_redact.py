"""Dead letters keep no secrets: collector/redact.py on the shapes real SDK reports carry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.contract import MAX_DEAD_LETTER_RAW, dead_letter_raw
from collector.redact import REDACTED, redact_secrets

SDK_FIXTURES = Path(__file__).parent.parent / "fixtures" / "telnyx-sdk"


def test_plain_json_values_are_blanked_keys_kept() -> None:
    text = json.dumps({"iceServers": [{"urls": ["turn:t:3478"], "username": "1732:alice", "credential": "s3cr&t"}],
                       "login_token": "eyJhbGciOi", "Password": 'pa"ss', "hasCredential": True})
    out = redact_secrets(text)
    assert "1732:alice" not in out and "s3cr&t" not in out and "eyJhbGciOi" not in out and "ss" not in out.split(
        "Password")[1][:20]
    assert json.loads(out)["iceServers"][0] == {"urls": ["turn:t:3478"], "username": REDACTED, "credential": REDACTED}
    assert json.loads(out)["hasCredential"] is True


def test_escaped_json_inside_log_strings_is_blanked_at_any_depth() -> None:
    inner = json.dumps({"params": {"dialogParams": {"destination_number": "+14155550123",
                                                    "caller_id_number": "+493012345",
                                                    "iceServers": [{"credential": "pw-1"}]}}})
    twice = json.dumps({"logs": [{"message": json.dumps({"line": inner})}]})
    out = redact_secrets(twice)
    for secret in ("+14155550123", "+493012345", "pw-1"):
        assert secret not in out
    assert json.loads(json.loads(json.loads(out)["logs"][0]["message"])["line"])["params"]["dialogParams"][
        "destination_number"] == REDACTED


def test_numbers_sdp_passwords_and_a_value_cut_off_by_truncation() -> None:
    assert redact_secrets('{"token": 123456789}') == '{"token": 0}'
    sdp = json.dumps({"sdp": "v=0\r\na=ice-ufrag:6VNU\r\na=ice-pwd:6TBrRXp0oGQ0w0+G0HvTIUtq\r\n"})
    assert "6TBrRXp0" not in redact_secrets(sdp) and "a=ice-ufrag:6VNU" in redact_secrets(sdp)
    body = b'{"pad": "' + b"x" * (MAX_DEAD_LETTER_RAW - 30) + b'", "credential": "abcdefghijklmnopqrstuvwxyz"}'
    raw, truncated, size = dead_letter_raw(body)
    assert truncated and size == len(body) and "abcdefghij" not in raw and raw.endswith(REDACTED)


def test_an_escaped_backslash_at_a_value_end_blanks_more_never_less() -> None:
    out = redact_secrets(r'{"password": "ab\\", "next": "visible", "x": "y"}')
    assert "ab" not in out.split("password")[1]


@pytest.mark.parametrize("name", ["host.json", "relay_udp.json", "relay_tcp.json"])
def test_the_real_sdk_reports_keep_no_credentials_or_numbers(name: str) -> None:
    path = SDK_FIXTURES / name
    if not path.exists():
        pytest.fail(f"{path} is missing (committed fixture)")
    raw, _, _ = dead_letter_raw(path.read_bytes())
    for secret in ("testbed-secret", "testbed-callee", "testbed-caller"):
        assert secret not in raw, secret
    assert "a=ice-pwd:" not in raw or "a=ice-pwd:" + REDACTED in raw
