"""deploy/helm/icewatch, checked without a Kubernetes cluster (none on these machines):

- helm v3.22.0 (built from the Go module proxy by deploy/local/deploy_tools.sh): `helm lint` and
  `helm template` of the default values and of the DaemonSet variant (ci/daemonset-values.yaml);
- kubernetes-validate 1.37.0 (PyPI; the Kubernetes JSON schemas ship inside it, nothing is fetched):
  every rendered manifest against the strict schemas of Kubernetes 1.30 and 1.37;
- the rendered manifests read for what matters: a processor Deployment per stream within the
  partition count, one evaluator with a persisted state volume, the migration Job's `icewatch
  migrate` with the same ClickHouse cluster settings as every service, secrets only by reference,
  probes on the real health endpoints, NetworkPolicies selecting the right pods, every long-running
  pod's scrape annotations on the port its settings serve /metrics, the pages Service and the alert
  links, every ICEWATCH_* variable a real setting and every icewatch command line a real one.

Not checked here: scheduling, images, admission (PodSecurity), the probes answering in a pod, the
NetworkPolicies enforced by a CNI, the migration against a real ClickHouse cluster."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy_checks import REPO, ToolsError, cli_problem, deploy_tools, setting_problem, settings_from

CHART = REPO / "deploy" / "helm" / "icewatch"
DAEMONSET_VALUES = CHART / "ci" / "daemonset-values.yaml"
KUBE_VERSIONS = ("1.30.0", "1.37.0")
RELEASE = "rel"
NAMESPACE = "icewatch"
STREAMS = ("call_reports", "turn_events", "probe_results")
SECRET_VARS = {"ICEWATCH_API_KEYS", "ICEWATCH_HASH_KEY", "ICEWATCH_CLICKHOUSE__PASSWORD", "TURN_SECRET",
               "CLICKHOUSE_PASSWORD"}
DOWNWARD_VARS = {"POD_NAME", "NODE_NAME"}  # from the Downward API, used inside ICEWATCH_TURN_LOGS
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def tools() -> dict[str, Path]:
    try:
        return deploy_tools()
    except ToolsError as exc:
        pytest.fail(str(exc), pytrace=False)


def helm(tools: dict[str, Path], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tools["helm"]), *args], capture_output=True, text=True, timeout=120, check=False,
                          stdin=subprocess.DEVNULL, env={**os.environ, "HELM_CACHE_HOME": "/nonexistent/cache"})


def template(tools: dict[str, Path], *args: str, chart: Path = CHART) -> subprocess.CompletedProcess[str]:
    return helm(tools, "template", RELEASE, str(chart), "--namespace", NAMESPACE,
                "--kube-version", KUBE_VERSIONS[-1], *args)


def render(tools: dict[str, Path], *args: str) -> list[Manifest]:
    result = template(tools, *args)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert docs
    return docs


@pytest.fixture(scope="module")
def default(tools: dict[str, Path]) -> list[Manifest]:
    return render(tools)


@pytest.fixture(scope="module")
def daemonset(tools: dict[str, Path]) -> list[Manifest]:
    return render(tools, "-f", str(DAEMONSET_VALUES))


def values() -> dict[str, Any]:
    doc = yaml.safe_load((CHART / "values.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def kube_validate(tools: dict[str, Path], docs: list[Manifest], tmp_path: Path) -> tuple[int, str]:
    path = tmp_path / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    args = [str(tools["kubernetes-validate"]), "--strict"]
    for version in KUBE_VERSIONS:
        args += ["-k", version]
    result = subprocess.run([*args, str(path)], capture_output=True, text=True, timeout=300, check=False,
                            stdin=subprocess.DEVNULL)
    return result.returncode, result.stdout + result.stderr


def assert_all_valid(tools: dict[str, Path], docs: list[Manifest], tmp_path: Path) -> None:
    """Every manifest passed against every version. kubernetes-validate only warns (exit 0) about a
    kind it has no schema for, so each manifest's INFO line is counted too."""
    rc, out = kube_validate(tools, docs, tmp_path)
    assert rc == 0, out
    passed = [ln for ln in out.splitlines() if ln.startswith("INFO ") and " passed for resource " in ln]
    assert len(passed) == len(docs) * len(KUBE_VERSIONS), out


def by_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: list[Manifest], kind: str, name: str) -> Manifest:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, [d["metadata"]["name"] for d in by_kind(docs, kind)])
    return found[0]


def pod_spec(workload: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Manifest, init: bool = False) -> Iterator[dict[str, Any]]:
    spec = pod_spec(workload)
    yield from spec["containers"]
    if init:
        yield from spec.get("initContainers", [])


def icewatch_image() -> str:
    image = values()["image"]
    return f"{image['repository']}:{image['tag']}"


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def component(workload: Manifest) -> str:
    label: str = workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
    return label


# -- the tools


def test_helm_lint_passes_for_the_default_and_the_daemonset_values(tools: dict[str, Path]) -> None:
    for extra in ((), ("-f", str(DAEMONSET_VALUES))):
        result = helm(tools, "lint", "--strict", str(CHART), "--kube-version", KUBE_VERSIONS[-1], *extra)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_every_rendered_manifest_passes_the_strict_kubernetes_schemas(
    tools: dict[str, Path], default: list[Manifest], daemonset: list[Manifest], tmp_path: Path
) -> None:
    assert {d["kind"] for d in default} >= {"Deployment", "Service", "HorizontalPodAutoscaler", "StatefulSet", "Job",
                                             "NetworkPolicy"}
    assert "DaemonSet" in {d["kind"] for d in daemonset}
    assert_all_valid(tools, default, tmp_path)
    assert_all_valid(tools, daemonset, tmp_path)


def _deployment(docs: list[Manifest]) -> Manifest:
    return named(docs, "Deployment", f"{RELEASE}-icewatch-collector")


@pytest.mark.parametrize(
    "breakage",
    ["misspelt-field", "wrong-type", "missing-required", "unknown-probe-field"],
)
def test_the_schema_validator_rejects_a_broken_manifest(
    tools: dict[str, Path], default: list[Manifest], tmp_path: Path, breakage: str
) -> None:
    docs = copy.deepcopy(default)
    dep = _deployment(docs)
    container = pod_spec(dep)["containers"][0]
    if breakage == "misspelt-field":
        dep["spec"]["replica"] = 2
    elif breakage == "wrong-type":
        container["ports"][0]["containerPort"] = "eighty"
    elif breakage == "missing-required":
        del container["name"]
    else:
        container["livenessProbe"]["httpGet"]["paht"] = "/healthz"
    rc, out = kube_validate(tools, docs, tmp_path)
    assert rc != 0, out
    resource = f"deployment/{RELEASE}-icewatch-collector"
    assert f"ERROR {tmp_path / 'manifests.yaml'} did not validate for resource {resource}" in out, out


def test_an_unknown_api_version_only_warns_so_the_passes_are_counted(
    tools: dict[str, Path], default: list[Manifest], tmp_path: Path
) -> None:
    """What kubernetes-validate misses on its own: a kind it has no schema for (here an HPA API
    removed in Kubernetes 1.25) is a warning with exit 0; assert_all_valid counts the passes."""
    docs = copy.deepcopy(default)
    by_kind(docs, "HorizontalPodAutoscaler")[0]["apiVersion"] = "autoscaling/v2beta1"
    rc, out = kube_validate(tools, docs, tmp_path)
    assert rc == 0 and "WARN" in out, out
    with pytest.raises(AssertionError):
        assert_all_valid(tools, docs, tmp_path)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("turn.mode=deamonset", "value must be one of 'sidecar', 'daemonset', 'none'"),
        ("kafka.partitons=12", "additional properties 'partitons' not allowed"),
        ("processors.streams.call_report.replicas=2", "additional properties 'call_report' not allowed"),
        ("kafka.bootstrap=kafka", "/kafka/bootstrap"),
        ("evaluator.alertmanagerUrls[0]=alertmanager:9093", "/evaluator/alertmanagerUrls/0"),
    ],
)
def test_the_values_schema_rejects_wrong_values(tools: dict[str, Path], setting: str, expected: str) -> None:
    result = template(tools, "--set", setting)
    assert result.returncode != 0 and expected in result.stderr, result.stderr


def test_without_turn_nothing_of_it_renders(tools: dict[str, Path], tmp_path: Path) -> None:
    docs = render(tools, "--set", "turn.mode=none")
    assert [d for d in docs if d["kind"] in WORKLOADS and component(d).startswith("turn")] == []
    assert not any(d["metadata"]["name"].endswith(("-turn", "-turn-tailer")) for d in docs)
    assert_all_valid(tools, docs, tmp_path)


def test_helm_lint_and_template_reject_a_broken_chart(tools: dict[str, Path], tmp_path: Path) -> None:
    chart = tmp_path / "icewatch"
    shutil.copytree(CHART, chart)
    collector = chart / "templates" / "collector.yaml"
    collector.write_text(collector.read_text().replace("{{- include \"icewatch.kafkaEnv\" . | nindent 12 }}",
                                                       "{{- include \"icewatch.kafkaEnv\" . | nindent 12 }"))
    lint = helm(tools, "lint", str(chart), "--kube-version", KUBE_VERSIONS[-1])
    assert lint.returncode != 0 and "collector.yaml" in lint.stdout + lint.stderr, lint.stdout
    assert template(tools, chart=chart).returncode != 0


# -- what the manifests say


def test_a_processor_deployment_per_stream_within_the_partitions(tools: dict[str, Path],
                                                                  default: list[Manifest]) -> None:
    processors = [d for d in by_kind(default, "Deployment") if component(d) == "processor"]
    streams = values()["processors"]["streams"]
    partitions = values()["kafka"]["partitions"]
    found: dict[str, int] = {}
    for dep in processors:
        (container,) = list(containers(dep))
        args = container["args"]
        assert args[:2] == ["processor", "--stream"] and len(args) == 3, args
        assert cli_problem(args) is None
        stream = args[2]
        assert dep["metadata"]["name"] == f"{RELEASE}-icewatch-processor-{stream.replace('_', '-')}"
        assert dep["spec"]["selector"]["matchLabels"]["icewatch.io/stream"] == stream
        found[stream] = dep["spec"]["replicas"]
        env = env_of(container)
        assert env["ICEWATCH_TOPICS__PARTITIONS"]["value"] == str(partitions)
        assert env["ICEWATCH_MAX_BATCH_MESSAGES"]["value"] == str(streams[stream]["maxBatchMessages"])
        assert container["resources"] == streams[stream]["resources"]
    assert found == {s: streams[s]["replicas"] for s in STREAMS}
    assert all(r <= partitions for r in found.values())
    # the large call reports come in small batches (memory: see values.yaml)
    assert streams["call_reports"]["maxBatchMessages"] <= 200
    # more consumers than partitions is refused
    result = template(tools, "--set", "kafka.partitions=2")
    assert result.returncode != 0
    assert "processors.streams.call_reports.replicas (6) is above kafka.partitions (2)" in result.stderr
    # scaled together: 12 partitions, 12 call-report processors
    docs = render(tools, "--set", "kafka.partitions=12", "--set", "processors.streams.call_reports.replicas=12")
    assert named(docs, "Deployment", f"{RELEASE}-icewatch-processor-call-reports")["spec"]["replicas"] == 12


def test_collectors_scale_by_cpu_behind_a_service(default: list[Manifest]) -> None:
    dep = _deployment(default)
    assert "replicas" not in dep["spec"]  # the HPA owns the count
    (container,) = list(containers(dep))
    assert container["args"] == ["collector"] and cli_problem(container["args"]) is None
    assert container["resources"]["requests"]["cpu"]  # utilization needs a request
    (hpa,) = by_kind(default, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": dep["metadata"]["name"]}
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    svc = named(default, "Service", dep["metadata"]["name"])
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert svc["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    (pdb,) = by_kind(default, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert pdb["spec"]["minAvailable"] == 1 <= hpa["spec"]["minReplicas"] - 1  # a drain can still evict one
    env = env_of(container)
    assert env["ICEWATCH_HOST"]["value"] == "0.0.0.0"
    assert int(env["ICEWATCH_PORT"]["value"]) == container["ports"][0]["containerPort"]


def test_one_evaluator_with_persisted_state(tools: dict[str, Path], default: list[Manifest]) -> None:
    evaluators = [d for d in default if d["kind"] in WORKLOADS and component(d) == "evaluator"]
    assert [d["kind"] for d in evaluators] == ["StatefulSet"]
    sts = evaluators[0]
    assert sts["spec"]["replicas"] == 1
    (container,) = list(containers(sts))
    assert container["args"] == ["alerts", "run"] and cli_problem(container["args"]) is None
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == claim["metadata"]["name"])
    state = env_of(container)["ICEWATCH_ALERTS__STATE_PATH"]["value"]
    assert Path(state).is_relative_to(mount["mountPath"])
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert env_of(container)["ICEWATCH_ALERTS__ALERTMANAGER_URLS"]["value"].startswith("[")
    # no value makes a second evaluator: the values schema refuses one
    result = template(tools, "--set", "evaluator.replicas=3")
    assert result.returncode != 0 and "additional properties 'replicas' not allowed" in result.stderr, result.stderr


def test_the_migration_job_applies_the_cluster_schema_and_every_service_checks_it(default: list[Manifest]) -> None:
    """The Job runs `icewatch migrate` with the cluster set (it sends the pending migrations ON
    CLUSTER and records them: tests/unit/test_cluster_migrate.py); every icewatch container that
    opens the store carries the same server, database and cluster, so it checks that record at start
    instead of migrating."""
    (job,) = by_kind(default, "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "initContainers" not in pod_spec(job)
    (container,) = list(containers(job))
    assert container["image"] == icewatch_image()
    assert container["args"] == ["migrate"] and "command" not in container
    assert cli_problem(container["args"]) is None
    ch = values()["clickhouse"]
    env = env_of(container)
    plain = {k: v["value"] for k, v in env.items() if "value" in v}
    settings = settings_from(plain)
    assert settings.clickhouse is not None
    assert (settings.clickhouse.host, settings.clickhouse.port, settings.clickhouse.database,
            settings.clickhouse.cluster) == (ch["host"], ch["port"], ch["database"], ch["cluster"])
    assert env["ICEWATCH_CLICKHOUSE__PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == \
        values()["secrets"]["keys"]["clickhousePassword"]
    store_users = 0
    for workload in by_kind(default, "Deployment") + by_kind(default, "StatefulSet"):
        for c in containers(workload):
            c_env = {k: v["value"] for k, v in env_of(c).items() if "value" in v}
            if "ICEWATCH_CLICKHOUSE__HOST" in c_env:
                store_users += 1
                assert {k: c_env[k] for k in c_env if k.startswith("ICEWATCH_CLICKHOUSE__")} == \
                    {k: plain[k] for k in plain if k.startswith("ICEWATCH_CLICKHOUSE__")}, c["name"]
    assert store_users == 4  # three processors and the evaluator


def test_a_cluster_name_the_migration_would_refuse_is_refused_by_the_chart(tools: dict[str, Path]) -> None:
    result = template(tools, "--set", "clickhouse.cluster=prod-1")
    assert result.returncode != 0 and "cluster" in result.stderr


def metrics_port(container: dict[str, Any]) -> int:
    """Where an icewatch container serves /metrics (docs/metrics.md), from its own settings."""
    env = {k: v["value"] for k, v in env_of(container).items() if "value" in v and k.startswith("ICEWATCH_")}
    settings = settings_from(env)
    assert settings.host == "0.0.0.0", (container["name"], settings.host)  # loopback: out of Prometheus' reach
    return settings.port if container["args"][0] == "collector" else settings.metrics_port


@pytest.mark.parametrize("variant", ["default", "daemonset"])
def test_every_long_running_pod_is_scraped_on_the_port_it_serves_metrics(
    variant: str, request: pytest.FixtureRequest,
) -> None:
    docs: list[Manifest] = request.getfixturevalue(variant)
    scraped = set()
    for workload in docs:
        if workload["kind"] not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", workload["metadata"]["name"]
        assert annotations["prometheus.io/path"] == "/metrics"
        (icewatch,) = [c for c in containers(workload) if c["image"] == icewatch_image()]
        port = metrics_port(icewatch)
        assert annotations["prometheus.io/port"] == str(port), workload["metadata"]["name"]
        assert port in {p["containerPort"] for p in icewatch["ports"]}
        # the NetworkPolicy of the pod lets Prometheus in on that port
        own = named(docs, "NetworkPolicy", f"{RELEASE}-icewatch-{component(workload)}")["spec"]
        assert port in _ports(own["ingress"]), workload["metadata"]["name"]
        scraped.add(component(workload))
    expected = {"collector", "processor", "evaluator", "turn" if variant == "default" else "turn-tailer"}
    assert scraped == expected


def test_scrape_from_limits_who_reaches_the_metrics_ports(tools: dict[str, Path]) -> None:
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    docs = render(tools, "--set-json", f"networkPolicy.scrapeFrom=[{json.dumps(peer)}]")
    processor = named(docs, "NetworkPolicy", f"{RELEASE}-icewatch-processor")["spec"]
    assert processor["ingress"] == [{"ports": [{"port": values()["processors"]["metricsPort"], "protocol": "TCP"}],
                                     "from": [peer]}]


def test_the_alert_links_lead_to_the_service_of_the_evaluators_pages(
    tools: dict[str, Path], default: list[Manifest],
) -> None:
    """The evaluator serves /, /alerts and /runbooks on its port (tests/unit/test_evaluator_pages.py);
    the pages Service reaches that port, and ICEWATCH_ALERTS__EXTERNAL_URL is that Service unless
    evaluator.externalUrl names the address users reach it at."""
    sts = named(default, "StatefulSet", f"{RELEASE}-icewatch-evaluator")
    (evaluator,) = list(containers(sts))
    env = env_of(evaluator)
    port = metrics_port(evaluator)
    service = named(default, "Service", f"{RELEASE}-icewatch-pages")["spec"]
    assert service["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    (svc_port,) = service["ports"]
    container_port = next(p for p in evaluator["ports"] if p["name"] == svc_port["targetPort"])
    assert container_port["containerPort"] == port
    assert env["ICEWATCH_ALERTS__EXTERNAL_URL"]["value"] == \
        f"http://{RELEASE}-icewatch-pages.{NAMESPACE}.svc:{svc_port['port']}"
    # the pages' data take the API keys
    assert env["ICEWATCH_API_KEYS"]["valueFrom"]["secretKeyRef"]["key"] == values()["secrets"]["keys"]["apiKeys"]
    # users reach it: the evaluator's NetworkPolicy admits its port
    own = named(default, "NetworkPolicy", f"{RELEASE}-icewatch-evaluator")["spec"]
    assert port in _ports(own["ingress"])
    custom = render(tools, "--set", "evaluator.externalUrl=https://icewatch.example.com")
    (c,) = list(containers(named(custom, "StatefulSet", f"{RELEASE}-icewatch-evaluator")))
    assert env_of(c)["ICEWATCH_ALERTS__EXTERNAL_URL"]["value"] == "https://icewatch.example.com"


@pytest.mark.parametrize("variant", ["default", "daemonset"])
def test_secrets_are_referenced_never_inlined(variant: str, request: pytest.FixtureRequest) -> None:
    docs: list[Manifest] = request.getfixturevalue(variant)
    assert by_kind(docs, "Secret") == []
    secret = values()["secrets"]
    seen: set[str] = set()
    for workload in (d for d in docs if d["kind"] in WORKLOADS):
        for container in containers(workload, init=True):
            for name, entry in env_of(container).items():
                if name in SECRET_VARS:
                    seen.add(name)
                    assert "value" not in entry, (workload["metadata"]["name"], name)
                    ref = entry["valueFrom"]["secretKeyRef"]
                    assert ref["name"] == secret["name"] and ref["key"] in secret["keys"].values()
            for arg in [*container.get("args", []), *container.get("command", [])]:
                assert not re.search(r"secret=(?!\$\()", arg), arg  # only $(VAR) expansions
    assert seen >= {"ICEWATCH_API_KEYS", "ICEWATCH_HASH_KEY", "ICEWATCH_CLICKHOUSE__PASSWORD"}


@pytest.mark.parametrize("variant", ["default", "daemonset"])
def test_icewatch_containers_use_real_settings_and_commands(variant: str, request: pytest.FixtureRequest) -> None:
    docs: list[Manifest] = request.getfixturevalue(variant)
    checked = 0
    for workload in (d for d in docs if d["kind"] in WORKLOADS):
        for container in containers(workload):
            if container["image"] != icewatch_image():
                continue
            checked += 1
            env: dict[str, str] = {}
            for name, entry in env_of(container).items():
                if name in DOWNWARD_VARS:
                    assert "fieldRef" in entry["valueFrom"]
                    continue
                assert setting_problem(name) is None, (workload["metadata"]["name"], name)
                # a stand-in for each secret, as long as the settings require
                env[name] = entry.get("value", '{"app": "a-key-of-sixteen-chars"}' if name == "ICEWATCH_API_KEYS"
                                      else "x" * 32)
            settings_from(env)
            assert cli_problem(container["args"]) is None, (workload["metadata"]["name"], container["args"])
    assert checked >= 6


def test_probes_hit_the_health_endpoints(default: list[Manifest], daemonset: list[Manifest]) -> None:
    for workload in (d for d in [*default, *daemonset] if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet")):
        for container in containers(workload):
            if container["image"] != icewatch_image():
                continue
            env = env_of(container)
            evaluator = container["args"] == ["alerts", "run"]
            # the evaluator: no readiness (it takes no uploads), liveness on /healthz
            kinds = ("livenessProbe",) if evaluator else ("readinessProbe", "livenessProbe")
            assert "readinessProbe" not in container or not evaluator
            for kind in kinds:
                probe = container[kind]
                if "httpGet" in probe:
                    assert probe["httpGet"]["path"] == "/healthz"
                    port = next(p for p in container["ports"] if p["name"] == probe["httpGet"]["port"])
                    assert str(port["containerPort"]) == env["ICEWATCH_PORT"]["value"]
                else:
                    command = " ".join(probe["exec"]["command"])
                    loopback_port = container["args"][0] in ("processor", "alerts")
                    port_var = "ICEWATCH_METRICS_PORT" if loopback_port else "ICEWATCH_PORT"
                    assert f"http://127.0.0.1:{env[port_var]['value']}/healthz" in command, command


def test_the_tailer_reads_the_file_coturn_writes(default: list[Manifest], daemonset: list[Manifest]) -> None:
    sts = named(default, "StatefulSet", f"{RELEASE}-icewatch-turn")
    coturn, tailer = list(containers(sts))
    assert (coturn["name"], tailer["name"]) == ("coturn", "tailer")
    log_file = next(a.split("=", 1)[1] for a in coturn["args"] if a.startswith("--log-file="))
    assert "--verbose" in coturn["args"] and "--simple-log" in coturn["args"]
    assert "--static-auth-secret=$(TURN_SECRET)" in coturn["args"]
    env = {k: v["value"] for k, v in env_of(tailer).items() if "value" in v}
    (source,) = settings_from({k: v for k, v in env.items() if k.startswith("ICEWATCH_")}).turn_logs
    assert str(source.path) == log_file and source.server_id == "$(POD_NAME)"
    volume = {m["mountPath"]: m["name"] for m in coturn["volumeMounts"]}[str(Path(log_file).parent)]
    tailer_mount = next(m for m in tailer["volumeMounts"] if m["name"] == volume)
    assert tailer_mount["mountPath"] == str(source.path.parent) and tailer_mount["readOnly"] is True
    names = list(env_of(tailer))
    assert names.index("POD_NAME") < names.index("ICEWATCH_TURN_LOGS")  # $(POD_NAME) expands
    # on the host's network, one coturn per node
    assert pod_spec(sts)["hostNetwork"] is True
    (term,) = pod_spec(sts)["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    # The DaemonSet variant reads the node's directory; the node name is the server id.
    assert [d for d in daemonset if d["kind"] == "StatefulSet" and component(d) == "turn"] == []
    (ds,) = by_kind(daemonset, "DaemonSet")
    (node_tailer,) = list(containers(ds))
    node_env = {k: v["value"] for k, v in env_of(node_tailer).items() if "value" in v}
    (node_source,) = settings_from({k: v for k, v in node_env.items() if k.startswith("ICEWATCH_")}).turn_logs
    assert node_source.server_id == "$(NODE_NAME)"
    logs = next(v for v in pod_spec(ds)["volumes"] if v["name"] == "logs")
    assert logs["hostPath"]["path"] == yaml.safe_load(DAEMONSET_VALUES.read_text())["turn"]["hostLogDir"]
    mount = next(m for m in node_tailer["volumeMounts"] if m["name"] == "logs")
    assert mount["mountPath"] == str(node_source.path.parent) and mount["readOnly"] is True


def _selects(policy: Manifest, workload: Manifest) -> bool:
    wanted = policy["spec"]["podSelector"].get("matchLabels", {})
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return bool(wanted.items() <= labels.items())


def _ports(rules: list[dict[str, Any]]) -> set[int]:
    return {p["port"] for rule in rules for p in rule.get("ports", [])}


@pytest.mark.parametrize("variant", ["default", "daemonset"])
def test_network_policies_select_the_right_pods(variant: str, request: pytest.FixtureRequest) -> None:
    docs: list[Manifest] = request.getfixturevalue(variant)
    policies = by_kind(docs, "NetworkPolicy")
    workloads = [d for d in docs if d["kind"] in WORKLOADS]
    net = values()["networkPolicy"]
    deny = named(docs, "NetworkPolicy", f"{RELEASE}-icewatch-default-deny")
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    for policy in policies:
        assert any(_selects(policy, w) for w in workloads), f"{policy['metadata']['name']} selects no pod"
    for workload in workloads:
        comp = component(workload)
        selecting = {p["metadata"]["name"] for p in policies if _selects(p, workload)}
        assert selecting == {deny["metadata"]["name"], f"{RELEASE}-icewatch-{comp}"}, workload["metadata"]["name"]
        own = named(docs, "NetworkPolicy", f"{RELEASE}-icewatch-{comp}")["spec"]
        egress = _ports(own.get("egress", []))
        if comp == "collector":
            (container,) = list(containers(workload))
            assert _ports(own["ingress"]) == {container["ports"][0]["containerPort"]}
            assert egress == {net["dnsPort"], net["kafkaPort"]}
        elif comp == "processor":
            assert _ports(own["ingress"]) == {values()["processors"]["metricsPort"]}
            assert egress == {net["dnsPort"], net["kafkaPort"], net["clickhousePort"]}
        elif comp == "evaluator":
            assert _ports(own["ingress"]) == {values()["evaluator"]["metricsPort"]}
            assert egress == {net["dnsPort"], net["clickhousePort"], net["alertmanagerPort"]}
        elif comp == "migrate":
            assert "ingress" not in own and egress == {net["dnsPort"], net["clickhousePort"]}
        elif comp == "turn-tailer":
            assert _ports(own["ingress"]) == {values()["turn"]["tailerPort"]}
            assert egress == {net["dnsPort"], net["kafkaPort"]}
        else:
            assert comp == "turn"
            assert own["egress"] == [{}]  # relayed media goes to any peer
            turn = values()["turn"]
            assert {(p["port"], p.get("endPort")) for p in own["ingress"][0]["ports"]} == {
                (turn["listeningPort"], None), (turn["minPort"], turn["maxPort"])}
            assert _ports(own["ingress"][1:]) == {turn["tailerPort"]}  # Prometheus to the tailer
    if variant == "daemonset":
        collector = named(docs, "NetworkPolicy", f"{RELEASE}-icewatch-collector")
        assert collector["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "192.0.2.0/24"}}]
        # uploads limited to the load balancers, Prometheus still scrapes the same port
        assert collector["spec"]["ingress"][1] == {"ports": [{"port": values()["collector"]["port"],
                                                             "protocol": "TCP"}]}


@pytest.mark.parametrize("variant", ["default", "daemonset"])
def test_every_mount_names_a_volume_of_its_pod(variant: str, request: pytest.FixtureRequest) -> None:
    """An apiserver refuses a mount of an undeclared volume; the schema validator does not see it."""
    docs: list[Manifest] = request.getfixturevalue(variant)
    for workload in (d for d in docs if d["kind"] in WORKLOADS):
        declared = {v["name"] for v in pod_spec(workload).get("volumes", [])}
        declared |= {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
        for container in containers(workload, init=True):
            mounts = {m["name"] for m in container.get("volumeMounts", [])}
            assert mounts <= declared, (workload["metadata"]["name"], container["name"], mounts - declared)
            paths = [m["mountPath"] for m in container.get("volumeMounts", [])]
            assert len(paths) == len(set(paths)), (workload["metadata"]["name"], container["name"])


def test_the_processor_probe_command_fails_when_healthz_says_unhealthy(default: list[Manifest]) -> None:
    """The rendered exec probe, run against the processor's real health server: exit 0 while every
    consumer loop lives, non-zero once /healthz answers 503."""
    from prometheus_client import CollectorRegistry

    from processors.service.health import serve_health
    from tests.http_server import free_port

    dep = named(default, "Deployment", f"{RELEASE}-icewatch-processor-call-reports")
    (container,) = list(containers(dep))
    configured = env_of(container)["ICEWATCH_METRICS_PORT"]["value"]
    port = free_port()
    healthy = [True]
    server = serve_health(port, CollectorRegistry(), lambda: healthy[0])
    try:
        command = [part.replace(f"127.0.0.1:{configured}/", f"127.0.0.1:{port}/")
                   for part in container["livenessProbe"]["exec"]["command"]]
        assert command[0] == "python"
        command[0] = sys.executable  # the image's python is the one icewatch is installed in

        def probe() -> int:
            return subprocess.run(command, capture_output=True, timeout=30, check=False).returncode

        assert probe() == 0
        healthy[0] = False
        assert probe() != 0
    finally:
        server.shutdown()
        server.server_close()
