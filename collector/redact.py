"""Blank out secrets and personal data in the text of a rejected input before it is kept.

A dead letter keeps the start of what a client sent, for diagnosis. Some SDK reports carry what
must never be stored: the Telnyx SDK copies its TURN ``username``/``credential`` and the dialled
numbers into its report, in plain JSON and again JSON-escaped inside its ``logs`` lines, and SDP
carries ``a=ice-pwd``. Values of such keys are replaced by ``REDACTED`` wherever they appear, at any
escaping depth, also when the kept text ends inside a value. Pure text work; no parsing, so it
also covers inputs that were rejected because they do not parse.
"""

from __future__ import annotations

import re

REDACTED = "REDACTED"

# Keys whose values are secrets or personal data: case-insensitive, written snake_case here and
# matched with or without the underscores (the Telnyx SDK writes both caller_id_number and
# callerNumber, destination_number and destinationNumber).
SECRET_KEYS = (
    "password", "passwd", "credential", "secret", "token", "login_token", "access_token",
    "authorization", "api_key", "username",
    "caller_id_number", "caller_id_name", "callee_id_number", "callee_id_name",
    "remote_caller_id_number", "remote_caller_id_name", "destination_number",
    "caller_number", "caller_name", "callee_number", "callee_name",
    "remote_caller_number", "remote_caller_name",
)

_KEYS = "|".join(re.escape(k).replace("_", "_?") for k in SECRET_KEYS)
# "key": "value" with the quotes escaped any number of times (\" , \\\" ...): the same quote
# token (backslashes + quote) opens the key and, not preceded by another backslash, ends the value
# (a value ending in an escaped backslash runs on to a later quote: more is blanked, never less);
# the value may also be cut off by the end of the kept text.
_JSON_VALUE = re.compile(
    r'(?P<q>\\*")(?P<key>' + _KEYS + r')(?P=q)(?P<sep>\s*:\s*)(?P=q)(?P<value>.*?)(?=(?<!\\)(?P=q)|$)',
    re.IGNORECASE | re.DOTALL,
)
# Non-string values ("token": 12345, "username": null is left alone: it says nothing).
_JSON_NUMBER = re.compile(r'(?P<q>\\*")(?P<key>' + _KEYS + r')(?P=q)(?P<sep>\s*:\s*)(?P<value>-?\d[\d.eE+-]*)',
                          re.IGNORECASE)
# SDP's ICE password line, raw or inside an escaped JSON string (ends at \r, \n or a backslash).
_ICE_PWD = re.compile(r"(a=ice-pwd:)[^\r\n\\\"]*")


def redact_secrets(text: str) -> str:
    """``text`` with every secret value replaced by ``REDACTED`` (keys and structure kept)."""
    text = _JSON_VALUE.sub(lambda m: f"{m['q']}{m['key']}{m['q']}{m['sep']}{m['q']}{REDACTED}", text)
    text = _JSON_NUMBER.sub(lambda m: f"{m['q']}{m['key']}{m['q']}{m['sep']}0", text)
    return _ICE_PWD.sub(lambda m: m[1] + REDACTED, text)
