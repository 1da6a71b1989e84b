"""Deliver alerts to Prometheus Alertmanager: ``POST /api/v2/alerts`` with a JSON array of
postableAlerts, to EVERY configured Alertmanager (an HA pair deduplicates between its peers; the
Alertmanager client docs ask clients to send to all of them).

Delivery counts as done when at least one Alertmanager accepted each batch; otherwise
``Unavailable`` lists every URL's reason and the evaluator sends again on its next round (sending
the same alert again is harmless: Alertmanager identifies an alert by its labels). An alert that
Alertmanager would refuse (bad label or annotation name, no label value, ends before it starts,
a generatorURL that is not a URL) raises ``InvalidInput`` before anything is sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from alerts.alert import Alert
from alerts.notify.payload import DEFAULT_BATCH, batches, check_all, check_batch_size, check_url
from alerts.notify.transport import DeliveryFailed, post_json
from collector.errors import ConfigError, Unavailable

log = logging.getLogger(__name__)

API_PATH = "/api/v2/alerts"


def alerts_endpoint(base_url: str) -> str:
    """``http://am:9093`` (or with a route prefix, ``http://host/alertmanager``) -> its v2 alerts URL."""
    base = check_url(base_url.strip(), "Alertmanager URL").rstrip("/")
    if base.endswith(API_PATH):
        return base
    return base + API_PATH


class AlertmanagerNotifier:
    name = "alertmanager"

    def __init__(self, urls: Sequence[str], timeout: float = 5.0, *, max_batch: int = DEFAULT_BATCH) -> None:
        if isinstance(urls, str):
            raise ConfigError("Alertmanager URLs: expected a list of URLs, got one string")
        if not urls:
            raise ConfigError("Alertmanager URLs: at least one is required")
        if timeout <= 0:
            raise ConfigError(f"Alertmanager timeout must be positive, got {timeout}")
        endpoints = [alerts_endpoint(u) for u in urls]
        if len(set(endpoints)) != len(endpoints):
            raise ConfigError(f"Alertmanager URLs: duplicates in {endpoints}")
        self.endpoints: tuple[str, ...] = tuple(endpoints)
        self.timeout = timeout
        self.max_batch = check_batch_size(max_batch)

    def __repr__(self) -> str:
        return f"AlertmanagerNotifier({list(self.endpoints)!r}, timeout={self.timeout})"

    def send(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        payload = check_all(alerts)
        failed: dict[str, str] = {}  # endpoint -> reason; not tried again during this send
        chunks = list(batches(payload, self.max_batch))
        with ThreadPoolExecutor(max_workers=len(self.endpoints), thread_name_prefix="alertmanager") as pool:
            for number, chunk in enumerate(chunks, 1):
                body = json.dumps(list(chunk), ensure_ascii=False, separators=(",", ":")).encode()
                targets = [e for e in self.endpoints if e not in failed]
                results = list(pool.map(self._post, targets, [body] * len(targets)))
                accepted = 0
                for endpoint, reason in zip(targets, results, strict=True):
                    if reason is None:
                        accepted += 1
                    else:
                        failed[endpoint] = reason
                if accepted == 0:
                    where = f" (batch {number} of {len(chunks)})" if len(chunks) > 1 else ""
                    reasons = "; ".join(f"{e}: {r}" for e, r in failed.items())
                    raise Unavailable(f"no Alertmanager accepted {len(chunk)} alert(s){where}: {reasons}")
        if failed:
            log.warning(
                "%d alert(s) delivered, but %d of %d Alertmanagers did not take them: %s",
                len(alerts),
                len(failed),
                len(self.endpoints),
                "; ".join(f"{e}: {r}" for e, r in failed.items()),
            )

    def _post(self, endpoint: str, body: bytes) -> str | None:
        try:
            post_json(endpoint, body, self.timeout)
        except DeliveryFailed as exc:
            return str(exc)
        return None
