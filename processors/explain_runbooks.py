"""Which runbook speaks to a diagnosis label, and its one line of "what to check" for one call.

``HINTS`` is the one home of the mapping from diagnosis labels (processors/facts/model.py LABELS)
to the on-call runbooks (alerts/runbooks/<rule>.md, one per alert rule). A label with no runbook
(``high_rtt``, ``udp_blocked_tcp_relay``, the informational ``symmetric_nat_relay``, ``ok``) has
no entry. Each hint picks the item of the runbook's "What to check" section that fits the call
(e.g. a DTLS stall on a direct path gets the client-side middlebox item, one relayed over UDP the
TURN-path item) by the start of the item's bold lead-in; tests/unit/test_explain.py checks that
every lead-in named here is in its runbook, so a rewritten runbook cannot silently drop a hint.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alerts.rules import RUNBOOKS_DIR
from processors.facts.model import CallFacts

WHAT_TO_CHECK = "What to check"
MIN_LINE_CHARS = 100  # sentences are added to the line until it is at least this long
MAX_LINE_CHARS = 240

_ITEM = re.compile(r"^(?:[-*]|\d+\.)\s+(.*)$")
_HEADING = re.compile(r"^##\s+(.*?)\s*$")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_NESTED_ITEM = re.compile(r"^\s+(?:[-*]|\d+\.)\s+(.*)$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")


@dataclass(frozen=True)
class RunbookHint:
    runbook: str  # alerts/runbooks/<runbook>.md
    item: Callable[[CallFacts], str]  # the start of the "What to check" item that fits the call


def _dtls_item(f: CallFacts) -> str:
    if f.path_class == "relay-udp":
        return "Relayed over UDP through one TURN server"
    if f.path_class.startswith("relay-"):  # TCP/TLS relays avoid UDP filtering: the far end or the client
        return "All paths and regions at once"
    return "Direct (srflx/prflx)"


def _ice_item(f: CallFacts) -> str:
    return "Gathered relay" if {"srflx", "relay"} & set(f.gathered_types) else "Gathered host only"


HINTS: dict[str, RunbookHint] = {
    "stun_unreachable": RunbookHint("stun-unreachable", lambda f: "Our STUN service"),
    "turn_unreachable": RunbookHint("relay-gathering-failing", lambda f: "701 on turn:/turns: URLs"),
    "turn_auth_failed": RunbookHint("turn-auth-failures", lambda f: "Recent changes"),
    "ice_failed": RunbookHint("ice-failure-spike", _ice_item),
    "dtls_stall": RunbookHint("dtls-stall-spike", _dtls_item),
    "distant_relay": RunbookHint("relay-misrouting", lambda f: "Is the nearest server healthy?"),
}


@dataclass(frozen=True)
class Check:
    label: str
    runbook: str  # the runbook's path in the repository, alerts/runbooks/<id>.md
    text: str


def plain(markdown: str) -> str:
    """Markdown inline text as plain text: links keep their words, emphasis and code marks go."""
    text = _LINK.sub(r"\1", markdown)
    return " ".join(text.replace("**", "").replace("`", "").split())


@cache
def what_to_check_items(runbook: str, directory: Path = RUNBOOKS_DIR) -> tuple[str, ...]:
    """The top-level list items of a runbook's "What to check" section, as plain one-line text."""
    path = directory / f"{runbook}.md"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return ()
    items: list[list[str]] = []
    inside = in_code = False
    for line in lines:
        heading = _HEADING.match(line)
        if heading:
            inside = heading.group(1) == WHAT_TO_CHECK
            continue
        if not inside:
            continue
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        item = _ITEM.match(line)
        if item:
            items.append([item.group(1)])
        elif items and (nested := _NESTED_ITEM.match(line)):
            items[-1].append(nested.group(1))  # a nested item reads on as the next sentence
        elif items and line.startswith((" ", "\t")) and line.strip():
            items[-1].append(line.strip())
        elif items and not line.strip():
            items.append([])  # a blank line ends the item
    return tuple(p for p in (plain(" ".join(i)) for i in items) if p)


def one_line(item: str) -> str:
    """An item cut to whole sentences until it is MIN_LINE_CHARS long; a sentence that would make it
    longer than MAX_LINE_CHARS is cut at a word and ends with an ellipsis."""
    line = ""
    for sentence in _SENTENCE_END.split(item):
        line = f"{line} {sentence}".strip()
        if len(line) >= MIN_LINE_CHARS:
            break
    if len(line) > MAX_LINE_CHARS:
        line = line[: MAX_LINE_CHARS - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return line


def check_for(label: str, facts: CallFacts, directory: Path = RUNBOOKS_DIR) -> Check | None:
    """The runbook's line for a label of this call; None when no runbook speaks to the label."""
    hint = HINTS.get(label)
    if hint is None:
        return None
    items = what_to_check_items(hint.runbook, directory)
    if not items:
        return None
    lead = hint.item(facts)
    chosen = next((i for i in items if i.startswith(lead)), items[0])
    return Check(label, f"alerts/runbooks/{hint.runbook}.md", one_line(chosen))
