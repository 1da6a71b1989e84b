"""The alerts and runbooks of the built-in pages (dashboards/pages/handler.py), without a browser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alerts.rules import RUNBOOKS_DIR
from dashboards.pages.handler import Pages

ALERTS = [
    {"rule": "turn-server-down", "phase": "firing", "labels": {"tenant": "a", "turn_server": "t1"}},
    {"rule": "stun-unreachable", "phase": "pending", "labels": {"tenant": "b", "region": "eu"}},
    {"rule": "watchdog", "phase": "firing", "labels": {}},
]


def pages(keys: dict[str, str] | None = None, alerts: bool = True, runbooks: Path | None = RUNBOOKS_DIR) -> Pages:
    def source() -> list[dict[str, Any]]:
        return [dict(a) for a in ALERTS]

    return Pages(None, keys or {}, alerts=source if alerts else None, runbooks=runbooks)  # type: ignore[arg-type]


def get(p: Pages, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    answer = p.answer(path, "", headers or {})
    body = json.loads(answer.body) if answer.content_type == "application/json" else answer.body.decode()
    return answer.status, body


def test_without_keys_every_alert_is_listed() -> None:
    status, doc = get(pages(), "/api/alerts")
    assert status == 200 and doc["enabled"] and [a["rule"] for a in doc["alerts"]] == [a["rule"] for a in ALERTS]


def test_a_key_sees_its_apps_alerts_only_and_no_key_none() -> None:
    p = pages({"a": "key-a", "b": "key-b"})
    assert get(p, "/api/alerts")[0] == 401
    assert get(p, "/api/alerts", {"authorization": "Bearer wrong"})[0] == 401
    status, doc = get(p, "/api/alerts", {"authorization": "Bearer key-a"})
    assert status == 200 and [a["rule"] for a in doc["alerts"]] == ["turn-server-down"]
    status, doc = get(p, "/api/alerts", {"x-api-key": "key-b"})
    assert [a["labels"]["tenant"] for a in doc["alerts"]] == ["b"]


def test_without_an_evaluator_the_page_says_so() -> None:
    status, doc = get(pages(alerts=False), "/api/alerts")
    assert status == 200 and doc == {"enabled": False, "alerts": []}


def test_runbooks_are_served_escaped_and_nothing_else() -> None:
    status, page = get(pages(), "/runbooks/turn-server-down")
    assert status == 200 and "<pre># turn-server-down" in page and "<script" not in page
    for path in ("/runbooks/nope", "/runbooks/../README", "/runbooks/README", "/runbooks/Turn-server-down"):
        assert get(pages(), path)[0] == 404, path
    assert get(pages(runbooks=None), "/runbooks/turn-server-down")[0] == 404
