"""Every command of the ``icewatch`` tree (groups included) shows an example in its --help, the
example runs that very command with options it has, and every option says what it is for."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from collector.cli_root import main


def walk(cmd: click.Command, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = list(walk(main, ()))


def test_the_tree_is_walked_whole() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"", "run", "collector", "processor", "migrate", "alerts run", "probe", "turn parse"} <= names
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=[" ".join(p) or "icewatch" for p, _ in COMMANDS])
def test_help_has_a_runnable_example(path: tuple[str, ...], cmd: click.Command) -> None:
    result = CliRunner().invoke(main, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    examples = examples_in(result.output)
    assert examples, f"icewatch {' '.join(path)} --help shows no 'Example: ...'"
    for example in examples:
        check_example(example, path, cmd)


def examples_in(help_text: str) -> list[str]:
    """``Example: <command>`` (one line; three spaces end it), or ``Examples:`` and indented
    commands below it, each starting with ``icewatch`` or a setting (continuation lines joined)."""
    one = re.search(r"^\s*Example: (.+)$", help_text, re.MULTILINE)
    if one:
        return [one.group(1).split("   ")[0]]
    block = re.search(r"^\s*Examples:\n((?:[ \t]+\S.*\n?)+)", help_text, re.MULTILINE)
    if not block:
        return []
    out: list[str] = []
    for line in block.group(1).splitlines():
        text = line.strip()
        if re.match(r"^(icewatch |[A-Z][A-Z0-9_]*=)", text) or not out:
            out.append(text)
        else:
            out[-1] += " " + text
    return out


def check_example(example: str, path: tuple[str, ...], cmd: click.Command) -> None:
    words = shlex.split(example)
    words = [w for w in words if not re.match(r"^[A-Z][A-Z0-9_]*=", w)]  # environment settings first
    assert words[0] == "icewatch", example
    # the words after the program name start with this command's path (a group: a subcommand of it)
    assert tuple(words[1 : 1 + len(path)]) == path, example
    target = cmd
    rest = words[1 + len(path):]
    while isinstance(target, click.Group) and rest and rest[0] in target.commands:
        target, rest = target.commands[rest[0]], rest[1:]
    assert not isinstance(target, click.Group) or target is main, f"{example}: names no command"
    known = {o for p in target.params for o in (*p.opts, *p.secondary_opts)} | {"--help", "-h"}
    for w in rest:
        if w.startswith("-") and w != "-":
            assert w.split("=")[0] in known, f"{example}: {w} is not an option of {target.name}"


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=[" ".join(p) or "icewatch" for p, _ in COMMANDS])
def test_every_option_says_what_it_is_for(path: tuple[str, ...], cmd: click.Command) -> None:
    for param in cmd.params:
        if isinstance(param, click.Option):
            assert param.help, f"icewatch {' '.join(path)} {param.opts[0]} has no help text"
