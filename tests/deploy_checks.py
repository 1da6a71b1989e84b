"""Checks shared by the deployment-file tests (test_deploy_compose.py, test_deploy_chart.py):
an environment variable names a real icewatch setting, a container's arguments are a real
`icewatch` command line, and the checking tools installed by deploy/local/deploy_tools.sh."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path

import click
from pydantic import BaseModel

from collector.cli_root import main as icewatch_cli
from collector.settings import PROBES_ENV_PREFIX, ProbeSettings, Settings

REPO = Path(__file__).resolve().parents[1]
TOOLS_SCRIPT = REPO / "deploy" / "local" / "deploy_tools.sh"
TOOLS_TIMEOUT_S = 1200  # a cold helm build: 2 min 47 s here (2026-11-26), 8 min seen on a busy machine


class ToolsError(RuntimeError):
    """The checking tools could not be installed; the message carries the script's output."""


@functools.cache
def deploy_tools() -> dict[str, Path]:
    """``{"helm": path, "kubernetes-validate": path, "hadolint": path}``, installing them first when the
    cache lacks them."""
    try:
        proc = subprocess.run(["bash", str(TOOLS_SCRIPT)], capture_output=True, text=True,
                              timeout=TOOLS_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise ToolsError(f"{TOOLS_SCRIPT} did not finish within {TOOLS_TIMEOUT_S}s") from exc
    if proc.returncode != 0:
        raise ToolsError(f"{TOOLS_SCRIPT} failed (exit {proc.returncode}):\n{proc.stderr}\n{proc.stdout}")
    tools: dict[str, Path] = {}
    for line in proc.stdout.splitlines():
        name, sep, path = line.partition("=")
        if sep and os.access(path, os.X_OK):
            tools[name] = Path(path)
    if set(tools) != {"helm", "kubernetes-validate", "hadolint"}:
        raise ToolsError(f"{TOOLS_SCRIPT} printed no usable tool paths:\n{proc.stdout}")
    return tools


def docker_compose() -> str:
    """Debian's docker-compose (bootstrap.sh --packages installs it)."""
    path = shutil.which("docker-compose")
    if path is None:
        raise ToolsError("docker-compose not found on PATH: run deploy/local/bootstrap.sh --packages "
                         "(Debian package 'docker-compose')")
    return path


def _section_model(annotation: object) -> type[BaseModel] | None:
    """The settings section behind a field's type (``KafkaSettings | None`` -> KafkaSettings)."""
    candidates = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def setting_problem(name: str) -> str | None:
    """Why ``name`` is not an icewatch setting (None when it is one). Settings ignores unknown
    ICEWATCH_* variables, so a misspelt one would otherwise be silently without effect."""
    if name.startswith(PROBES_ENV_PREFIX):
        field = name[len(PROBES_ENV_PREFIX):].lower()
        return None if field in ProbeSettings.model_fields else f"{name}: ProbeSettings has no field {field!r}"
    if not name.startswith("ICEWATCH_"):
        return f"{name}: not an ICEWATCH_ variable"
    model: type[BaseModel] | None = Settings
    parts = name[len("ICEWATCH_"):].lower().split("__")
    for i, part in enumerate(parts):
        if model is None:
            return f"{name}: {'__'.join(parts[:i]).upper()} is not a section"
        if part not in model.model_fields:
            return f"{name}: {model.__name__} has no field {part!r}"
        if part == "probes" and model is Settings:
            return f"{name}: the probes section is ICEWATCH_PROBES_<FIELD> (one underscore)"
        model = _section_model(model.model_fields[part].annotation)
    if model is not None:
        return f"{name}: names a whole section; set its fields with __"
    return None


def settings_from(env: Mapping[str, str]) -> Settings:
    """The settings a process gets from exactly ``env`` (values validated as at start-up)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("ICEWATCH_")}
    for key in saved:
        del os.environ[key]
    os.environ.update(env)
    try:
        return Settings()
    finally:
        for key in env:
            os.environ.pop(key, None)
        os.environ.update(saved)


def cli_problem(args: Sequence[str]) -> str | None:
    """Why ``icewatch <args>`` is not a valid command line (None when it parses: a real command,
    real options with valid values). Nothing is run."""
    group: click.Command = icewatch_cli
    rest = list(args)
    path = ["icewatch"]
    while isinstance(group, click.Group):
        if not rest:
            return f"{' '.join(path)}: no subcommand"
        name = rest.pop(0)
        sub = group.commands.get(name)
        if sub is None:
            return f"{' '.join(path)}: no command {name!r}"
        path.append(name)
        group = sub
    try:
        with group.make_context(" ".join(path), rest, resilient_parsing=False):
            pass
    except click.ClickException as exc:
        return f"{' '.join(path)}: {exc.format_message()}"
    except click.exceptions.Exit:
        return None
    return None
