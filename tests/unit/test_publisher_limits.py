"""Messages over the broker limit are refused on purpose, before anything is sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.contract import CallReport, DeadLetter, Sample
from collector.errors import PayloadTooLarge
from collector.kafka_publisher import KafkaPublisher, _shrink
from collector.settings import KafkaSettings, Topics

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def test_a_report_over_the_limit_is_refused_with_its_size() -> None:
    report = CallReport(
        call_id="big", report_id="r", source_format="w3c",
        samples=[Sample(start=T0 + timedelta(seconds=i), rtt_ms=10.0) for i in range(2000)],
    )
    # Nothing listens on port 1: the size check must come before any connection attempt.
    pub = KafkaPublisher(KafkaSettings(bootstrap="127.0.0.1:1", max_message_bytes=10_000), Topics(), "test")
    with pytest.raises(PayloadTooLarge, match=r"call_report is \d+ bytes .* limit is 10000"):
        pub.publish([report])


def test_a_dead_letter_over_the_limit_is_truncated_not_dropped() -> None:
    dl = DeadLetter(stage="collector", intended="call_report", reason="bad", raw="x" * 50_000)
    small = _shrink(dl, 30_000)
    assert small.raw_truncated and len(small.raw) <= 50_000 - 30_000
    assert small.reason == "bad"
