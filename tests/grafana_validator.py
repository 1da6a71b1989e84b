"""The strict Grafana dashboard validator (deploy/tools/grafana-validate) for the tests.

``validator_binary()`` builds it once into the cache through deploy/local/grafana_validator.sh
(instant when the cached binary exists) and raises ``ValidatorBuildError`` with the script's
output when it cannot: the tests using it then fail with that reason, they are never skipped.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "deploy" / "local" / "grafana_validator.sh"
BUILD_TIMEOUT_S = 900  # cold build (SDK download + compile): 34 s here on 2026-11-26, 1 min 48 s seen on a busy machine
RUN_TIMEOUT_S = 120


class ValidatorBuildError(RuntimeError):
    """The validator could not be built or located; the message says why."""


@functools.cache
def validator_binary() -> Path:
    """The path of the built validator, building it first when the cache lacks it."""
    try:
        proc = subprocess.run(
            ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ValidatorBuildError(f"{BUILD_SCRIPT} did not finish within {BUILD_TIMEOUT_S}s") from exc
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise ValidatorBuildError(
            f"{BUILD_SCRIPT} failed (exit {proc.returncode}):\n{proc.stderr.strip()}\n{proc.stdout.strip()}"
        )
    binary = Path(lines[-1])
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise ValidatorBuildError(f"{BUILD_SCRIPT} printed {binary}, which is not an executable file")
    return binary


def validate(paths: Iterable[Path | str]) -> subprocess.CompletedProcess[str]:
    """Run the validator on the dashboard JSON files: exit 0 all ok, 1 a file failed, 2 usage error.

    stdout holds ``FILE: ok`` or one ``FILE: <problem>`` line per problem, problems from Grafana's
    schema prefixed ``grafana:`` and icewatch's own checks ``icewatch:``.
    """
    return subprocess.run(
        [str(validator_binary()), *(str(p) for p in paths)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
