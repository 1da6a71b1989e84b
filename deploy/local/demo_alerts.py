"""make demo's view of the alerts: polls icewatch's /api/alerts while the simulation runs, then
waits for every alert to resolve, and prints when each alert went pending, fired and resolved.

Usage: demo_alerts.py URL SECONDS_UNTIL_THE_SIMULATION_ENDS RESOLVE_TIMEOUT_S
Exit status: 0 when every alert that fired resolved within the timeout, 1 otherwise."""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from typing import Any


def alerts(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/api/alerts", timeout=5) as resp:
        doc = json.load(resp)
    return [a for a in doc.get("alerts", []) if a.get("rule") != "watchdog"]


def key(a: dict[str, Any]) -> str:
    labels = " ".join(f"{k}={v}" for k, v in sorted(a.get("labels", {}).items()) if k != "tenant")
    return f"{a['rule']}  {labels}"


def main() -> int:
    url, run_s, timeout_s = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    t0 = time.monotonic()
    seen: dict[str, dict[str, float]] = {}
    summaries: dict[str, str] = {}

    def poll() -> set[str]:
        now = time.monotonic() - t0
        active = set()
        for a in alerts(url):
            k = key(a)
            active.add(k)
            seen.setdefault(k, {}).setdefault(a["phase"], now)
            summaries[k] = a.get("summary", "")
        for k, times in seen.items():
            if k not in active and "firing" in times:
                times.setdefault("resolved", now)
        return active

    while time.monotonic() - t0 < run_s:
        poll()
        time.sleep(2)
    deadline = time.monotonic() + timeout_s
    while poll() and time.monotonic() < deadline:
        time.sleep(2)
    fired = {k: v for k, v in seen.items() if "firing" in v}
    print("\n$ alerts (icewatch's evaluator; http://.../alerts shows them live)")
    if not fired:
        print("  no alert fired")
    for k, times in sorted(fired.items(), key=lambda kv: kv[1]["firing"]):
        resolved = f"resolved at +{times['resolved']:.0f} s" if "resolved" in times else "STILL FIRING"
        print(f"  {k}: fired at +{times['firing']:.0f} s, {resolved}")
        print(f"    {summaries.get(k, '')}")
    return 0 if all("resolved" in t for t in fired.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
