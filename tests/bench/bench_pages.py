"""Dashboard page load on a simulated day of a 1,000-call fleet (issue 11): the overview with all its
panels in less than 2 s, on the embedded store.

The day (tests/bench/pages_day.py, cached under var/bench/): 1,000 concurrent calls for 24 h.
The app is the real one (collector.http_app.build_app + dashboards.pages.routes.page_routes, uvicorn).

1. Server side: every panel of ``icewatch-overview`` requested at once (as app.js ``loadPanels``
   does), default variables, ``now-24h`` and ``now-6h``; 5 runs, median and max. Then each panel
   alone (median of 5), so the slowest are named.
2. In headless Chromium (tests/integration/test_browser_cors.py ``chromium``, tests/cdp.py):
   navigation to /d/icewatch-overview?from=now-24h&to=now until every panel has settled
   (``data-state`` not loading, ``aria-busy`` false), measured in the page from navigation start
   (performance.now(), polled every 10 ms by a script installed before the page's own); 5 runs.
   This is "page load with all panels": shell, scripts, model, the four variables (app.js loads them
   one after the other), then the panels.
3. The floor, in the same run and through the same stack: a dashboard with the overview's variables
   and as many panels, each ``SELECT count() FROM calls`` (answered from part metadata, no data
   read). Its time is what 14 panel requests cost whatever their SQL (HTTP, the handler, the macro
   expansion, one chDB round trip each, JSON; in the browser also the page, its scripts and the
   variables), so the ratio says how much the overview's SQL adds on top. The bare chDB time of
   one day's ``uniqExactMerge(calls)`` over call_minute is printed too, as a yardstick of one
   distinct-call count over the day.

``python -m tests.bench.bench_pages`` (``make bench`` runs it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx

from collector.http_app import IngestConfig, build_app
from dashboards.catalog import DASHBOARDS, dashboard
from dashboards.model import Dashboard, Panel, Row
from dashboards.pages.routes import page_routes
from processors.facts.call_facts import FactsEnv
from processors.rows.builder import RowBuilder
from processors.service.embedded import EmbeddedPublisher
from processors.store.chdb import ChdbSink
from tests.bench.pages_day import simulated_day
from tests.cdp import CdpClient, CdpError
from tests.http_server import serve

UID = "icewatch-overview"
FLOOR_UID = "bench-floor"
RUNS = 5
GOAL_S = 2.0
RANGES = ("now-24h", "now-6h")
# Installed before the page's scripts: the time (ms from navigation start) when every panel settled.
SETTLE_PROBE = """(() => {
  const check = () => {
    const ps = [...document.querySelectorAll('section.panel')];
    if (ps.length > 0 && ps.every(p => p.dataset.state && p.dataset.state !== 'loading'
        && p.getAttribute('aria-busy') === 'false')) { window.__settledAt = performance.now(); return; }
    setTimeout(check, 10);
  };
  setTimeout(check, 10);
})();"""


def floor_dashboard(like: Dashboard) -> Dashboard:
    panels = tuple(Panel(f"p{i}", f"Floor {i}", "stat", sql="SELECT count() AS calls FROM calls", width=6, height=4)
                   for i in range(len(like.panels())))
    return Dashboard(uid=FLOOR_UID, title="Bench floor", description="trivial panels", rows=(Row("Floor", panels),),
                     variables=like.variables)


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}"


def load() -> str:
    """The load average: the machine is shared, and the times are only as good as it is idle."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


ERRORS: dict[str, str] = {}  # panel -> the last error it answered


def _check(key: str, r: httpx.Response) -> None:
    if r.status_code != 200:
        ERRORS[key] = f"{r.status_code} {r.text[:200]}"


async def _all_panels(base: str, d: Dashboard, query: str) -> tuple[float, dict[str, float]]:
    """Every panel of ``d`` requested at once; the wall time of the lot and each one's own."""
    own: dict[str, float] = {}

    async def one(client: httpx.AsyncClient, key: str) -> None:
        t = time.perf_counter()
        r = await client.get(f"/api/dashboards/{d.uid}/panels/{key}?{query}")
        own[key] = time.perf_counter() - t
        _check(key, r)

    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(client, p.key) for p in d.panels()))
        return time.perf_counter() - t0, own


def server_side(base: str, d: Dashboard, query: str) -> list[float]:
    return [asyncio.run(_all_panels(base, d, query))[0] for _ in range(RUNS)]


def each_panel(base: str, d: Dashboard, query: str) -> dict[str, float]:
    """Each panel alone: the median of RUNS requests."""
    out: dict[str, float] = {}
    with httpx.Client(base_url=base, timeout=120) as client:
        for p in d.panels():
            times = []
            for _ in range(RUNS):
                t = time.perf_counter()
                r = client.get(f"/api/dashboards/{d.uid}/panels/{p.key}?{query}")
                times.append(time.perf_counter() - t)
                _check(p.key, r)
            out[p.key] = statistics.median(times)
    return out


class Page:
    """One Chromium tab: navigate, and the time until every panel settled."""

    def __init__(self, devtools: int) -> None:
        self.client = CdpClient("127.0.0.1", devtools, timeout=30)
        self.target = self.client.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self.client.call("Target.attachToTarget", {"targetId": self.target, "flatten": True})
        self.session = attached["sessionId"]
        self.client.call("Page.enable", session_id=self.session)
        self.client.call("Emulation.setDeviceMetricsOverride",
                         {"width": 1440, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
                         session_id=self.session)
        self.client.call("Page.addScriptToEvaluateOnNewDocument", {"source": SETTLE_PROBE}, session_id=self.session)

    def load(self, url: str, timeout: float = 120) -> float:
        # the old document is marked: its settled time must not be taken for the new one's
        with contextlib.suppress(CdpError):
            self.client.evaluate("window.__old = true", self.session, timeout=10)
        self.client.call("Page.navigate", {"url": url}, session_id=self.session)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(CdpError):
                at = self.client.evaluate("window.__old ? null : (window.__settledAt ?? null)", self.session,
                                          timeout=10)
                if at is not None:
                    states = self.client.evaluate(
                        "[...document.querySelectorAll('section.panel')].map(p => p.dataset.state).join(',')",
                        self.session, timeout=10)
                    if "error" in str(states).split(","):
                        ERRORS[f"browser {url}"] = str(states)
                    return float(at) / 1000
            time.sleep(0.05)
        raise RuntimeError(f"{url}: the panels did not settle within {timeout:.0f} s")

    def close(self) -> None:
        with contextlib.suppress(CdpError):
            self.client.call("Target.closeTarget", {"targetId": self.target})
        self.client.close()


@contextlib.contextmanager
def browser() -> Iterator[int]:
    from tests.integration.test_browser_cors import chromium

    with tempfile.TemporaryDirectory() as tmp, chromium(Path(tmp)) as devtools:
        yield devtools


def in_browser(base: str, devtools: int, uid: str, query: str) -> list[float]:
    page = Page(devtools)
    try:
        return [page.load(f"{base}/d/{uid}?{query}") for _ in range(RUNS)]
    finally:
        page.close()


def summary(times: list[float]) -> str:
    return f"median {ms(statistics.median(times))}, max {ms(max(times))} ({', '.join(ms(t) for t in times)})"


def main() -> int:
    print(f"# dashboard pages benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}")
    day = simulated_day()
    print(day.describe(), flush=True)
    overview = dashboard(UID)
    floor = floor_dashboard(overview)
    sink = ChdbSink(day.path / "store")
    failed = False
    try:
        t = time.perf_counter()
        sink.query("SELECT uniqExactMerge(calls) AS n FROM call_minute WHERE tenant = 'default' "
                   "AND minute >= now() - INTERVAL 24 HOUR")
        bare = time.perf_counter() - t
        publisher = EmbeddedPublisher(sink, RowBuilder(FactsEnv.default()))
        config = IngestConfig(api_keys={}, max_body_bytes=8 << 20, hash_key=b"bench")
        app = build_app(publisher, config, page_routes(sink, {}, dashboards=[*DASHBOARDS, floor]))
        n = len(overview.panels())
        with serve(app) as base:
            print(f"\n## server side: {n} panels requested at once over HTTP, default variables, {RUNS} runs; {load()}")
            for rng in RANGES:
                query = f"from={rng}&to=now"
                ERRORS.clear()
                each_panel(base, overview, query)  # warm-up: the first reads of a day's parts
                panels = server_side(base, overview, query)
                base_times = server_side(base, floor, query)
                ratio = statistics.median(panels) / statistics.median(base_times)
                print(f"{rng}: overview {summary(panels)}")
                print(f"{rng}: floor ({n} x SELECT count() FROM calls) {summary(base_times)}; "
                      f"ratio {ratio:.1f}x")
                own = each_panel(base, overview, query)
                slowest = sorted(own.items(), key=lambda kv: -kv[1])
                print(f"{rng}: each panel alone (median of {RUNS}), slowest first: "
                      + ", ".join(f"{k} {ms(v)}" for k, v in slowest))
                for key, error in ERRORS.items():
                    print(f"{rng}: panel {key} failed: {error}")
                    failed = True
            print(f"bare chDB: one day's uniqExactMerge(calls) over call_minute {ms(bare)} (first run)")

            print(f"\n## in headless Chromium: /d/{UID}?from=...&to=now until every panel settled, {RUNS} runs; "
                  f"{load()}")
            with browser() as devtools:
                for rng in RANGES:
                    query = f"from={rng}&to=now"
                    ERRORS.clear()
                    loads = in_browser(base, devtools, UID, query)
                    floors = in_browser(base, devtools, FLOOR_UID, query)
                    ratio = statistics.median(loads) / statistics.median(floors)
                    ok = statistics.median(loads) < GOAL_S and max(loads) < GOAL_S and not ERRORS
                    verdict = "PASS" if ok else "FAIL" + (f" (panels in error: {ERRORS})" if ERRORS else "")
                    failed = failed or not ok
                    print(f"{rng}: page load {summary(loads)}")
                    print(f"{rng}: floor page ({n} trivial panels, same variables) {summary(floors)}; "
                          f"ratio {ratio:.1f}x")
                    print(f"{rng}: {verdict} (goal: every run < {GOAL_S:g} s); {load()}")
    finally:
        sink.close()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
