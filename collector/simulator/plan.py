"""The simulated fleet: who calls from where, through which network, and what happens to the call.

Pure and seeded: call ``n`` of a fleet with seed ``s`` is planned from ``random.Random(f"{s}/{n}")``
and the conditions at its start, so the same seed gives the same calls (apart from wall-clock times).

Clients of a region get addresses from the region's block of 203.0.113.0/24 (documentation range;
the demo GeoIP database places each block near its region). Each server's relayed addresses come
from its own inventory range, so a call's relay candidate and the server's log agree.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.distance import great_circle_km
from collector.ice_url import parse_ice_url, protocol_from_turn_url
from collector.inventory import Inventory, Server
from collector.simulator.incidents import Conditions

# Client networks: open (public address), cone NAT (srflx works), symmetric NAT (needs a relay),
# UDP-blocking corporate networks (need TURN over TCP/TLS).
NAT_MIX: tuple[tuple[str, float], ...] = (("open", 0.12), ("cone", 0.56), ("symmetric", 0.22), ("udp_blocked", 0.10))
UDP_WAVE_MIX: tuple[tuple[str, float], ...] = (("open", 0.05), ("cone", 0.15), ("symmetric", 0.10),
                                               ("udp_blocked", 0.70))
BROWSERS: tuple[tuple[str, float], ...] = (("chrome", 0.64), ("safari", 0.2), ("firefox", 0.16))
SDK_VERSIONS: tuple[tuple[str, float], ...] = (("2.27.10", 0.6), ("2.27.9", 0.3), ("2.26.4", 0.1))
# Median RTT (ms) to the region's own TURN site, per client region; a relay adds a hop.
BASE_RTT_MS = {"us-east": 28.0, "us-west": 32.0, "eu": 24.0, "apac": 45.0}
ICE_FAILURE_RATE = 0.01
DTLS_STALL_RATE = 0.005
DISTANT_TURN_RATE = 0.02
TELNYX_SHARE = 0.4  # the rest report in the W3C format
CLIENT_BLOCK = ipaddress.IPv4Network("203.0.113.0/24")
PROBE_USER = "icewatch-probe"


@dataclass(frozen=True)
class CallPlan:
    index: int
    call_id: str
    region: str
    client_ip: str
    client_port: int
    nat: str
    browser: str
    sdk_version: str
    fmt: str  # "w3c" | "telnyx"
    start: datetime
    seconds: int
    configured: Server  # the TURN/STUN server the client was given
    urls: tuple[str, ...]  # its stun:/turn:/turns: URLs
    path: str  # host | srflx | prflx | relay-udp | relay-tcp | relay-tls | failed
    relay_url: str | None
    relay_address: str | None
    relay_port: int | None
    errors: tuple[tuple[str, int], ...]  # (url, code) candidate errors
    rtt_ms: float
    jitter_ms: float
    loss_pct: float
    dtls_stall: bool
    auth_rejected: bool  # the server rejected the client's credentials (401 with a user)
    alloc_refused: int | None = None  # the server refused the ALLOCATE after the challenge (486/508)

    @property
    def relayed(self) -> bool:
        return self.path.startswith("relay")

    @property
    def session_id(self) -> str:
        """coturn's 18-digit session id of the call's allocation on its server."""
        return f"{100_000_000_000_000_000 + self.index:018d}"


def _pick(rng: random.Random, weights: tuple[tuple[str, float], ...]) -> str:
    return _by_roll(rng.random(), weights)


def inventory_regions(inventory: Inventory) -> list[str]:
    """The inventory's regions in its order (else those its servers name)."""
    return [r.id for r in inventory.regions] or sorted({s.region for s in inventory.servers})


def client_block(inventory: Inventory, region: str) -> ipaddress.IPv4Network:
    """The region's /26 (or smaller) of 203.0.113.0/24, in inventory order."""
    regions = inventory_regions(inventory)
    bits = max(2, (len(regions) - 1).bit_length())
    blocks: list[ipaddress.IPv4Network] = list(CLIENT_BLOCK.subnets(new_prefix=24 + bits))
    return blocks[regions.index(region)]


def relay_addresses(server: Server) -> ipaddress.IPv4Network:
    """The first IPv4 range of the server: its relayed (and listener) addresses."""
    for a in server.addresses:
        net = ipaddress.ip_network(a, strict=False)
        if isinstance(net, ipaddress.IPv4Network):
            return net
    raise ValueError(f"server {server.id} has no IPv4 address range for relayed addresses")


class Fleet:
    def __init__(self, inventory: Inventory, seed: int = 1, run: str = "") -> None:
        """``run`` tags the call ids of one simulation run (empty: ``sim-<seed>-<n>``), so a second run
        with the same seed adds calls instead of replacing the first run's."""
        self.inventory = inventory
        self.seed = seed
        self.run = run
        self.turn_servers = [s for s in inventory.servers if s.is_turn]
        if not self.turn_servers:
            raise ValueError("the inventory has no TURN server to simulate")
        for server in self.turn_servers:
            try:
                net = relay_addresses(server)
            except ValueError as exc:
                raise ValueError(f"{exc}: the simulator needs one") from None
            if net.num_addresses < 4:
                raise ValueError(f"server {server.id}: its IPv4 range {net} is too small for relayed addresses "
                                 "(the simulator needs a /30 or larger)")
        self.regions = sorted({s.region for s in self.turn_servers})
        if len(self.regions) > 64:
            raise ValueError(f"{len(self.regions)} regions: the simulator places at most 64 in 203.0.113.0/24")

    def servers_of(self, region: str) -> list[Server]:
        return [s for s in self.turn_servers if s.region == region]

    def check(self, conditions_servers: set[str], conditions_regions: set[str]) -> None:
        """ValueError naming an incident target the fleet does not have."""
        unknown = sorted(conditions_servers - {s.id for s in self.turn_servers})
        unknown += sorted(conditions_regions - set(self.regions))
        if unknown:
            raise ValueError(f"unknown incident target(s) {', '.join(unknown)}; TURN servers: "
                             f"{', '.join(s.id for s in self.turn_servers)}; regions: {', '.join(self.regions)}")

    def plan(self, index: int, ended_at: datetime, conditions: Conditions, seconds: int | None = None) -> CallPlan:
        """Call ``index``, which ended at ``ended_at`` (its report is uploaded then). Every random draw
        is made whatever the conditions, so an incident changes only what it acts on."""
        rng = random.Random(f"{self.seed}/{index}")
        region = rng.choice(self.regions)
        nat_roll = rng.random()
        browser, sdk_version = _pick(rng, BROWSERS), _pick(rng, SDK_VERSIONS)
        fmt = "telnyx" if rng.random() < TELNYX_SHARE else "w3c"
        drawn_seconds = rng.randint(20, 60)
        duration = seconds if seconds is not None else drawn_seconds
        block = client_block(self.inventory, region)
        client_ip = str(block[1 + rng.randrange(block.num_addresses - 2)])
        client_port = rng.randrange(40000, 60000)
        home_roll, distant_roll, distant_pick = rng.random(), rng.random(), rng.random()
        fail_roll, tls_roll, dtls_roll = rng.random(), rng.random(), rng.random()
        rtt_factor, jitter_factor, loss_draw = rng.lognormvariate(0.0, 0.25), rng.lognormvariate(0.0, 0.4), \
            rng.expovariate(2.0)

        nat = _by_roll(nat_roll, UDP_WAVE_MIX if region in conditions.regions_udp_blocked else NAT_MIX)
        own = self.servers_of(region)
        home = own[int(home_roll * len(own))]
        configured = home
        elsewhere = [s for s in self.turn_servers if s.region != region]
        misrouted = conditions.misrouted_to(region)
        if misrouted is not None:
            configured = next(s for s in self.turn_servers if s.id == misrouted)
        elif distant_roll < DISTANT_TURN_RATE and elsewhere:
            configured = elsewhere[int(distant_pick * len(elsewhere))]

        urls = tuple(configured.urls)
        stun_urls = [u for u in urls if (p := parse_ice_url(u)) is not None and p.is_stun]
        turn_urls = [u for u in urls if (p := parse_ice_url(u)) is not None and p.is_turn]
        by_protocol: dict[str, str] = {}  # udp/tcp/tls -> the first TURN URL of that transport
        for u in turn_urls:
            if (protocol := protocol_from_turn_url(u)) is not None:
                by_protocol.setdefault(protocol, u)
        down = configured.id in conditions.servers_down
        auth_broken = configured.id in conditions.servers_auth_broken
        # a full server answers the ALLOCATE (after the challenge) with its quota or capacity error
        refused = quota_code(index) if configured.id in conditions.servers_quota_full and not (down or auth_broken) \
            else None
        stun_blocked = region in conditions.regions_stun_blocked
        errors: list[tuple[str, int]] = []
        if down or stun_blocked:
            errors += [(u, 701) for u in stun_urls]
        if down:
            errors += [(u, 701) for u in turn_urls]
        elif auth_broken:
            errors += [(u, 401) for u in turn_urls]
        elif refused is not None:
            errors += [(u, refused) for u in turn_urls]
        relay_ok = bool(turn_urls) and not down and not auth_broken and refused is None
        srflx_ok = bool(stun_urls) and not down and not stun_blocked and nat != "udp_blocked"
        tcp_ok = "tcp" in by_protocol or "tls" in by_protocol

        path: str
        if fail_roll < ICE_FAILURE_RATE:
            path = "failed"
        elif nat == "open":
            path = "host"
        elif nat == "cone":
            path = "srflx" if srflx_ok else ("relay-udp" if relay_ok and "udp" in by_protocol else "prflx")
        elif nat == "symmetric":
            path = "relay-udp" if relay_ok and "udp" in by_protocol else "failed"
        elif relay_ok and tcp_ok:  # UDP blocked: TCP, or TLS on 443 where only web traffic passes
            path = "relay-tls" if ("tls" in by_protocol and (tls_roll < 0.45 or "tcp" not in by_protocol)) \
                else "relay-tcp"
        else:
            path = "failed"

        relay_url = relay_address = None
        relay_port = None
        if path.startswith("relay"):
            relay_url = by_protocol[path.removeprefix("relay-")]
            net = relay_addresses(configured)
            relay_address = str(net[1 + index % (net.num_addresses - 2)])
            relay_port = 49152 + index % 16000

        rtt = BASE_RTT_MS.get(region, 35.0) * rtt_factor
        if path.startswith("relay"):
            rtt += 6.0 + (12.0 if path != "relay-udp" else 0.0)
            if configured.region != region and None not in (home.lat, home.lon, configured.lat, configured.lon):
                # light in fibre: about 1 ms of round trip per 100 km
                km = great_circle_km(home.lat or 0.0, home.lon or 0.0, configured.lat or 0.0, configured.lon or 0.0)
                rtt += km / 100.0
        jitter = max(0.5, rtt * 0.08 * jitter_factor)
        loss = min(20.0, loss_draw * (2.0 if path in ("relay-tcp", "relay-tls") else 1.0))
        # A middlebox dropping the DTLS handshake's large fragmented UDP datagrams: ICE connects, DTLS
        # never does, unless the media goes through a TURN TCP/TLS relay (DTLS then rides a TCP stream).
        dtls_blocked = region in conditions.regions_dtls_blocked and path not in ("failed", "relay-tcp", "relay-tls")
        dtls_stall = path != "failed" and (dtls_roll < DTLS_STALL_RATE or dtls_blocked)
        run = f"{self.run}-" if self.run else ""
        return CallPlan(
            index=index, call_id=f"sim-{self.seed}-{run}{index:07d}", region=region, client_ip=client_ip,
            client_port=client_port, nat=nat, browser=browser, sdk_version=sdk_version, fmt=fmt,
            start=ended_at - timedelta(seconds=duration), seconds=duration, configured=configured, urls=urls,
            path=path, relay_url=relay_url, relay_address=relay_address, relay_port=relay_port,
            errors=tuple(errors), rtt_ms=round(rtt, 1), jitter_ms=round(jitter, 2), loss_pct=round(loss, 2),
            dtls_stall=dtls_stall, auth_rejected=auth_broken and not down and bool(turn_urls),
            alloc_refused=refused if turn_urls else None,
        )


QUOTA_REASONS = {486: "Allocation Quota Reached", 508: "Cannot create socket"}  # coturn's reason phrases


def quota_code(index: int) -> int:
    """The error a full server gives call (or probe round) ``index``: 486 (its quota reached) for two
    in three, 508 (no relay port left) for the rest. No random draw: the other draws stay as they are."""
    return 508 if index % 3 == 2 else 486


def _by_roll(roll: float, weights: tuple[tuple[str, float], ...]) -> str:
    """The name whose cumulative weight first exceeds ``roll`` (one uniform draw, any distribution)."""
    total = sum(w for _, w in weights)
    acc = 0.0
    for name, w in weights:
        acc += w / total
        if roll < acc:
            return name
    return weights[-1][0]
