"""icewatch's built-in dashboard pages: the dashboards of dashboards/catalog.py served by icewatch
itself (handler.py framework free, routes.py for Starlette, data.py the queries, static/ the page)."""
