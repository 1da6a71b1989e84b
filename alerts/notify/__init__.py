"""Notifiers: deliver alerts to Alertmanager (``alertmanager.py``) or a signed webhook (``webhook.py``)."""
