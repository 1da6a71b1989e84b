"""`icewatch alerts run` serves the built-in pages beside /metrics, so the links of its alerts
(ICEWATCH_ALERTS__EXTERNAL_URL + /alerts#rule, + /runbooks/id) lead somewhere: a real evaluator on
a migrated embedded store, asked over HTTP on the port it binds."""

from __future__ import annotations

import html
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from prometheus_client import CollectorRegistry

from alerts.cli import serve_evaluator
from alerts.evaluator import Evaluator
from alerts.metrics import EvaluatorCollector
from alerts.service import evaluator_for
from collector.errors import ConfigError
from collector.settings import Settings, load_settings
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate
from tests.http_server import free_port

KEY = "k" * 24


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Evaluator, Settings]]:
    tmp = tmp_path_factory.mktemp("evaluator")
    settings = load_settings(data_dir=tmp, metrics_port=free_port(), api_keys={"app1": KEY},
                             alerts={"external_url": "https://icewatch.example.com/"})
    sink = ChdbSink(tmp / "store")
    try:
        migrate(sink)
        evaluator = evaluator_for(settings, sink)
        registry = CollectorRegistry()
        registry.register(EvaluatorCollector(evaluator))
        server = serve_evaluator(settings, sink, evaluator, registry)
        assert server is not None
        try:
            yield f"http://127.0.0.1:{settings.metrics_port}", evaluator, settings
        finally:
            server.shutdown()
            server.server_close()
    finally:
        sink.close()


def get(url: str, key: str | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def test_every_alert_link_leads_to_a_page_the_evaluator_serves(served: tuple[str, Evaluator, Settings]) -> None:
    base, evaluator, _settings = served
    assert evaluator.rules
    for rule in evaluator.rules.values():
        for link in (f"{evaluator.external_url}/alerts#{rule.id}", f"{evaluator.external_url}/runbooks/{rule.runbook}"):
            parts = urlsplit(link)
            assert parts.netloc == "icewatch.example.com"
            status, _ctype, body = get(base + parts.path)
            assert status == 200, (link, body[:200])
            assert body.strip()
            if parts.path.startswith("/runbooks/"):
                text = (Path("alerts/runbooks") / f"{rule.runbook}.md").read_text()
                shown = body.decode().split("<pre>", 1)[1].rsplit("</pre>", 1)[0]
                assert html.unescape(shown) == text


def test_the_alerts_api_is_the_evaluators_own_and_takes_the_api_keys(served: tuple[str, Evaluator, Settings]) -> None:
    base, _evaluator, _settings = served
    status, _, _ = get(base + "/api/alerts")
    assert status == 401
    status, ctype, body = get(base + "/api/alerts", KEY)
    assert status == 200 and ctype.startswith("application/json")
    assert json.loads(body) == {"enabled": True, "alerts": []}  # a processor's pages say enabled: false


def test_metrics_and_the_dashboards_index_share_the_port(served: tuple[str, Evaluator, Settings]) -> None:
    base, evaluator, _settings = served
    status, _, body = get(base + "/metrics")
    assert status == 200 and f"icewatch_alerts_rules {float(len(evaluator.rules))}" in body.decode()
    status, ctype, _ = get(base + "/")
    assert status == 200 and ctype.startswith("text/html")
    assert get(base + "/healthz")[0] == 200


def test_a_taken_port_names_the_setting(served: tuple[str, Evaluator, Settings]) -> None:
    _base, evaluator, settings = served
    with pytest.raises(ConfigError, match="ICEWATCH_METRICS_PORT"):
        serve_evaluator(settings, evaluator.sink, evaluator, CollectorRegistry())


def test_port_zero_serves_nothing(served: tuple[str, Evaluator, Settings]) -> None:
    _base, evaluator, settings = served
    assert serve_evaluator(settings.model_copy(update={"metrics_port": 0}), evaluator.sink, evaluator,
                           CollectorRegistry()) is None
