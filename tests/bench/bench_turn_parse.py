"""Benchmark: coturn log lines parsed per second on one core (not a pytest test).

Generates a realistic verbose coturn log (UDP, TCP and TLS sessions with the 401 challenge,
relay address, allocation, permissions, channel binds, refreshes, usage and peer usage deltas,
closes and deletes, plus rejected credentials, denied peers with the duplicate message line,
438 nonces and startup lines) in the chosen prefix era and times ``CoturnParser.parse`` over it.

    .venv/bin/python tests/bench/bench_turn_parse.py [--lines 300000] [--era E3] [--wrapper none|syslog]
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections import Counter
from collections.abc import Callable

from collector.contract import TurnEvent
from collector.turn.coturn import CoturnParser
from tests.bench.table import Row, emit

ERAS: dict[str, Callable[[int, str, str], str]] = {
    "E1": lambda t, lvl, m: f"{t}: {'ERROR: ' if lvl == 'ERROR' else ''}{m}",
    "E2": lambda t, lvl, m: f"{t}: : {'ERROR: ' if lvl == 'ERROR' else ''}{m}",
    "E3": lambda t, lvl, m: f"{t}: ({17 + t % 4}): {lvl}: {m}",
    "E3ts": lambda t, lvl, m: (
        f"2026-11-23T{10 + t // 3600 % 10:02d}:{t // 60 % 60:02d}:{t % 60:02d}+0000(17): {lvl}: {m}"
    ),
    "E4": lambda t, lvl, m: f"2026-11-23T{10 + t // 3600 % 10:02d}:{t // 60 % 60:02d}:{t % 60:02d}.123+0000 {lvl} {m}",
}


def session_lines(sid: int, t: int, rng: random.Random) -> list[tuple[int, str, str]]:
    s = f"session {sid:018d}: "
    user = f"{1700000000 + sid}:user{sid % 977}"
    realm = "turn.example.org"
    client = f"198.51.{sid % 250}.{sid % 200 + 1}:{40000 + sid % 20000}"
    relay = f"203.0.113.10:{50000 + sid % 10000}"
    peer = f"192.0.2.{sid % 250 + 1}"
    kind = rng.random()
    tls = kind < 0.2
    tcp = kind < 0.35
    out: list[tuple[int, str, str]] = []

    def add(dt: int, lvl: str, msg: str) -> None:
        out.append((t + dt, lvl, msg))

    req = f"realm <{realm}> user <{user}>: incoming packet "
    if tcp:
        add(0, "INFO", f"IPv4. tcp or tls connected to: {client}")
    add(0, "INFO", s + f"realm <{realm}> user <>: incoming packet message processed, error 401: Unauthorized")
    if rng.random() < 0.05:  # rejected credentials
        add(0, "ERROR", s + f"check_stun_auth: Cannot find credentials of user <{user}>")
        add(0, "INFO", s + req + "message processed, error 401: Unauthorized")
        add(60, "INFO", s + f"usage: realm=<{realm}>, username=<>, rp=2, rb=40, sp=2, sb=192")
        add(60, "INFO", s + f"closed (2nd stage), user <> realm <{realm}> origin <>, local 203.0.113.10:3478, "
            f"remote {client}, reason: allocation watchdog determined stale session state")  # fmt: skip
        return out
    add(0, "INFO", f"IPv4. Local relay addr: {relay}")
    cipher = ", cipher=TLS_AES_256_GCM_SHA384, method=TLSv1.3" if tls else ""
    add(0, "INFO", s + f"new, realm=<{realm}>, username=<{user}>, lifetime=600{cipher}")
    add(0, "INFO", s + req + "ALLOCATE processed, success")
    add(1, "INFO", s + f"peer {peer} lifetime updated: 300")
    add(1, "INFO", s + req + "CREATE_PERMISSION processed, success")
    add(1, "INFO", s + f"peer {peer}:3{sid % 9000 + 1000} lifetime updated: 600")
    add(1, "INFO", s + req + "CHANNEL_BIND processed, success")
    if rng.random() < 0.05:
        add(1, "ERROR", s + f"A peer IP 10.{sid % 250}.0.1 denied in the range= 10.0.0.0-10.255.255.255 in server 2 ")
        add(1, "INFO", s + req + "CREATE_PERMISSION processed, error 403: Forbidden IP")
        add(1, "INFO", s + req + "message processed, error 403: Forbidden IP")
    if rng.random() < 0.03:
        add(2, "INFO", s + req + "message processed, error 438: Stale nonce")
    dur = rng.randint(30, 900)
    for k in range(dur // 300):
        add(300 * (k + 1), "INFO", s + f"refreshed, realm=<{realm}>, username=<{user}>, lifetime=600{cipher}")
        add(300 * (k + 1), "INFO", s + req + "REFRESH processed, success")
    for k in range(max(1, dur // 120)):
        at = min(dur, 120 * (k + 1))
        add(at, "INFO", s + f"usage: realm=<{realm}>, username=<{user}>, rp=2100, rb=290000, sp=1996, sb=275000")
        add(at, "INFO", s + f"peer usage: realm=<{realm}>, username=<{user}>, rp=1996, rb=260000, sp=2100, sb=270000")
    add(dur, "INFO", s + f"refreshed, realm=<{realm}>, username=<{user}>, lifetime=0{cipher}")
    add(dur, "INFO", s + req + "REFRESH processed, success")
    if tcp:
        name = "TLS/TCP" if tls else "TCP"
        add(dur, "INFO", s + f"{name} socket closed remotely {client}")
        reason = f"{name} connection closed by client (callback)"
        local = "203.0.113.10:5349" if tls else "203.0.113.10:3478"
    else:
        reason = "allocation timeout"
        local = "203.0.113.10:3478"
    add(dur + 1, "INFO", s + f"closed (2nd stage), user <{user}> realm <{realm}> origin <>, local {local}, "
        f"remote {client}, reason: {reason}")  # fmt: skip
    add(dur + 1, "INFO", s + f"delete: realm=<{realm}>, username=<{user}>")
    add(dur + 1, "INFO", s + f"peer {peer} deleted")
    return out


def generate(n_lines: int, era: str, wrapper: str, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    fmt = ERAS[era]
    events: list[tuple[int, str, str]] = [
        (0, "INFO", "log file opened: /var/log/turnserver/turn.log"),
        (0, "INFO", "Coturn Version 4.6.2 'Gorst'"),
        (0, "INFO", "Listener address to use: 203.0.113.10"),
        (0, "INFO", "Relay address to use: 203.0.113.10"),
    ]
    sid = 0
    t = 1
    while len(events) < n_lines:
        sid += 1
        t += rng.randint(0, 2)
        events.extend(session_lines(1_000_000_000_000_000 * (sid % 8) + sid, t, rng))
    events.sort(key=lambda e: e[0])
    lines = [fmt(t, lvl, m) for t, lvl, m in events[:n_lines]]
    if wrapper == "syslog":
        lines = [
            f"Nov 23 10:{i // 60000 % 60:02d}:{i // 1000 % 60:02d} turn-1 turnserver[4242]: {ln}"
            for i, ln in enumerate(lines)
        ]
    return [ln + "\n" for ln in lines]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--era", choices=sorted(ERAS), default="E3")
    ap.add_argument("--wrapper", choices=["none", "syslog"], default="none")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    lines = generate(args.lines, args.era, args.wrapper)
    best_cpu = best_wall = 0.0
    kinds: Counter[str] = Counter()
    for _ in range(args.repeat):
        parser = CoturnParser("bench", b"bench-key")
        parse = parser.parse
        off = 0
        c0, t0 = time.process_time(), time.perf_counter()
        for ln in lines:
            parse(ln, source="1:2:0", offset=off)
            off += len(ln)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        best_cpu = max(best_cpu, len(lines) / cpu)
        best_wall = max(best_wall, len(lines) / wall)
        kinds = Counter(parser.stats.by_kind)
        assert parser.stats.unknown == 0, list(parser.stats.unknown_samples)
    # the events are real contract objects
    sample = CoturnParser("bench", b"k").parse(lines[10], source="x", offset=0)
    assert isinstance(sample, TurnEvent)
    floor = regex_scan_rate(lines, args.repeat)
    print(f"era={args.era} wrapper={args.wrapper} lines={len(lines)} kinds={len(kinds)} {dict(kinds.most_common())}")
    print(f"{best_cpu:,.0f} lines/s per core (CPU time of this process, best of {args.repeat})")
    print(f"{best_wall:,.0f} lines/s wall clock (lower when other processes share the core)")
    print(f"floor: one regex per line (session id and message) {floor:,.0f} lines/CPU-s")
    emit(Row(figure=f"TURN log parsing ({args.era}, wrapper {args.wrapper}) "
                    "/ a one-regex-per-line scan of the same log",
             ratio=f"{best_cpu / floor:.0%}", measured=f"{best_cpu:,.0f} lines/CPU-s",
             floor=f"{floor:,.0f} lines/CPU-s", goal=">= 25 %", met=best_cpu / floor >= 0.25))


SCAN = re.compile(r"session (\d+): (.*)")


def regex_scan_rate(lines: list[str], repeat: int) -> float:
    """The floor: one compiled regex search per line, taking the session id and the message."""
    best = 0.0
    for _ in range(repeat):
        found = 0
        c0 = time.process_time()
        for ln in lines:
            m = SCAN.search(ln)
            if m is not None:
                m.group(1, 2)
                found += 1
        best = max(best, len(lines) / (time.process_time() - c0))
        assert found > len(lines) // 2, found  # the scan really matches the log's session lines
    return best


if __name__ == "__main__":
    main()
