"""The evaluator as the settings configure it, for ``icewatch run`` (embedded store) and
``icewatch alerts run`` (a ClickHouse server)."""

from __future__ import annotations

from alerts.evaluator import Evaluator
from alerts.notify.build import notifiers_from
from alerts.rules import load_rules
from collector.settings import Settings
from processors.store.sink import Sink


def evaluator_for(settings: Settings, sink: Sink) -> Evaluator:
    """Every shipped rule on ``sink`` (``keep_firing_for`` capped by ICEWATCH_ALERTS__KEEP_FIRING_FOR_MAX_S
    when set), delivering to the configured notifiers; its state in ICEWATCH_ALERTS__STATE_PATH
    (default: <data dir>/alerts/state.json)."""
    cfg = settings.alerts
    state_path = cfg.state_path or settings.data_dir / "alerts" / "state.json"
    rules = load_rules()
    if cfg.keep_firing_for_max_s is not None:  # ICEWATCH_ALERTS__KEEP_FIRING_FOR_MAX_S
        cap = cfg.keep_firing_for_max_s
        rules = [r.model_copy(update={"keep_firing_for": min(r.keep_firing_for, cap)}) for r in rules]
    return Evaluator(sink, rules, notifiers_from(settings), state_path, cfg.external_url,
                     resend_s=cfg.resend_s)
