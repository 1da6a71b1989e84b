"""The notifiers the settings ask for (``ICEWATCH_ALERTS__*``)."""

from __future__ import annotations

from alerts.alert import Notifier
from alerts.notify.alertmanager import AlertmanagerNotifier
from alerts.notify.webhook import WebhookNotifier
from collector.settings import Settings


def notifiers_from(settings: Settings) -> list[Notifier]:
    """Alertmanager (when URLs are set) and the signed webhook (when its URL and secret are set);
    an empty list when neither is configured (the caller decides whether that is an error)."""
    cfg = settings.alerts
    notifiers: list[Notifier] = []
    if cfg.alertmanager_urls:
        notifiers.append(AlertmanagerNotifier(cfg.alertmanager_urls))
    if cfg.webhook_url is not None and cfg.webhook_secret is not None:
        notifiers.append(WebhookNotifier(cfg.webhook_url, cfg.webhook_secret.get_secret_value()))
    return notifiers
