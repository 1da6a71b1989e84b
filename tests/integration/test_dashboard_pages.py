"""The built-in dashboard pages in real headless Chromium, on data that went through the real pipeline.

Simulated calls (a normal period; then turn-eu-1 down, turn-us-east-1 refusing credentials, eu sent to
turn-apac-1, STUN blocked in apac) go over HTTP into the embedded publisher and chDB, with their
coturn lines and probe rounds, for tenant "default". The collector app serves the pages
(dashboards/pages/routes.py as extra routes). For every dashboard of dashboards/catalog.py the page
loads without a console error or exception, every panel shows rows, a variable change and a
time-range change fetch every panel again, and a screenshot is saved to var/screenshots/<uid>.png
(``ICEWATCH_DOCS_SCREENSHOT=1``, i.e. ``make screenshots``, also refreshes docs/img/dashboard-overview.png).
With API keys configured, a browser without a key gets the key prompt and the API answers 401.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from alerts.evaluator import Evaluator
from alerts.rules import RUNBOOKS_DIR, load_rules
from collector.http_app import IngestConfig, build_app
from collector.inventory import load_inventory
from collector.simulator.geoip import write_demo_geoip
from collector.simulator.incidents import Conditions, conditions_at, parse_incident
from dashboards.catalog import DASHBOARDS
from dashboards.model import Dashboard, Panel, Row, Variable
from dashboards.pages.handler import Pages
from dashboards.pages.routes import page_routes
from processors.facts.call_facts import FactsEnv
from processors.facts.geo import MaxMindLocator
from processors.rows.builder import RowBuilder
from processors.service.embedded import EmbeddedPublisher
from processors.service.health import serve_health
from processors.service.metrics import ProcessorMetrics
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate
from tests.cdp import CdpClient, CdpError
from tests.http_server import free_port, serve
from tests.integration.test_browser_cors import chromium
from tests.simulated import Pipeline

pytestmark = pytest.mark.chromium

REPO = Path(__file__).resolve().parents[2]
INVENTORY = load_inventory(REPO / "deploy" / "inventory.example.yaml")
SCREENSHOTS = REPO / "var" / "screenshots"
DOCS_IMAGE = REPO / "docs" / "img" / "dashboard-overview.png"
SEED = 23
KEY = "pages-test-key"
BATCH = 40  # calls per batch
VIEW = {"width": 1440, "height": 1000}


@dataclass
class Site:
    store: ChdbSink
    open_url: str  # no API keys
    keyed_url: str  # API keys: {"default": KEY}
    devtools: int
    call_id: str  # a relayed call with samples, candidate errors and a matched TURN session


def drill_down_call(store: ChdbSink) -> str:
    rows = store.query(
        "SELECT call_id FROM call_turn_sessions WHERE tenant = 'default' "
        "AND call_id IN (SELECT call_id FROM candidate_errors FINAL WHERE tenant = 'default') "
        "AND call_id IN (SELECT call_id FROM call_samples FINAL WHERE tenant = 'default') "
        "ORDER BY call_id LIMIT 1")
    assert rows, "no relayed call with samples and candidate errors matched to a TURN session in the store"
    return str(rows[0]["call_id"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("pages")
    store = ChdbSink(tmp / "store")
    try:
        migrate(store)
        geo = MaxMindLocator(str(write_demo_geoip(INVENTORY, tmp / "demo.mmdb")))
        publisher = EmbeddedPublisher(store, RowBuilder(FactsEnv(inventory=INVENTORY, geo=geo)))
        processor = ProcessorMetrics()  # metric panels of the processor: its families exist from the start
        config = IngestConfig(api_keys={}, max_body_bytes=8 << 20, hash_key=b"k")
        keyed = IngestConfig(api_keys={"default": KEY}, max_body_bytes=8 << 20, hash_key=b"k")
        evaluator = Evaluator(store, load_rules(), [], tmp / "alerts.json", "http://127.0.0.1")
        open_app = build_app(publisher, config, page_routes(store, {}, [processor.registry],
                                                            alerts=evaluator.snapshot, runbooks=RUNBOOKS_DIR))
        keyed_app = build_app(publisher, keyed, page_routes(store, keyed.api_keys, [processor.registry]))
        with serve(open_app) as open_url, serve(keyed_app) as keyed_url, \
                httpx.Client(base_url=open_url, timeout=60) as client, chromium(tmp) as devtools:
            pipe = Pipeline(client, store, publisher)
            now = datetime.now(UTC).replace(microsecond=0)
            down = conditions_at((parse_incident("turn-down:turn-eu-1@0+600"),), 1.0)
            auth = conditions_at((parse_incident("turn-auth:turn-us-east-1@0+600"),), 1.0)  # rejected credentials
            quota = conditions_at((parse_incident("turn-quota:turn-us-west-1@0+600"),), 1.0)  # failed allocations
            far = conditions_at((parse_incident("misroute:eu:turn-apac-1@0+600"),), 1.0)  # distant relays
            stun = conditions_at((parse_incident("stun-blocked:apac@0+600"),), 1.0)  # relayed calls with errors
            for n, minutes in enumerate((75, 60, 45, 30)):
                pipe.feed("default", Conditions(), now - timedelta(minutes=minutes), seed=SEED + n, calls=BATCH)
            for n, minutes in enumerate((20, 10), start=4):
                pipe.feed("default", down, now - timedelta(minutes=minutes), seed=SEED + n, calls=BATCH)
            pipe.feed("default", auth, now - timedelta(minutes=5), seed=SEED + 6, calls=BATCH)
            pipe.feed("default", quota, now - timedelta(minutes=4), seed=SEED + 9, calls=BATCH)
            pipe.feed("default", far, now - timedelta(minutes=3), seed=SEED + 7, calls=BATCH)
            pipe.feed("default", stun, now - timedelta(minutes=2), seed=SEED + 8, calls=BATCH)
            refused = client.post("/v1/call-reports", content=b'{"not": "a call report"}',
                                  headers={"Content-Type": "application/json", "X-Icewatch-App": "default"})
            assert refused.status_code == 422, refused.text  # dead-lettered: the self dashboard lists it
            processor.lag_seconds.set(1.5)
            # the real evaluator on the credentials incident: turn-auth-failures fires for turn-us-east-1
            at = now - timedelta(minutes=5) + timedelta(seconds=20)
            for t in (at, at + timedelta(seconds=20)):
                evaluator.evaluate("turn-auth-failures", t)
            assert [i.phase for i in evaluator.book.of_rule("turn-auth-failures")] == ["firing"]
            yield Site(store, open_url, keyed_url, devtools, drill_down_call(store))
    finally:
        store.close()


# ------------------------------------------------------------------------------------ browser


class Browser:
    """One page target in the shared Chromium, with its console and exceptions recorded."""

    def __init__(self, devtools: int) -> None:
        self.client = CdpClient("127.0.0.1", devtools, timeout=30)
        self.target = self.client.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self.client.call("Target.attachToTarget", {"targetId": self.target, "flatten": True})
        self.session = attached["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", {**VIEW, "deviceScaleFactor": 1, "mobile": False})

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
        return self.client.call(method, params, session_id=self.session, timeout=timeout)

    def eval(self, expression: str, timeout: float = 30) -> Any:
        return self.client.evaluate(expression, self.session, timeout)

    def problems(self) -> list[str]:
        """Exceptions, console errors and warnings, and browser log errors and warnings so far."""
        self.eval("1")  # drain the events that arrived since the last command
        out = []
        for ev in self.client.events:
            if ev.get("sessionId") != self.session:
                continue
            p = ev.get("params", {})
            if ev["method"] == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append("exception: " + str(d.get("exception", {}).get("description") or d.get("text")))
            elif ev["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: " + " ".join(str(a.get("value", a.get("description")))
                                                               for a in p.get("args", [])))
            elif ev["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
                e = p["entry"]
                out.append(f"log {e['level']}: {e.get('text')} {e.get('url', '')}")
        return out

    def network_requests(self, part: str) -> int:
        """Requests the browser sent (DevTools Network events) whose URL contains ``part``."""
        self.eval("1")
        return sum(1 for ev in self.client.events if ev.get("sessionId") == self.session
                   and ev["method"] == "Network.requestWillBeSent" and part in ev["params"]["request"]["url"])

    def goto(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete' && !!window.icewatch", f"{url} did not load")

    def wait_for(self, condition: str, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(CdpError):
                if self.eval(f"!!({condition})", timeout=10):
                    return
            if time.monotonic() > deadline:
                pytest.fail(f"{what} (within {timeout:.0f} s); panels: {self.panels()}")
            time.sleep(0.1)

    def panels(self) -> dict[str, dict[str, Any]]:
        with contextlib.suppress(CdpError):
            doc = self.eval("""JSON.stringify([...document.querySelectorAll('section.panel')].map(p => ({
                key: p.dataset.key, state: p.dataset.state, rows: +p.dataset.rows, seq: +p.dataset.seq,
                text: p.querySelector('.panel-error') ? p.querySelector('.panel-error').textContent : ''})))""")
            return {p["key"]: p for p in json.loads(doc)}
        return {}

    def wait_settled(self, min_seq: dict[str, int] | None = None) -> dict[str, dict[str, Any]]:
        """Every panel drawn (ok, empty or error), each past ``min_seq`` when given."""
        seq = json.dumps(min_seq or {})
        self.wait_for(f"""(() => {{ const want = {seq};
            const ps = [...document.querySelectorAll('section.panel')];
            return ps.length > 0 && ps.every(p => p.dataset.state !== 'loading'
              && p.getAttribute('aria-busy') === 'false' && +p.dataset.seq > (want[p.dataset.key] || 0)); }})()""",
                      "the panels did not all load")
        return self.panels()

    def screenshot(self, path: Path) -> None:
        height = int(self.eval("Math.ceil(document.documentElement.scrollHeight)"))
        shot = self.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": VIEW["width"], "height": max(height, 200), "scale": 1}}, timeout=60)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        with contextlib.suppress(CdpError):
            self.client.call("Target.closeTarget", {"targetId": self.target})
        self.client.close()


@pytest.fixture
def browser(site: Site) -> Iterator[Browser]:
    b = Browser(site.devtools)
    try:
        yield b
    finally:
        b.close()


def assert_all_rows(panels: dict[str, dict[str, Any]], d: Dashboard) -> None:
    assert set(panels) == {p.key for p in d.panels()}
    bad = {k: p for k, p in panels.items() if p["state"] != "ok" or p["rows"] <= 0}
    assert not bad, f"panels without data on {d.uid}: {bad}"


def requests(b: Browser) -> int:
    return int(b.eval("window.icewatch.panelRequests"))


def seqs(panels: dict[str, dict[str, Any]]) -> dict[str, int]:
    return {k: int(p["seq"]) for k, p in panels.items()}


def multi_variable(b: Browser, d: Dashboard) -> tuple[str, str] | None:
    """A multi-value variable of the page and one of its offered values."""
    for v in d.variables:
        if v.kind == "query" and v.multi:
            box = f"#var-{v.name} input[type=checkbox]:not([value='$__all'])"
            value = b.eval(f"(() => {{ const b = document.querySelector({json.dumps(box)});"
                           " return b ? b.value : null; })()")
            if value:
                return v.name, str(value)
    return None


@pytest.mark.parametrize("uid", [d.uid for d in DASHBOARDS])
def test_every_dashboard_renders_and_requeries(site: Site, browser: Browser, uid: str) -> None:
    d = next(x for x in DASHBOARDS if x.uid == uid)
    query = "?from=now-1h&to=now" + (f"&var-call_id={site.call_id}" if uid == "icewatch-call" else "")
    browser.goto(f"{site.open_url}/d/{uid}{query}")
    panels = browser.wait_settled()
    assert_all_rows(panels, d)
    assert browser.eval("document.title").startswith(d.title)
    links = browser.eval("[...document.querySelectorAll('nav.links a')].map(a => a.dataset.uid)")
    assert links == [link.dashboard for link in d.links]
    browser.screenshot(SCREENSHOTS / f"{uid}.png")
    if uid == "icewatch-overview" and os.environ.get("ICEWATCH_DOCS_SCREENSHOT") == "1":
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SCREENSHOTS / f"{uid}.png", DOCS_IMAGE)

    # a variable change: every panel is fetched again with the new selection, which is in the URL
    before_n, before = requests(browser), seqs(panels)
    sent = browser.network_requests(f"/api/dashboards/{uid}/panels/")
    assert sent >= len(before)  # the page's counter is backed by what the browser really sent
    picked = multi_variable(browser, d)
    if picked is not None:
        name, value = picked
        browser.eval(f"document.querySelector('#var-{name} input[value={json.dumps(value)}]').click()")
        expect = f"var-{name}={value}"
    elif uid == "icewatch-call":  # its only variable besides the tenant: the call id
        other = site.store.query("SELECT call_id FROM calls FINAL WHERE tenant = 'default' AND call_id != "
                                 "{c:String} ORDER BY call_id LIMIT 1", {"c": site.call_id})[0]["call_id"]
        browser.eval(f"(() => {{ const i = document.getElementById('var-call_id'); i.value = {json.dumps(other)};"
                     " i.dispatchEvent(new Event('change')); })()")
        expect = f"var-call_id={other}"
    else:  # only the tenant: choose it again through its picker (one tenant has data)
        browser.eval("(() => { const s = document.getElementById('var-tenant'); s.value = 'default';"
                     " s.dispatchEvent(new Event('change')); })()")
        expect = "var-tenant=default"
    after = browser.wait_settled(before)
    assert requests(browser) >= before_n + len(before)
    assert browser.network_requests(f"/api/dashboards/{uid}/panels/") >= sent + len(before)
    assert expect in browser.eval("decodeURIComponent(location.search)")
    assert all(p["state"] in ("ok", "empty") for p in after.values()), after

    # a time-range change: the preset picker, into the URL, every panel again
    before_n, before = requests(browser), seqs(after)
    browser.eval("(() => { const s = document.getElementById('time-preset'); s.value = 'now-6h';"
                 " s.dispatchEvent(new Event('change')); })()")
    after = browser.wait_settled(before)
    assert requests(browser) >= before_n + len(before)
    assert "from=now-6h" in browser.eval("location.search")
    assert all(p["state"] in ("ok", "empty", "error") for p in after.values())
    errors = {k: p["text"] for k, p in after.items() if p["state"] == "error"}
    assert not errors, errors
    assert browser.problems() == []


def test_a_variable_changes_what_a_panel_shows(site: Site, browser: Browser) -> None:
    """The overview's call count for one region is smaller than for All, in the page and the API."""
    browser.goto(f"{site.open_url}/d/icewatch-overview?from=now-3h&to=now")
    browser.wait_settled()
    value = "#panel-calls .stat-value"
    all_calls = float(browser.eval(f"document.querySelector('{value}').dataset.value"))
    before = seqs(browser.panels())
    browser.eval("document.getElementById('var-region').open = true")
    browser.eval("document.querySelector('#var-region input[value=\"eu\"]').click()")
    browser.wait_settled(before)
    eu_calls = float(browser.eval(f"document.querySelector('{value}').dataset.value"))
    assert browser.eval("document.getElementById('var-region').open")  # open while values are picked
    assert browser.eval("document.querySelector('#var-region summary').textContent") == "eu"
    assert 0 < eu_calls < all_calls == 10 * BATCH  # every call fed
    api = httpx.get(f"{site.open_url}/api/dashboards/icewatch-overview/panels/calls",
                    params={"from": "now-3h", "to": "now", "var-region": "eu"}).json()
    assert api["rows"] == [[eu_calls]] and api["columns"] == [{"name": "calls", "type": "UInt64"}]
    assert browser.problems() == []


def test_with_api_keys_the_page_asks_for_a_key_and_the_api_refuses(site: Site, browser: Browser) -> None:
    url = f"{site.keyed_url}/d/icewatch-overview?from=now-3h&to=now"
    browser.goto(url)
    browser.wait_for("document.getElementById('key-prompt')", "the key prompt did not show")
    assert browser.eval("document.querySelectorAll('section.panel').length") == 0
    assert browser.eval("window.icewatch.panelRequests") == 0
    browser.screenshot(SCREENSHOTS / "key-prompt.png")
    panel = f"{site.keyed_url}/api/dashboards/icewatch-overview/panels/calls"
    assert httpx.get(panel).status_code == 401
    assert httpx.get(panel, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{site.keyed_url}/api/dashboards/icewatch-overview/variables/region").status_code == 401
    other = httpx.get(panel, params={"var-tenant": "someone-else"}, headers={"Authorization": f"Bearer {KEY}"})
    assert other.status_code == 403 and "tenant" in other.json()["error"]
    assert httpx.get(panel, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert httpx.get(f"{site.keyed_url}/static/pages/app.js").status_code == 200  # no data: public

    # the key, entered once, is kept for the tab and sent as a bearer token
    browser.eval(f"""(() => {{ document.getElementById('api-key').value = {json.dumps(KEY)};
        document.getElementById('key-prompt').requestSubmit(); }})()""")
    d = next(x for x in DASHBOARDS if x.uid == "icewatch-overview")
    assert_all_rows(browser.wait_settled(), d)
    assert browser.eval("sessionStorage.getItem('icewatch.apiKey')") == KEY
    assert browser.eval("[...document.querySelectorAll('#var-tenant option')].map(o => o.value)") == ["default"]
    assert browser.problems() == []

    # a shared link naming another tenant shows the key's own
    browser.goto(url + "&var-tenant=someone-else")
    assert_all_rows(browser.wait_settled(), d)
    assert "someone-else" not in browser.eval("location.search")
    assert browser.eval("document.getElementById('var-tenant').value") == "default"


def test_the_index_lists_every_dashboard(site: Site, browser: Browser) -> None:
    browser.goto(f"{site.open_url}/")
    browser.wait_for("window.icewatch.loads > 0", "the index did not load")
    hrefs = browser.eval("[...document.querySelectorAll('ul.index a')].map(a => a.getAttribute('href'))")
    assert hrefs == [f"./d/{d.uid}" for d in DASHBOARDS]
    browser.screenshot(SCREENSHOTS / "index.png")
    assert browser.problems() == []


def test_the_processor_health_server_serves_the_pages_too(site: Site, browser: Browser) -> None:
    """``icewatch processor`` holding the store serves them on its stdlib health server."""
    metrics = ProcessorMetrics()
    pages = Pages(site.store, {}, registries=[metrics.registry])
    server = serve_health(free_port(), metrics.registry, lambda: True,
                          pages=lambda path, query, headers: pages.answer(path, query, headers).parts())
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        shell = httpx.get(f"{base}/d/icewatch-turn")
        assert shell.status_code == 200 and "default-src 'self'" in shell.headers["content-security-policy"]
        assert httpx.get(f"{base}/api/dashboards/icewatch-turn/panels/nope").status_code == 404
        browser.goto(f"{base}/d/icewatch-turn?from=now-1h&to=now")
        assert_all_rows(browser.wait_settled(), next(x for x in DASHBOARDS if x.uid == "icewatch-turn"))
        assert browser.problems() == []
    finally:
        server.shutdown()
        server.server_close()


def test_a_table_link_opens_the_call_drill_down_of_that_call(site: Site, browser: Browser) -> None:
    browser.goto(f"{site.open_url}/d/icewatch-overview?from=now-1h&to=now")
    browser.wait_settled()
    link = "#panel-problem_calls tbody a"
    call_id = browser.eval(f"document.querySelector('{link}').textContent")
    href = browser.eval(f"document.querySelector('{link}').getAttribute('href')")
    assert href.startswith("../d/icewatch-call?") and f"var-call_id={call_id}" in href and "from=now-1h" in href
    browser.eval(f"document.querySelector('{link}').click()")
    browser.wait_for("location.pathname.endsWith('/d/icewatch-call') && document.querySelector('section.panel')",
                     "the link did not open the call drill-down")
    panels = browser.wait_settled()
    assert panels["summary"]["state"] == "ok" and panels["summary"]["rows"] >= 1
    assert browser.eval("document.getElementById('var-call_id').value") == call_id
    assert browser.problems() == []


def test_firing_alerts_show_on_every_page_with_their_runbook(site: Site, browser: Browser) -> None:
    browser.goto(f"{site.open_url}/d/icewatch-turn?from=now-1h&to=now")
    browser.wait_for("document.querySelector('#alert-banner li[data-rule=\"turn-auth-failures\"]')",
                     "the firing alert is not in the banner")
    assert browser.eval("document.getElementById('alert-banner').dataset.firing") == "1"
    text = browser.eval("document.getElementById('alert-banner').textContent")
    assert "turn_server=turn-us-east-1" in text and "TURN turn-us-east-1 (us-east) rejects credentials" in text
    assert "watchdog" not in text  # the dead man's switch is not an incident
    browser.goto(f"{site.open_url}/alerts#turn-auth-failures")
    browser.wait_for("document.querySelector('#alerts li.targeted.alert-firing')", "the alerts page lost the rule")
    runbook = browser.eval("document.querySelector('#alerts li.targeted a').getAttribute('href')")
    assert runbook == "./runbooks/turn-auth-failures"
    page = httpx.get(f"{site.open_url}/runbooks/turn-auth-failures")
    assert page.status_code == 200 and "<pre># turn-auth-failures" in page.text
    assert httpx.get(f"{site.open_url}/runbooks/nope").status_code == 404
    assert httpx.get(f"{site.keyed_url}/api/alerts").status_code == 401
    assert browser.problems() == []


def test_an_unknown_dashboard_says_so(site: Site, browser: Browser) -> None:
    browser.goto(f"{site.open_url}/d/no-such-board")
    browser.wait_for("document.querySelector('.page-error')", "no error shown")
    assert "no-such-board" in browser.eval("document.querySelector('.page-error').textContent")


def test_auto_refresh_follows_the_dashboard_and_turns_off(site: Site, browser: Browser) -> None:
    browser.goto(f"{site.open_url}/d/icewatch-overview?from=now-1h&to=now")
    browser.wait_settled()
    assert browser.eval("document.getElementById('refresh').value") == "1m"  # the dashboard's refresh
    browser.goto(f"{site.open_url}/d/icewatch-overview?from=now-1h&to=now&refresh=5s")
    first = browser.wait_settled()
    again = browser.wait_settled(seqs(first))  # nothing done, every panel fetched again
    assert all(p["state"] == "ok" for p in again.values())
    browser.eval("(() => { const s = document.getElementById('refresh'); s.value = '';"
                 " s.dispatchEvent(new Event('change')); })()")
    assert "refresh=off" in browser.eval("location.search")
    browser.wait_settled()
    n = requests(browser)
    time.sleep(7)
    assert requests(browser) == n
    assert browser.problems() == []


BROKEN = Dashboard(
    uid="pages-broken", title="Broken on purpose", description="panels that fail or find nothing",
    variables=(Variable("tenant", "App", multi=False, include_all=False, default="default"),),
    rows=(Row("r", (
        Panel("bad_sql", "Unknown column", "table", sql="SELECT no_such_column FROM calls"),
        Panel("nothing", "No rows", "timeseries",
              sql="SELECT $__timeInterval(event_time) AS time, count() AS calls FROM calls "
                  "WHERE tenant = 'nobody' AND $__timeFilter(event_time) GROUP BY time ORDER BY time"),
        Panel("unmeasured", "Not in this process", "table", metric="icewatch_no_such_metric"),
        Panel("fine", "Calls", "stat",
              sql="SELECT count() AS calls FROM calls FINAL WHERE tenant = ${tenant:singlequote}"),
    )),),
)


def test_a_failing_panel_shows_its_error_and_an_empty_one_says_so(site: Site, browser: Browser) -> None:
    pages = Pages(site.store, {}, [BROKEN])
    server = serve_health(free_port(), CollectorRegistry(), lambda: True,
                          pages=lambda path, query, headers: pages.answer(path, query, headers).parts())
    try:
        browser.goto(f"http://127.0.0.1:{server.server_address[1]}/d/pages-broken")
        panels = browser.wait_settled()
        assert panels["bad_sql"]["state"] == "error" and "no_such_column" in panels["bad_sql"]["text"]
        assert browser.eval("document.querySelector('#panel-bad_sql [role=alert]') !== null")
        assert panels["nothing"]["state"] == "empty"
        assert browser.eval("document.querySelector('#panel-nothing .no-data').textContent") == "No data in this range"
        assert panels["fine"]["state"] == "ok" and panels["fine"]["rows"] == 1
        assert panels["unmeasured"]["state"] == "empty"
        assert "No samples of icewatch_no_such_metric" in browser.eval(
            "document.querySelector('#panel-unmeasured .no-data').textContent")
        # the only problem the browser reports is the failed request itself
        assert [p for p in browser.problems() if "status of 500" not in p] == []
    finally:
        server.shutdown()
        server.server_close()
