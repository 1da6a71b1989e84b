"""The periodic probe job: every ``interval_s``, probe every target of the fleet inventory and
publish the results.

- Rounds run on a wall-clock grid (multiples of ``interval_s`` since the epoch), plus one at start.
  The grid slot is the round's *scheduled time*; ``probe_id = stable_id(vantage, server_id, kind,
  transport, scheduled time)``, so a re-published round converges instead of duplicating.
  ``at`` is when each probe actually started.
- Probes of one round run in parallel (``max_workers``); a round never overlaps the next one.
- Allocate probes run only with TURN credentials configured (static or TURN REST secret).
- The publisher blocks until acknowledged or raises ``Unavailable``. On failure the results are
  kept (at most ``max_pending``, oldest dropped first, with a warning) and sent with the next round.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from collector import contract
from collector.contract import ProbeResult
from collector.errors import Unavailable
from collector.inventory import Inventory
from collector.probes import client
from collector.probes.client import Credentials, Outcome, ProbeOptions
from collector.probes.credentials import probe_credentials, probe_options
from collector.probes.targets import ProbeTarget, targets_for
from collector.publisher import Publisher
from collector.settings import ProbeSettings

log = logging.getLogger(__name__)

ProbeFn = Callable[[ProbeTarget, Credentials | None, ProbeOptions], Outcome]
JOB_ID = "icewatch-probes"


def default_probe(target: ProbeTarget, credentials: Credentials | None, options: ProbeOptions) -> Outcome:
    return client.probe(target.kind, target.host, target.port, target.transport, credentials, options)


def probe_id(vantage: str, target: ProbeTarget, scheduled_at: datetime) -> str:
    return contract.stable_id(vantage, target.server_id, target.kind, target.transport, scheduled_at.isoformat())


class ProbeScheduler:
    """Probe rounds over an inventory, published through ``publisher``.

    ``run_once()`` runs one round synchronously (probe, then publish what is pending) and returns
    that round's results; ``start()``/``shutdown()`` run rounds in an APScheduler
    ``BackgroundScheduler``."""

    def __init__(
        self,
        inventory: Inventory,
        settings: ProbeSettings,
        publisher: Publisher,
        *,
        probe_fn: ProbeFn = default_probe,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.probe_fn = probe_fn
        self.clock = clock
        kinds: tuple[client.Kind, ...] = ("stun_binding", "turn_allocate")
        all_targets = targets_for(inventory, settings.transports)
        if not settings.has_turn_credentials:
            kinds = ("stun_binding",)
            skipped = sum(1 for t in all_targets if t.kind == "turn_allocate")
            if skipped:
                log.warning("no TURN credentials configured: %d Allocate probe target(s) skipped", skipped)
        self.targets: list[ProbeTarget] = [t for t in all_targets if t.kind in kinds]
        self._pending: deque[ProbeResult] = deque()
        self._dropped = 0
        self.probes_run = 0  # results of every round so far (icewatch_probe_results)
        self.probes_failed = 0
        self._lock = threading.Lock()
        self._round = threading.Lock()
        self._scheduler: BackgroundScheduler | None = None

    # ---- one round ------------------------------------------------------------------------------

    def slot(self, now: float | None = None) -> datetime:
        """The scheduled time of the round running at ``now``: the grid point at or before it."""
        t = self.clock() if now is None else now
        interval = self.settings.interval_s
        return datetime.fromtimestamp(math.floor(t / interval) * interval, UTC)

    def _probe_one(self, target: ProbeTarget, scheduled_at: datetime, options: ProbeOptions) -> ProbeResult:
        at = datetime.fromtimestamp(self.clock(), UTC)
        credentials = probe_credentials(self.settings) if target.kind == "turn_allocate" else None
        try:
            outcome = self.probe_fn(target, credentials, options)
        except Exception as exc:  # a bug in a probe must not lose the round
            log.exception("probe of %s %s %s crashed", target.server_id, target.kind, target.transport)
            outcome = Outcome(False, error=f"internal: {type(exc).__name__}")
        return client.to_result(
            outcome,
            probe_id=probe_id(self.settings.vantage, target, scheduled_at),
            server_id=target.server_id,
            region=target.region,
            vantage=self.settings.vantage,
            kind=target.kind,
            transport=target.transport,
            target=target.target,
            at=at,
        )

    def probe_all(self, scheduled_at: datetime | None = None) -> list[ProbeResult]:
        """Probe every target once (in parallel); results in target order. Publishes nothing."""
        scheduled = scheduled_at or self.slot()
        options = probe_options(self.settings)
        if not self.targets:
            return []
        workers = min(self.settings.max_workers, len(self.targets))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe") as pool:
            return list(pool.map(lambda t: self._probe_one(t, scheduled, options), self.targets))

    def run_once(self, scheduled_at: datetime | None = None) -> list[ProbeResult]:
        """One round: probe everything, queue the results, publish everything pending."""
        results = self.probe_all(scheduled_at)
        failed = [r for r in results if not r.success]
        self.probes_run += len(results)
        self.probes_failed += len(failed)
        for r in failed:
            log.info(
                "probe failed: server=%s kind=%s transport=%s target=%s code=%s error=%s",
                r.server_id, r.kind, r.transport, r.target, r.error_code, r.error, extra={"probe_id": r.probe_id},
            )  # fmt: skip
        self._enqueue(results)
        published = self.flush()
        log.info(
            "probe round: %d probes, %d failed, published=%s, pending=%d",
            len(results), len(failed), published, self.pending,
        )  # fmt: skip
        return results

    # ---- publishing -----------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Results waiting for the publisher."""
        with self._lock:
            return len(self._pending)

    @property
    def dropped(self) -> int:
        """Results dropped so far because the pending queue was full."""
        return self._dropped

    def _enqueue(self, results: Sequence[ProbeResult]) -> None:
        with self._lock:
            self._pending.extend(results)
            overflow = len(self._pending) - self.settings.max_pending
            for _ in range(max(0, overflow)):
                self._pending.popleft()
            if overflow > 0:
                self._dropped += overflow
                log.warning("publisher backlog full: dropped the %d oldest probe result(s)", overflow)

    def flush(self) -> bool:
        """Publish every pending result; False (results kept) when the publisher fails."""
        with self._lock:
            batch = list(self._pending)
            if not batch:
                return True
            try:
                self.publisher.publish(batch, self.settings.tenant)
            except Unavailable as exc:
                log.warning("publishing %d probe result(s) failed, kept for the next round: %s", len(batch), exc)
                return False
            except Exception:
                log.exception("publishing %d probe result(s) failed, kept for the next round", len(batch))
                return False
            for _ in batch:
                self._pending.popleft()
            return True

    # ---- background scheduling ------------------------------------------------------------------

    def _tick(self) -> None:
        if not self._round.acquire(blocking=False):
            log.warning("previous probe round still running: this round is skipped")
            return
        try:
            self.run_once()
        except Exception:  # keep the scheduler alive whatever happens in one round
            log.exception("probe round failed")
        finally:
            self._round.release()

    def start(self, run_now: bool = True) -> None:
        """Run rounds in the background on the ``interval_s`` grid (and one right away)."""
        if self._scheduler is not None:
            raise RuntimeError("the probe scheduler is already running")
        scheduler = BackgroundScheduler(timezone=UTC)
        trigger = IntervalTrigger(seconds=self.settings.interval_s, start_date=datetime(2000, 1, 1, tzinfo=UTC))
        scheduler.add_job(
            self._tick,
            trigger,
            id=JOB_ID,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(self.settings.interval_s)),
        )
        if run_now:
            scheduler.add_job(self._tick, id=f"{JOB_ID}-first", max_instances=1)
        scheduler.start()
        self._scheduler = scheduler
        log.info(
            "probing %d target(s) every %.0f s as vantage %r",
            len(self.targets), self.settings.interval_s, self.settings.vantage,
        )  # fmt: skip

    def shutdown(self, wait: bool = True) -> None:
        """Stop scheduling (waiting for a running round) and try once more to publish what is pending."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=wait)
            self._scheduler = None
        self.flush()

    @property
    def running(self) -> bool:
        return self._scheduler is not None and bool(self._scheduler.running)
