"""The dashboards, one module each (dashboards/catalog.py lists them)."""
