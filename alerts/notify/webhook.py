"""A generic signed webhook: ``POST`` JSON ``{"version": "1", "alerts": [postableAlert, ...]}``
(the fields Alertmanager takes: labels, annotations, startsAt, endsAt once resolved, generatorURL).

Signature (the receiver checks it with ``verify_signature``)::

    X-Icewatch-Timestamp: <unix seconds>
    X-Icewatch-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>

The timestamp is signed with the body, so a captured request cannot be replayed once it is older
than the receiver's tolerance (300 s by default). The secret is never logged nor shown by repr.
Any non-2xx answer or a connection failure raises ``Unavailable`` (the evaluator sends again); a
retried batch may arrive twice, so receivers deduplicate by labels and startsAt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence

from alerts.alert import Alert
from alerts.notify.payload import DEFAULT_BATCH, batches, check_all, check_batch_size, check_url
from alerts.notify.transport import DeliveryFailed, post_json
from collector.errors import ConfigError, Unavailable

VERSION = "1"
TIMESTAMP_HEADER = "X-Icewatch-Timestamp"
SIGNATURE_HEADER = "X-Icewatch-Signature"
SCHEME = "sha256="
MIN_SECRET_BYTES = 16


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Icewatch-Signature`` value of ``body`` sent at ``timestamp`` (unix seconds as text)."""
    mac = hmac.new(_key(secret), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def verify_signature(
    secret: str | bytes, timestamp: str, body: bytes, signature: str, now: float, tolerance_s: float = 300
) -> bool:
    """True when ``signature`` is the HMAC of ``body`` at ``timestamp`` with ``secret`` and the
    timestamp is within ``tolerance_s`` of ``now`` (either side: clocks drift). Compares in
    constant time; any malformed header gives False."""
    if not secret:
        return False
    ts = timestamp.strip()
    if not ts.isascii() or not ts.isdigit() or len(ts) > 12:
        return False
    if abs(now - int(ts)) > tolerance_s:
        return False
    if not signature.isascii():
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature.strip())


class WebhookNotifier:
    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str | bytes,
        timeout: float = 5.0,
        *,
        max_batch: int = DEFAULT_BATCH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = check_url(url.strip(), "webhook URL")
        if len(_key(secret)) < MIN_SECRET_BYTES:
            raise ConfigError(f"webhook secret: at least {MIN_SECRET_BYTES} bytes are required")
        if timeout <= 0:
            raise ConfigError(f"webhook timeout must be positive, got {timeout}")
        self.__secret = _key(secret)
        self.timeout = timeout
        self.max_batch = check_batch_size(max_batch)
        self._clock = clock

    def __repr__(self) -> str:
        return f"WebhookNotifier({self.url!r}, secret='**********', timeout={self.timeout})"

    def send(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        payload = check_all(alerts)
        chunks = list(batches(payload, self.max_batch))
        for number, chunk in enumerate(chunks, 1):
            body = json.dumps(
                {"version": VERSION, "alerts": list(chunk)}, ensure_ascii=False, separators=(",", ":")
            ).encode()
            timestamp = str(int(self._clock()))
            headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(self.__secret, timestamp, body)}
            try:
                post_json(self.url, body, self.timeout, headers)
            except DeliveryFailed as exc:
                where = f" (batch {number} of {len(chunks)})" if len(chunks) > 1 else ""
                raise Unavailable(f"webhook {self.url} did not take {len(chunk)} alert(s){where}: {exc}") from None
