"""Per-call facts: one canonical ``CallReport`` in, one ``CallFacts`` row out (pure, deterministic).

Each fact family lives in its own module; this one only composes them:
candidate_mix (pair, path class, TURN server), relay_distance (geo, km), ice (timing, failures),
dtls (stall), rtt (bands), quality (jitter, loss, MOS), diagnosis (labels).
Reports are taken as they come: states, pairs and samples may be out of order or repeated
(resent segments); every module orders and de-duplicates what it reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from collector.contract import CallReport
from collector.inventory import Inventory
from processors.facts.candidate_mix import derive_candidate_mix
from processors.facts.diagnosis import diagnose
from processors.facts.dtls import DEFAULT_DTLS_STALL_MS, derive_dtls
from processors.facts.geo import GeoLocator, NoGeoLocator
from processors.facts.ice import derive_ice
from processors.facts.model import CallFacts
from processors.facts.quality import derive_quality
from processors.facts.relay_distance import DEFAULT_DISTANT_RELAY_KM, derive_relay_distance
from processors.facts.rtt import derive_rtt, seconds_from_durations
from processors.facts.timeline import in_time_order, sample_durations, time_order


@dataclass(frozen=True)
class FactsEnv:
    """What derivation needs besides the report: the fleet, a geolocator, two thresholds."""

    inventory: Inventory = field(default_factory=Inventory)
    geo: GeoLocator = field(default_factory=NoGeoLocator)
    distant_relay_km: float = DEFAULT_DISTANT_RELAY_KM
    dtls_stall_ms: float = DEFAULT_DTLS_STALL_MS

    @classmethod
    def default(cls) -> FactsEnv:
        """No inventory, no geo database, default thresholds: works without any configuration."""
        return cls()


def _sdk_note(report: CallReport, code: str) -> str:
    """The text of the SDK note with this code (the reader's copy of an upload's id), else ""."""
    return next((n.text for n in report.notes if n.source == "sdk" and n.code == code), "")


def derive_call_facts(
    report: CallReport, env: FactsEnv, durations: Sequence[float | None] | None = None
) -> CallFacts:
    """The facts of one report. ``durations``: ``timeline.sample_durations(report.samples)``, if at
    hand (the row builder computes them once for these facts and the samples' rows)."""
    order = time_order(report.samples)
    samples = in_time_order(report.samples, order)
    if durations is None:
        durations = sample_durations(report.samples)
    seconds = seconds_from_durations(in_time_order(durations, order))
    mix = derive_candidate_mix(report, env.inventory)
    distance = derive_relay_distance(report, mix, env.inventory, env.geo, env.distant_relay_km)
    ice = derive_ice(report, samples)
    dtls = derive_dtls(report, env.dtls_stall_ms, samples)
    rtt = derive_rtt(report, samples, seconds)
    quality = derive_quality(report, rtt.median_ms, samples, seconds)
    diagnosis = diagnose(mix, ice, dtls, distance, rtt)
    bands = rtt.seconds_per_band
    return CallFacts(
        call_id=report.call_id,
        report_id=report.report_id,
        segment=report.segment or 0,
        source_format=report.source_format,
        peer_connection_id=report.peer_connection_id or "",
        sdk_name=report.sdk_name or "",
        sdk_version=report.sdk_version or "",
        browser=report.browser or "",
        started_at=report.started_at,
        ended_at=report.ended_at,
        client_address=distance.client_address,
        client_country=distance.client_country,
        client_lat=distance.client_lat,
        client_lon=distance.client_lon,
        client_region=distance.client_region,
        geo_source=distance.geo_source,
        local_candidate_type=mix.local_candidate_type,
        remote_candidate_type=mix.remote_candidate_type,
        local_protocol=mix.local_protocol,
        relay_protocol=mix.relay_protocol,
        relay_protocol_source=mix.relay_protocol_source,
        path_class=mix.path_class,
        turn_url=mix.turn_url,
        turn_server_id=mix.turn_server_id,
        turn_region=mix.turn_region,
        gathered_types=list(mix.gathered_types),
        configured_turn=mix.configured_turn,
        configured_stun=mix.configured_stun,
        configured_turn_region=mix.configured_turn_region,
        pair_changes=mix.pair_changes,
        relay_distance_km=distance.relay_distance_km,
        nearest_server_id=distance.nearest_server_id,
        nearest_distance_km=distance.nearest_distance_km,
        excess_km=distance.excess_km,
        distant_relay=distance.distant_relay,
        ice_gathering_ms=ice.ice_gathering_ms,
        first_srflx_ms=ice.first_srflx_ms,
        first_relay_ms=ice.first_relay_ms,
        ice_connect_ms=ice.ice_connect_ms,
        ice_connected=ice.ice_connected,
        ice_failed=ice.ice_failed,
        never_connected=ice.never_connected,
        reconnects=ice.reconnects,
        candidate_errors=list(ice.candidate_errors),
        dtls_connect_ms=dtls.dtls_connect_ms,
        dtls_connected=dtls.dtls_connected,
        dtls_stall=dtls.dtls_stall,
        dtls_stall_ms=dtls.dtls_stall_ms,
        dtls_failed=dtls.dtls_failed,
        rtt_source=rtt.source,
        rtt_samples=rtt.samples,
        rtt_median_ms=rtt.median_ms,
        rtt_p95_ms=rtt.p95_ms,
        rtt_max_ms=rtt.max_ms,
        rtt_band=rtt.band,
        seconds_excellent=bands.get("excellent", 0.0),
        seconds_good=bands.get("good", 0.0),
        seconds_acceptable=bands.get("acceptable", 0.0),
        seconds_poor=bands.get("poor", 0.0),
        jitter_ms=quality.jitter_ms,
        loss_pct=quality.loss_pct,
        mos=quality.mos,
        connection_send_kbps=quality.connection_send_kbps,
        connection_recv_kbps=quality.connection_recv_kbps,
        sdk_warnings=sorted({n.code for n in report.notes if n.source == "sdk" and n.code.isdigit()}),
        call_report_id=_sdk_note(report, "call-report-id"),
        voice_sdk_id=_sdk_note(report, "voice-sdk-id"),
        diagnosis=diagnosis.primary,
        labels=list(diagnosis.labels),
    )
