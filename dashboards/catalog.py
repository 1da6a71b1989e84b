"""Every dashboard icewatch ships, in menu order."""

from __future__ import annotations

from dashboards.boards import call_drilldown, icewatch_self, overview, relay_distance, turn_fleet
from dashboards.model import Dashboard

DASHBOARDS: tuple[Dashboard, ...] = (
    overview.DASHBOARD,
    turn_fleet.DASHBOARD,
    relay_distance.DASHBOARD,
    call_drilldown.DASHBOARD,
    icewatch_self.DASHBOARD,
)


def dashboard(uid: str) -> Dashboard:
    for d in DASHBOARDS:
        if d.uid == uid:
            return d
    raise KeyError(uid)
