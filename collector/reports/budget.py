"""The work one upload may cause, in proportion to its size: every reader charges the samples
(snapshots or intervals, each one a ``Sample`` of a report), the stats objects and the dump events
it is about to build *before* building them, so a crafted body meets ``PayloadTooLarge`` (413)
instead of costing far more CPU than decoding its JSON.

Why per byte: building and validating a sample costs ~4-15 us, a stats object of a snapshot
~0.5-2 us, an event a few us, while decoding a byte of JSON costs a few ns. A crafted body can ask
for a sample in 14 bytes (one timestamp) or for a snapshot of every known object in a 16-byte
rtcstats v3 delta line. The allowances below stay well under what real captures carry, and the
floors keep small real uploads far from any limit. tests/bench/bench_hostile_parse.py measures
what the edge costs.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.errors import PayloadTooLarge

# Body bytes per sample beyond the floor. webrtc-internals repeats every property of every object
# at every poll (kilobytes a poll); rtcstats deltas carry only what changed (an audio-only call
# polled every second: ~800 bytes), a W3C client may send only the objects icewatch reads (a few
# hundred bytes), older Telnyx SDKs ~400-byte intervals.
DUMP_SAMPLE_BYTES = 1_024
SAMPLE_BYTES = 256
MIN_SAMPLES = 2_000
# Body bytes per stats object of a snapshot beyond the floor. rtcstats v3 carries an unchanged
# object over at no cost; a real poll changes several of its ~20 objects (~30 bytes an object).
OBJECT_BYTES = 16
# webrtc-internals repeats every property of every object at every poll, timestamp included: a
# codec (6 properties) takes ~100 bytes a poll, a candidate ~150, a certificate over 1,000, an RTP
# stream (30-90 properties) several hundred.
DUMP_OBJECT_BYTES = 64
MIN_OBJECTS = 100_000  # a 1-hour call polled every second with ~25 objects a poll
EVENT_BYTES = 256  # body bytes per peer-connection event (state change, candidate, error) beyond the floor
MIN_EVENTS = 10_000
MAX_PROPERTIES = 1_000  # properties of one stats object (Chrome's largest, inbound-rtp video, has ~90)


@dataclass
class Budget:
    """What is left of one upload's allowance; ``samples``/``objects`` count what was charged."""

    max_samples: int
    max_objects: int
    sample_bytes: int = SAMPLE_BYTES
    object_bytes: int = OBJECT_BYTES
    max_events: int = MIN_EVENTS
    samples: int = 0
    objects: int = 0
    events: int = 0

    @classmethod
    def for_body(cls, size: int, sample_bytes: int = SAMPLE_BYTES, object_bytes: int = OBJECT_BYTES) -> Budget:
        return cls(
            max(MIN_SAMPLES, size // sample_bytes),
            max(MIN_OBJECTS, size // object_bytes),
            sample_bytes,
            object_bytes,
            max(MIN_EVENTS, size // EVENT_BYTES),
        )

    def charge_samples(self, n: int) -> None:
        """Before building ``n`` more samples (snapshots, intervals) of this upload."""
        self.samples += n
        if self.samples > self.max_samples:
            raise PayloadTooLarge(
                f"more than {self.max_samples} samples (snapshots or intervals) in one upload of this size: "
                f"at most {MIN_SAMPLES} or one per {self.sample_bytes} bytes of body"
            )

    def charge_objects(self, n: int) -> None:
        """Before building (or copying) ``n`` more stats objects of this upload's snapshots."""
        self.objects += n
        if self.objects > self.max_objects:
            raise PayloadTooLarge(
                f"more than {self.max_objects} stats objects over the snapshots of one upload of this size: "
                f"at most {MIN_OBJECTS} or one per {self.object_bytes} bytes of body"
            )


    def charge_event(self) -> None:
        """Before building one more state change, candidate or candidate error of a dump."""
        self.events += 1
        if self.events > self.max_events:
            raise PayloadTooLarge(
                f"more than {self.max_events} peer-connection events in one upload of this size: "
                f"at most {MIN_EVENTS} or one per {EVENT_BYTES} bytes of body"
            )


def check_properties(n: int, path: str) -> None:
    """A stats object with more properties than any real one is refused before it is copied."""
    if n > MAX_PROPERTIES:
        raise PayloadTooLarge(f"a stats object with {n} properties; at most {MAX_PROPERTIES}", path=path)
