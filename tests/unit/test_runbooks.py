"""The on-call runbooks (alerts/runbooks/): one per alert rule, each with the five sections, links that
resolve, `icewatch` command lines that the real CLI accepts, SQL that runs on the real schema, and
dashboard paths and panel titles that the dashboard catalog has."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import click
import pytest

from collector.cli_root import main
from collector.settings import SqlLimits
from dashboards.catalog import DASHBOARDS
from processors.store.chdb import ChdbSink
from processors.store.queries import DIMENSIONS, QUERIES
from processors.store.readonly_sql import run_readonly

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "alerts" / "runbooks"
INDEX = RUNBOOKS / "README.md"
RULE_IDS = (
    "turn-server-down", "turn-allocation-failures", "turn-auth-failures", "stun-unreachable",
    "relay-gathering-failing", "ice-failure-spike", "dtls-stall-spike", "relay-misrouting",
    "turn-log-silent", "pipeline-no-ingest", "pipeline-consumer-lag", "watchdog",
)
SECTIONS = ("What it means", "Confirm it", "What to check", "Mitigate", "Resolve / close")
MIN_SECTION_WORDS = 30
PLACEHOLDER = re.compile(r"\b(TODO|TBD|FIXME|XXX)\b|lorem ipsum", re.IGNORECASE)
DASHBOARD_UIDS = frozenset({"icewatch-overview", "icewatch-turn", "icewatch-relay-distance", "icewatch-call",
                            "icewatch-self"})

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"`[^`]*`")
DASHBOARD_PATH = re.compile(r"/d/([A-Za-z0-9_-]+)(\?[^\s`)\"']*)?")
QUOTED = re.compile(r"\"([^\"]+)\"")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
SHELL_OPERATORS = frozenset({"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1"})
HELP_OPTIONS = frozenset({"-h", "--help"})


@dataclass
class Runbook:
    path: Path
    title: str = ""
    sections: dict[str, list[str]] = field(default_factory=dict)  # level-2 heading -> its lines
    prose: list[tuple[int, str]] = field(default_factory=list)  # (line number, text) outside code blocks
    code: list[tuple[int, str]] = field(default_factory=list)  # (line number, text) inside code blocks


def parse(path: Path) -> Runbook:
    book = Runbook(path)
    in_code = False
    section: list[str] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line):
            in_code = not in_code
            if section is not None:
                section.append(line)
            continue
        if in_code:
            book.code.append((number, line))
        else:
            book.prose.append((number, line))
            heading = HEADING.match(line)
            if heading and len(heading.group(1)) == 1 and not book.title:
                book.title = heading.group(2)
                continue
            if heading and len(heading.group(1)) == 2:
                section = book.sections.setdefault(heading.group(2), [])
                continue
        if section is not None:
            section.append(line)
    assert not in_code, f"{path.name}: a code block is not closed"
    return book


def runbook_paths() -> list[Path]:
    return sorted(p for p in RUNBOOKS.glob("*.md") if p != INDEX)


def all_markdown() -> list[Path]:
    return sorted(RUNBOOKS.glob("*.md"))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: link text kept, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    for _, line in parse(path).prose:
        heading = HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return frozenset(out)


# --------------------------------------------------------------------------- the set of runbooks

def test_one_runbook_per_rule_and_nothing_else() -> None:
    assert {p.stem for p in runbook_paths()} == set(RULE_IDS)


def test_the_index_lists_every_runbook() -> None:
    index = INDEX.read_text(encoding="utf-8")
    linked = {target for target in LINK.findall(index) if not SCHEME.match(target)}
    for rule_id in RULE_IDS:
        assert f"{rule_id}.md" in linked, f"README.md does not link {rule_id}.md"
        assert re.search(rf"^\| \[{re.escape(rule_id)}\]\({re.escape(rule_id)}\.md\) \| (page|ticket|info)",
                         index, re.MULTILINE), f"README.md: no table row with a severity for {rule_id}"


# --------------------------------------------------------------------------- sections

@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_five_sections_with_content(rule_id: str) -> None:
    book = parse(RUNBOOKS / f"{rule_id}.md")
    assert book.title == rule_id, f"{rule_id}.md: the title must be the rule id"
    assert tuple(book.sections) == SECTIONS, f"{rule_id}.md: sections {list(book.sections)}, want {list(SECTIONS)}"
    for name, lines in book.sections.items():
        text = "\n".join(lines)
        words = re.findall(r"[A-Za-z]{2,}", text)
        assert len(words) >= MIN_SECTION_WORDS, f"{rule_id}.md: section {name!r} has {len(words)} words"
        assert not PLACEHOLDER.search(text), f"{rule_id}.md: section {name!r} has a placeholder"


# --------------------------------------------------------------------------- links

def link_problems(path: Path) -> Iterator[str]:
    for number, line in parse(path).prose:
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            where = f"{path.name}:{number}: {target}"
            if SCHEME.match(target):
                continue  # http(s), mailto: not checked offline
            if target.startswith("/"):
                yield f"{where}: a site-absolute path does not resolve in the repository; write it as code"
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            if not resolved.exists():
                yield f"{where}: {resolved} does not exist"
                continue
            if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                yield f"{where}: no heading with the anchor #{anchor} in {resolved.name}"


@pytest.mark.parametrize("path", all_markdown(), ids=lambda p: p.name)
def test_relative_links_resolve(path: Path) -> None:
    assert list(link_problems(path)) == []


# --------------------------------------------------------------------------- icewatch command lines

@dataclass
class Checked:
    problems: list[str] = field(default_factory=list)
    sql: list[str] = field(default_factory=list)  # statements of `icewatch sql` lines


def command_lines(book: Runbook) -> Iterator[tuple[int, str]]:
    """Lines of code blocks that run icewatch (a leading ``$ `` prompt and a venv path allowed)."""
    for number, line in book.code:
        text = line.strip()
        text = text.removeprefix("$ ")
        text = re.sub(r"^(\S*/)?icewatch(?=\s)", "icewatch", text)
        if text.startswith("icewatch "):
            yield number, text


def options_of(command: click.Command) -> dict[str, bool]:
    """Option name -> whether it takes a value."""
    out = dict.fromkeys(HELP_OPTIONS, False)
    for param in command.params:
        if isinstance(param, click.Option):
            takes_value = not (param.is_flag or param.count)
            for name in (*param.opts, *param.secondary_opts):
                out[name] = takes_value
    return out


def check_command(tokens: list[str], where: str, checked: Checked) -> None:
    command: click.Command = main
    path = ["icewatch"]
    rest = tokens[1:]
    while True:
        options = options_of(command)
        positional: list[str] = []
        values: dict[str, list[str]] = {}
        i = 0
        while i < len(rest):
            token = rest[i]
            if token == "--":
                positional += rest[i + 1:]
                break
            if token.startswith("-") and token != "-":
                name, has_inline, inline = token.partition("=")
                if name not in options:
                    checked.problems.append(f"{where}: {' '.join(path)} has no option {name}")
                    return
                if options[name]:
                    if has_inline:
                        values.setdefault(name, []).append(inline)
                    elif i + 1 < len(rest):
                        values.setdefault(name, []).append(rest[i + 1])
                        i += 1
                    else:
                        checked.problems.append(f"{where}: {name} needs a value")
                i += 1
                continue
            if isinstance(command, click.Group):
                break  # the subcommand
            positional.append(token)
            i += 1
        if isinstance(command, click.Group):
            if i >= len(rest):
                if not HELP_OPTIONS & set(rest):
                    checked.problems.append(f"{where}: {' '.join(path)} needs a subcommand")
                return
            name = rest[i]
            sub = command.commands.get(name)
            if sub is None:
                checked.problems.append(f"{where}: {' '.join(path)} has no subcommand {name!r} "
                                        f"(one of: {', '.join(sorted(command.commands))})")
                return
            command, path, rest = sub, [*path, name], rest[i + 1:]
            continue
        check_leaf(path, positional, values, where, checked)
        return


def check_leaf(path: list[str], positional: list[str], values: dict[str, list[str]], where: str,
               checked: Checked) -> None:
    if path == ["icewatch", "query"] and positional:
        name = positional[0]
        if name not in QUERIES:
            checked.problems.append(f"{where}: no named query {name!r} (one of: {', '.join(sorted(QUERIES))})")
            return
        allowed = QUERIES[name].dimensions or DIMENSIONS
        for by in values.get("--by", []):
            for dim in by.split(","):
                if dim.strip() not in allowed:
                    checked.problems.append(f"{where}: query {name} has no dimension {dim!r} "
                                            f"(one of: {', '.join(sorted(allowed))})")
    if path == ["icewatch", "sql"] and positional and positional[0] != "-":
        checked.sql.append(positional[0])


def check_runbook_commands(path: Path) -> Checked:
    checked = Checked()
    for number, line in command_lines(parse(path)):
        where = f"{path.name}:{number}"
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            checked.problems.append(f"{where}: cannot split the command line: {exc}")
            continue
        cut = next((i for i, t in enumerate(tokens) if t in SHELL_OPERATORS), len(tokens))
        check_command(tokens[:cut], where, checked)
    return checked


@pytest.mark.parametrize("path", runbook_paths(), ids=lambda p: p.name)
def test_icewatch_command_lines_name_real_commands_and_options(path: Path) -> None:
    assert check_runbook_commands(path).problems == []


def test_every_runbook_cites_icewatch_commands() -> None:
    for path in runbook_paths():
        assert list(command_lines(parse(path))), f"{path.name}: no `icewatch ...` line in a code block"


def test_the_command_check_catches_mistakes() -> None:
    def problems(line: str) -> list[str]:
        checked = Checked()
        check_command(shlex.split(line), "x", checked)
        return checked.problems

    assert problems("icewatch query probes --since 30m --by turn-server,transport") == []
    assert problems("icewatch --log-level WARNING probe --inventory inv.yaml --once") == []
    assert problems("icewatch turn parse coturn.log --server-id turn-eu-1") == []
    assert problems("icewatch probes --once")  # no such command
    assert problems("icewatch probe --inventory inv.yaml --twice")  # no such option
    assert problems("icewatch query no-such-query --since 1h")
    assert problems("icewatch query probes --by transport,browser")  # not a dimension of probes
    assert problems("icewatch turn tail x.log")  # no such subcommand
    assert set(main.commands) >= {"query", "sql", "probe", "explain", "turn"}


def test_sql_of_the_runbooks_runs_on_the_real_schema(store: ChdbSink) -> None:
    statements = [(path.name, sql) for path in runbook_paths() for sql in check_runbook_commands(path).sql]
    assert statements, "no `icewatch sql` statement found"
    failures = []
    for name, sql in statements:
        try:
            run_readonly(store, sql, SqlLimits())
        except Exception as exc:  # every refusal or engine error is a broken runbook line
            failures.append(f"{name}: {sql[:120]}...: {type(exc).__name__}: {str(exc)[:300]}")
    assert failures == []


# --------------------------------------------------------------------------- dashboards

def panel_titles(uid: str) -> frozenset[str]:
    return frozenset(p.title for d in DASHBOARDS if d.uid == uid for p in d.panels())


def variables(uid: str) -> frozenset[str]:
    return frozenset(v.name for d in DASHBOARDS if d.uid == uid for v in d.variables)


def test_the_catalog_has_the_five_dashboards() -> None:
    assert {d.uid for d in DASHBOARDS} == DASHBOARD_UIDS


def dashboard_problems(path: Path) -> Iterator[str]:
    book = parse(path)
    for number, line in sorted(book.prose + book.code):
        where = f"{path.name}:{number}"
        uids = []
        for match in DASHBOARD_PATH.finditer(line):
            uid, query = match.group(1), match.group(2) or ""
            if uid not in DASHBOARD_UIDS:
                yield f"{where}: /d/{uid} is not one of {sorted(DASHBOARD_UIDS)}"
                continue
            uids.append(uid)
            for var in re.findall(r"var-([A-Za-z0-9_]+)=", query):
                if var not in variables(uid):
                    yield f"{where}: /d/{uid} has no variable {var!r}"
        if not uids or (number, line) in book.code:
            continue
        # On a prose line naming dashboards, "quoted" text names panels of those dashboards.
        titles = frozenset().union(*(panel_titles(uid) for uid in uids))
        for quoted in QUOTED.findall(INLINE_CODE.sub("", line)):
            if quoted not in titles:
                yield f"{where}: {quoted!r} is not a panel of {', '.join(uids)}"


@pytest.mark.parametrize("path", all_markdown(), ids=lambda p: p.name)
def test_dashboard_paths_and_panels_exist(path: Path) -> None:
    assert list(dashboard_problems(path)) == []


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_confirm_it_names_a_dashboard(rule_id: str) -> None:
    confirm = "\n".join(parse(RUNBOOKS / f"{rule_id}.md").sections.get("Confirm it", []))
    assert DASHBOARD_PATH.search(confirm), f"{rule_id}.md: 'Confirm it' names no dashboard (/d/<uid>)"
