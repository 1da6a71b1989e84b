"""One JSON POST over stdlib urllib: no redirects followed (a POST must not turn into a GET
elsewhere), the answer read within a bound, every failure turned into one short reason."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Mapping

USER_AGENT = "icewatch-alerts/1"
MAX_ERROR_BODY = 512  # characters of a refusal kept in the reason


class DeliveryFailed(Exception):
    """The receiver did not take the request; ``str()`` is the reason (no secrets, no body sent)."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


_OPENER = urllib.request.build_opener(_NoRedirect)


def post_json(url: str, body: bytes, timeout: float, headers: Mapping[str, str] | None = None) -> int:
    """POST ``body`` (JSON); the 2xx status, or DeliveryFailed with the reason."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(64 * 1024)
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        detail = _read_error(exc)
        if 300 <= exc.code < 400:
            where = exc.headers.get("Location", "?") if exc.headers else "?"
            raise DeliveryFailed(f"HTTP {exc.code} redirect to {where} (not followed)") from None
        raise DeliveryFailed(f"HTTP {exc.code}" + (f": {detail}" if detail else "")) from None
    except urllib.error.URLError as exc:
        raise DeliveryFailed(_describe(exc.reason)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryFailed(_describe(exc)) from None
    if not 200 <= status < 300:
        raise DeliveryFailed(f"HTTP {status}")
    return status


def _read_error(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read(MAX_ERROR_BODY * 4)
    except (OSError, http.client.HTTPException):
        return ""
    finally:
        exc.close()
    text = raw.decode("utf-8", errors="replace").strip()
    return " ".join(text.split())[:MAX_ERROR_BODY]


def _describe(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, BaseException):
        text = str(reason) or type(reason).__name__
        return f"{type(reason).__name__}: {text}"[:MAX_ERROR_BODY]
    return str(reason)[:MAX_ERROR_BODY]
