"""The built-in dashboard pages, framework free: one ``Pages.answer(path, query, headers)`` for every
GET, used by the Starlette routes (routes.py) and the processor's stdlib health server alike.

  /                                  the index of dashboards (page shell)
  /d/{uid}                           a dashboard (page shell; app.js renders it from the model)
  /api/dashboards                    [{uid, title, description, tags}]
  /api/dashboards/{uid}              the model as JSON
  /api/dashboards/{uid}/panels/{key}?from=&to=&var-NAME=v&var-NAME=v2     the panel's data
  /api/dashboards/{uid}/variables/{name}?from=&to=&var-...                 a variable's values
  /alerts                            pending and firing alerts (page shell; the generatorURL of an alert)
  /api/alerts                        [{rule, title, phase, labels, since, summary, runbook}] (a key's app only)
  /runbooks/{id}                     an alert rule's runbook (alerts/runbooks/{id}.md, as text)
  /static/pages/{app.js,app.css}     the page's own code
  /static/uplot/{uPlot.iife.min.js,uPlot.min.css}   the chart library (deploy/local/npm_assets.sh dashboards/pages)

Auth is the query API's: with API keys configured the data endpoints (panels, variables) need a key
(``Authorization: Bearer``, or ``X-API-Key``) and read the key's app only (``var-tenant`` is forced
to it; asking for another is 403). The shell, the models and the static files carry no data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from prometheus_client import CollectorRegistry

from collector.auth import app_for_key, key_from_headers
from collector.errors import InvalidInput, NotPermitted, StoreError, Unavailable
from dashboards.model import Dashboard
from dashboards.pages.data import panel_data, time_range, variable_values
from processors.store.sink import Sink

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
UPLOT_DIST = HERE / "node_modules" / "uplot" / "dist"
STATIC_FILES: Mapping[str, tuple[Path, str]] = {
    "/static/pages/app.js": (STATIC / "app.js", "text/javascript; charset=utf-8"),
    "/static/pages/app.css": (STATIC / "app.css", "text/css; charset=utf-8"),
    "/static/uplot/uPlot.iife.min.js": (UPLOT_DIST / "uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "/static/uplot/uPlot.min.css": (UPLOT_DIST / "uPlot.min.css", "text/css; charset=utf-8"),
}
MAX_QUERY_FIELDS = 256
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
SHELL_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
             "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

_DATA = re.compile(r"^/api/dashboards/([A-Za-z0-9_-]{1,64})/(panels|variables)/([A-Za-z0-9_.-]{1,64})$")
_MODEL = re.compile(r"^/api/dashboards/([A-Za-z0-9_-]{1,64})$")
_PAGE = re.compile(r"^/d/([A-Za-z0-9_-]{1,64})/?$")
_RUNBOOK = re.compile(r"^/runbooks/([a-z][a-z0-9-]{1,62})$")
AlertsSource = Callable[[], list[dict[str, Any]]]  # the evaluator's pending and firing alerts


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def parts(self) -> tuple[int, str, bytes, dict[str, str]]:
        return self.status, self.content_type, self.body, self.headers


def _json(status: int, doc: Any, **headers: str) -> Answer:
    body = json.dumps(doc, default=str, allow_nan=False).encode()
    return Answer(status, "application/json", body, {"Cache-Control": "no-store", **SECURITY_HEADERS, **headers})


def _error(status: int, message: str, path: str | None = None, **headers: str) -> Answer:
    doc: dict[str, Any] = {"error": message}
    if path:
        doc["path"] = path
    return _json(status, doc, **headers)


def shell(title: str, root: str, uid: str = "", view: str = "") -> bytes:
    """The one HTML page: app.js renders the index or a dashboard into it. ``root``: the relative
    way back to the pages' root, so the pages work under a reverse proxy's prefix too."""
    r = html.escape(root, quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{html.escape(title)} · icewatch</title>
<link rel="stylesheet" href="{r}static/uplot/uPlot.min.css">
<link rel="stylesheet" href="{r}static/pages/app.css">
<script src="{r}static/uplot/uPlot.iife.min.js" defer></script>
<script src="{r}static/pages/app.js" defer></script>
</head>
<body data-root="{r}" data-uid="{html.escape(uid, quote=True)}" data-view="{html.escape(view, quote=True)}">
<header class="topbar"><a class="brand" href="{r}">icewatch</a><span class="crumb" id="crumb"></span></header>
<main id="app" aria-live="polite"><p class="loading">Loading…</p></main>
<noscript>These dashboards need JavaScript.</noscript>
</body>
</html>
""".encode()


def model_json(d: Dashboard) -> dict[str, Any]:
    doc = dataclasses.asdict(d)
    for row in doc["rows"]:
        for p in row["panels"]:
            p["source"] = "metric" if p["metric"] else "sql"
    return doc


class Pages:
    """Every GET of the pages. ``registries``: this process's Prometheus registries (metric panels);
    ``dashboards``: those of dashboards/catalog.py unless given."""

    def __init__(self, sink: Sink, api_keys: Mapping[str, str], dashboards: Sequence[Dashboard] | None = None,
                 registries: Sequence[CollectorRegistry] = (), alerts: AlertsSource | None = None,
                 runbooks: Path | None = None) -> None:
        if dashboards is None:
            from dashboards.catalog import DASHBOARDS

            dashboards = DASHBOARDS
        self.sink = sink
        self.api_keys = dict(api_keys)
        self.dashboards = {d.uid: d for d in dashboards}
        self.order = [d.uid for d in dashboards]
        self.registries = list(registries)
        self.alerts = alerts
        self.runbooks = runbooks

    def answer(self, path: str, query: str, headers: Mapping[str, str],
               registries: Sequence[CollectorRegistry] = ()) -> Answer:
        """``headers`` with lower-case names; ``registries``: more registries for this request."""
        if path == "/":
            return Answer(200, "text/html; charset=utf-8", shell("Dashboards", "./"),
                          {"Cache-Control": "no-cache", "Content-Security-Policy": SHELL_CSP, **SECURITY_HEADERS})
        m = _PAGE.match(path)
        if m is not None:
            d = self.dashboards.get(m.group(1))
            # an unknown uid gets the shell too (404): the page says what is missing
            return Answer(200 if d else 404, "text/html; charset=utf-8",
                          shell(d.title if d else "Not found", "../", m.group(1)),
                          {"Cache-Control": "no-cache", "Content-Security-Policy": SHELL_CSP, **SECURITY_HEADERS})
        if path in STATIC_FILES:
            return self._static(path, headers.get("if-none-match", ""))
        if path == "/alerts":
            return Answer(200, "text/html; charset=utf-8", shell("Alerts", "./", view="alerts"),
                          {"Cache-Control": "no-cache", "Content-Security-Policy": SHELL_CSP, **SECURITY_HEADERS})
        if path == "/api/alerts":
            return self._alerts(headers)
        m = _RUNBOOK.match(path)
        if m is not None:
            return self._runbook(m.group(1))
        if path == "/api/dashboards":
            return _json(200, {"auth": bool(self.api_keys), "dashboards": [
                {"uid": u, "title": self.dashboards[u].title, "description": self.dashboards[u].description,
                 "tags": list(self.dashboards[u].tags)} for u in self.order]})
        m = _MODEL.match(path)
        if m is not None:
            d = self.dashboards.get(m.group(1))
            if d is None:
                return _error(404, f"no dashboard {m.group(1)!r}")
            return _json(200, {"auth": bool(self.api_keys), "dashboard": model_json(d)})
        m = _DATA.match(path)
        if m is not None:
            return self._data(m.group(1), m.group(2), m.group(3), query, headers, registries)
        return _error(404, "not found")

    def _alerts(self, headers: Mapping[str, str]) -> Answer:
        if self.api_keys:
            tenant = app_for_key(self.api_keys, key_from_headers(headers))
            if tenant is None:
                return _error(401, "missing or invalid API key (Authorization: Bearer <key> or X-API-Key)",
                              **{"WWW-Authenticate": 'Bearer realm="icewatch"'})
        if self.alerts is None:
            return _json(200, {"enabled": False, "alerts": []})
        alerts = self.alerts()
        if self.api_keys:  # a key sees its app's alerts (the watchdog has no tenant: operators only)
            alerts = [a for a in alerts if a.get("labels", {}).get("tenant") == tenant]
        return _json(200, {"enabled": True, "alerts": alerts})

    def _runbook(self, rule_id: str) -> Answer:
        path = self.runbooks / f"{rule_id}.md" if self.runbooks else None
        if path is None or not path.is_file():
            return _error(404, f"no runbook {rule_id!r}")
        text = html.escape(path.read_text(encoding="utf-8"))
        body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Runbook {rule_id} · icewatch'
                f'</title><link rel="stylesheet" href="../static/pages/app.css"></head><body>'
                f'<header class="topbar"><a class="brand" href="../">icewatch</a>'
                f'<a class="crumb" href="../alerts">alerts</a></header>'
                f'<main class="runbook"><pre>{text}</pre></main></body></html>')
        return Answer(200, "text/html; charset=utf-8", body.encode(),
                      {"Cache-Control": "no-cache", "Content-Security-Policy": SHELL_CSP, **SECURITY_HEADERS})

    def _static(self, path: str, if_none_match: str) -> Answer:
        file, ctype = STATIC_FILES[path]
        try:
            body = file.read_bytes()
        except OSError:
            hint = " (run deploy/local/npm_assets.sh --force dashboards/pages)" if "uplot" in path else ""
            return _error(404, f"{path} is not installed{hint}")
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        headers = {"Cache-Control": "no-cache", "ETag": etag, **SECURITY_HEADERS}
        if etag in (t.strip() for t in if_none_match.split(",")):
            return Answer(304, ctype, b"", headers)  # revalidated: the browser's copy is current
        return Answer(200, ctype, body, headers)

    def _data(self, uid: str, what: str, key: str, query: str, headers: Mapping[str, str],
              registries: Sequence[CollectorRegistry]) -> Answer:
        forced: str | None = None
        if self.api_keys:
            forced = app_for_key(self.api_keys, key_from_headers(headers))
            if forced is None:
                return _error(401, "missing or invalid API key (Authorization: Bearer <key> or X-API-Key)",
                              **{"WWW-Authenticate": 'Bearer realm="icewatch"'})
        d = self.dashboards.get(uid)
        if d is None:
            return _error(404, f"no dashboard {uid!r}")
        try:
            pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
        except ValueError:
            return _error(400, f"more than {MAX_QUERY_FIELDS} query parameters")
        params: dict[str, str] = {}
        selected: dict[str, list[str]] = {}
        for k, v in pairs:
            if k.startswith("var-"):
                selected.setdefault(k[4:], []).append(v)
            elif k in ("from", "to"):
                params[k] = v
            else:
                return _error(400, f"unknown parameter {k[:40]!r} (from, to, var-NAME)", k[:40])
        try:
            start, end = time_range(params.get("from"), params.get("to"), d.time_from, datetime.now(UTC))
            if what == "panels":
                try:
                    d.panel(key)
                except KeyError:
                    return _error(404, f"dashboard {uid!r} has no panel {key!r}")
                doc = panel_data(self.sink, d, key, start, end, selected, forced_tenant=forced,
                                 registries=[*self.registries, *registries])
                doc["range"] = {"from": start.isoformat(), "to": end.isoformat()}
            else:
                try:
                    d.variable(key)
                except KeyError:
                    return _error(404, f"dashboard {uid!r} has no variable {key!r}")
                doc = variable_values(self.sink, d, key, start, end, selected, forced)
        except NotPermitted as exc:
            return _error(403, exc.message, exc.path)
        except InvalidInput as exc:
            return _error(400, exc.message, exc.path)
        except Unavailable as exc:
            return _error(503, f"the store cannot answer now: {exc}", None,
                          **{"Retry-After": str(max(1, int(exc.retry_after)))})
        except StoreError as exc:
            return _error(500, f"the store refused the query: {str(exc)[:600]}")
        return _json(200, doc)
