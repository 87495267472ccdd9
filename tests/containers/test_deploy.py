"""The Kubernetes deployment, checked without a cluster.

`scripts/deploy-check.sh` runs the real Skaffold: `skaffold diagnose`, `skaffold render` into
`.local/render.yaml`, and the rendered manifests against the Kubernetes JSON schemas. The tests
here then check what the schemas cannot: probes, resources, the restricted security context, the
configuration, the topics. The script also writes the rendered documents as JSON
(`.local/render.json`, parsed with PyYAML in its own throwaway environment), so no YAML parser is
needed here. `skaffold build` runs against the container engine in the last test.

Outside CI a missing prerequisite (Go to build skaffold, the container engine) skips with the
script's reason; in CI (CI=true) it fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.containers

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "deploy-check.sh"
RENDERED_JSON = ROOT / ".local" / "render.json"
MISSING = 3  # the script's exit code for a missing prerequisite

SERVICES = {  # name: (port, replicas)
    "user-state": (8080, 2),
    "enricher": (8081, 2),
    "rabbit-bridge": (8082, 1),
    "generator": (8083, 1),
}
# The enricher image running the windowed queries of queries/ (README § Windowed queries).
WINDOWED = {"vip-sessions": (8084, 1), "vip-days": (8085, 1)}
WORKLOADS = {**SERVICES, **WINDOWED}
# the consumer-group members: StatefulSets, whose pod names are their static member ids
STATEFUL = {"enricher", "rabbit-bridge", *WINDOWED}


def _kind(name: str) -> str:
    return "StatefulSet" if name in STATEFUL else "Deployment"


PART_OF = "clickstream-vip"

Doc = dict[str, Any]


def _run(command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    # a first run builds skaffold from the Go module proxy: minutes
    return subprocess.run(
        [str(SCRIPT), command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _check(result: subprocess.CompletedProcess[str], what: str) -> None:
    output = (result.stdout + result.stderr)[-6000:]
    if result.returncode == MISSING:
        reason = next(
            (
                line.split("MISSING: ", 1)[1]
                for line in reversed(result.stderr.splitlines())
                if "MISSING: " in line
            ),
            "a prerequisite is missing",
        )
        if os.environ.get("CI"):
            pytest.fail(f"{what}: {reason}; CI must have it\n{output}")
        pytest.skip(f"{what}: {reason}")
    assert result.returncode == 0, f"{what} failed (exit {result.returncode}):\n{output}"


@pytest.fixture(scope="module")
def rendered() -> list[Doc]:
    """Runs the checks once; the rendered documents."""
    RENDERED_JSON.unlink(missing_ok=True)
    _check(_run("validate", timeout=3600), "scripts/deploy-check.sh validate")
    docs = json.loads(RENDERED_JSON.read_text())
    assert isinstance(docs, list) and docs, "nothing rendered"
    return docs


def _find(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _containers(workload: Doc) -> list[Doc]:
    containers: list[Doc] = workload["spec"]["template"]["spec"]["containers"]
    return containers


def _env(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def _deployments(docs: list[Doc]) -> Iterator[tuple[str, Doc, Doc]]:
    for name in WORKLOADS:
        deployment = _find(docs, _kind(name), name)
        (container,) = _containers(deployment)
        yield name, deployment, container


def test_deploy_check_passes(rendered: list[Doc]) -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in rendered}
    for expected in [
        ("ConfigMap", "clickstream-config"),
        ("Secret", "rabbitmq-credentials"),
        ("StatefulSet", "kafka"),
        ("Service", "kafka"),
        ("Service", "kafka-headless"),
        ("Job", "kafka-topics"),
        ("StatefulSet", "rabbitmq"),
        ("Service", "rabbitmq"),
        ("Deployment", "schema-registry"),
        ("Service", "schema-registry"),
        *[(_kind(name), name) for name in WORKLOADS],
        *[("Service", name) for name in WORKLOADS],
    ]:
        assert expected in kinds, f"{expected} not rendered"
    for doc in rendered:
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == PART_OF, doc["metadata"]["name"]
        assert "app.kubernetes.io/name" in labels, doc["metadata"]["name"]


def test_every_deployment_is_probed_limited_and_restricted(rendered: list[Doc]) -> None:
    for name, deployment, container in _deployments(rendered):
        port, replicas = WORKLOADS[name]
        pod = deployment["spec"]["template"]["spec"]
        assert deployment["spec"]["replicas"] == replicas, name
        # skaffold replaced the bare image name with the tag it builds
        image = "enricher" if name in WINDOWED else name
        assert re.fullmatch(rf"{re.escape(image)}:[\w.-]+", container["image"]), container["image"]
        assert {"name": "http", "containerPort": port} in [
            {k: p[k] for k in ("name", "containerPort")} for p in container["ports"]
        ], name

        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, name
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, name

        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) >= {"cpu", "memory"}, (name, bound)

        pod_sc, sc = pod.get("securityContext", {}), container["securityContext"]

        def effective(key: str, pod_sc: Doc = pod_sc, sc: Doc = sc) -> Any:
            return sc.get(key, pod_sc.get(key))

        assert effective("runAsNonRoot") is True, name
        assert effective("runAsUser") == 10001, name
        assert effective("seccompProfile") == {"type": "RuntimeDefault"}, name
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["readOnlyRootFilesystem"] is True, name
        assert sc["capabilities"]["drop"] == ["ALL"], name

        assert {"configMapRef": {"name": "clickstream-config"}} in container["envFrom"], name
        assert pod["terminationGracePeriodSeconds"] >= 30, name
        assert _env(container)["HTTP_PORT"]["value"] == str(port), name

        service = _find(rendered, "Service", name)
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"], name
        assert {"name": "http", "port": port, "targetPort": "http"} in service["spec"]["ports"]


def test_the_windowed_queries_run_exactly_once_over_vip_actions(rendered: list[Doc]) -> None:
    dockerfile = (ROOT / "services" / "enricher" / "Dockerfile").read_text()
    assert "COPY queries /opt/queries" in dockerfile
    outputs = set()
    for name in WINDOWED:
        (container,) = _containers(_find(rendered, _kind(name), name))
        env = {k: e.get("value") for k, e in _env(container).items()}
        query = env["ENRICHER_QUERY_FILE"]
        assert query == f"/opt/queries/{name}.sql" and (ROOT / "queries" / f"{name}.sql").exists()
        assert env["ENRICHER_DELIVERY"] == "exactly_once", name
        assert (env["CLICKS_STREAM"], env["CLICKS_TOPIC"]) == ("VipActions", "vip-action"), name
        assert env["CONSUMER_GROUP"] == name
        outputs.add(env["OUTPUT_TOPIC"])
    assert outputs == {"vip-session", "vip-day"}


def test_user_state_waits_for_its_table_and_the_enricher_finds_it(rendered: list[Doc]) -> None:
    (user_state,) = _containers(_find(rendered, "Deployment", "user-state"))
    startup = user_state["startupProbe"]
    assert startup["httpGet"]["port"] == "http"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    config = _find(rendered, "ConfigMap", "clickstream-config")["data"]
    assert config["USER_STATE_URL"] == "http://user-state:8080"
    assert config["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    # the enricher holds clicks up to JOIN_GRACE_MS on SIGTERM: its grace period covers that
    enricher = _find(rendered, "StatefulSet", "enricher")["spec"]["template"]["spec"]
    assert enricher["terminationGracePeriodSeconds"] * 1000 > int(config["JOIN_GRACE_MS"]) * 2
    # per-service settings stay out of the shared ConfigMap
    assert not {"HTTP_PORT", "CONSUMER_GROUP", "BATCH_SIZE"} & set(config)


def test_consumer_group_members_are_static_with_their_pod_names(rendered: list[Doc]) -> None:
    for name in STATEFUL:
        workload = _find(rendered, "StatefulSet", name)
        (container,) = _containers(workload)
        member = _env(container)["KAFKA_GROUP_INSTANCE_ID"]["valueFrom"]["fieldRef"]
        assert member == {"fieldPath": "metadata.name"}, name
        assert workload["spec"]["podManagementPolicy"] == "Parallel", name


def test_the_bridge_takes_its_url_from_the_secret(rendered: list[Doc]) -> None:
    (bridge,) = _containers(_find(rendered, "StatefulSet", "rabbit-bridge"))
    ref = _env(bridge)["RABBITMQ_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "rabbitmq-credentials", "key": "RABBITMQ_URL"}
    secret = _find(rendered, "Secret", "rabbitmq-credentials")["stringData"]
    assert secret["RABBITMQ_URL"].startswith("amqp://")
    assert "@rabbitmq:5672/" in secret["RABBITMQ_URL"]
    (rabbit,) = _containers(_find(rendered, "StatefulSet", "rabbitmq"))
    env = _env(rabbit)
    for key in ("RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS"):
        assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "rabbitmq-credentials", "key": key}
    assert rabbit["image"] == "rabbitmq:3.13-management"
    ports = {p["port"] for p in _find(rendered, "Service", "rabbitmq")["spec"]["ports"]}
    assert {5672, 15672} <= ports


def test_kafka_runs_kraft_single_node_on_a_volume(rendered: list[Doc]) -> None:
    kafka = _find(rendered, "StatefulSet", "kafka")
    (broker,) = _containers(kafka)
    assert broker["image"] == "apache/kafka:4.1.1"
    env = {k: v.get("value") for k, v in _env(broker).items()}
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["CLUSTER_ID"]
    mounts = {m["name"]: m["mountPath"] for m in broker["volumeMounts"]}
    (claim,) = kafka["spec"]["volumeClaimTemplates"]
    assert env["KAFKA_LOG_DIRS"].startswith(mounts[claim["metadata"]["name"]] + "/")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert broker[probe]["tcpSocket"]["port"] == "kafka", probe
    headless = _find(rendered, "Service", "kafka-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert kafka["spec"]["serviceName"] == "kafka-headless"
    assert [p["port"] for p in _find(rendered, "Service", "kafka")["spec"]["ports"]] == [9092]


def test_the_topics_job_creates_user_compacted(rendered: list[Doc]) -> None:
    job = _find(rendered, "Job", "kafka-topics")
    (container,) = _containers(job)
    assert container["image"] == "apache/kafka:4.1.1"
    assert {"configMapRef": {"name": "clickstream-config"}} in container["envFrom"]
    script = "\n".join(container["args"])
    assert "kafka-broker-api-versions.sh" in script, "the Job waits for the broker first"
    assert "/opt/kafka/bin" in script and "kafka-topics.sh" in script
    assert "--create --if-not-exists" in script
    assert "--partitions" in script
    creates = dict(re.findall(r'^\s*create "\$(\w+)(\.?[\w.]*)".*$', script, re.M))
    compacted = re.findall(
        r'^\s*create "\$(\w+)" --config cleanup\.policy=compact\s*$', script, re.M
    )
    assert compacted == ["users"], "only the users topic is compacted"
    assert re.search(r'^\s*users="\$\{USERS_TOPIC:-user\}"$', script, re.M)
    config = _find(rendered, "ConfigMap", "clickstream-config")["data"]
    assert config["USERS_TOPIC"] == "user"
    assert config["TOPIC_PARTITIONS"] == "4"
    assert {"users", "clicks", "vip"} <= set(creates)


def test_the_schema_registry_keeps_its_schemas_in_kafka(rendered: list[Doc]) -> None:
    registry = _find(rendered, "Deployment", "schema-registry")
    (container,) = _containers(registry)
    assert container["image"] == "quay.io/apicurio/apicurio-registry:3.3.3"
    env = _env(container)
    assert env["APICURIO_STORAGE_KIND"]["value"] == "kafkasql"
    assert env["APICURIO_KAFKASQL_BOOTSTRAP_SERVERS"]["valueFrom"]["configMapKeyRef"] == {
        "name": "clickstream-config",
        "key": "KAFKA_BOOTSTRAP_SERVERS",
    }
    assert env["APICURIO_RULES_GLOBAL_COMPATIBILITY"]["value"] == "BACKWARD"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "management": 9000}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "management"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "management"}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    for bound in ("requests", "limits"):
        assert set(container["resources"][bound]) >= {"cpu", "memory"}, bound
    pod = registry["spec"]["template"]["spec"]
    pod_sc, sc = pod["securityContext"], container["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] != 0
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    # snapshots and imports go to java.io.tmpdir: a writable /tmp
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    service = _find(rendered, "Service", "schema-registry")
    assert service["spec"]["selector"] == registry["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http"}]


def test_avro_is_one_switch_in_the_config_map(rendered: list[Doc]) -> None:
    config = _find(rendered, "ConfigMap", "clickstream-config")["data"]
    assert config["VALUE_FORMAT"] == "json", "JSON unless asked"
    assert config["SCHEMA_REGISTRY_URL"] == "http://schema-registry:8080/apis/ccompat/v7"
    assert config["RABBITMQ_FORMAT"] == "json"
    # every service takes the whole ConfigMap, so flipping VALUE_FORMAT reaches them all
    for name, _, container in _deployments(rendered):
        assert {"configMapRef": {"name": "clickstream-config"}} in container["envFrom"], name
        assert not {"VALUE_FORMAT", "SCHEMA_REGISTRY_URL"} & set(_env(container)), name


def test_kustomization_and_skaffold_list_the_same_manifests() -> None:
    kustomization = (ROOT / "deploy" / "k8s" / "kustomization.yaml").read_text()
    listed = re.findall(r"^  - (\S+\.yaml)$", kustomization, re.M)
    skaffold = (ROOT / "skaffold.yaml").read_text()
    raw = re.findall(r"^    - deploy/k8s/(\S+\.yaml)$", skaffold, re.M)
    assert listed and listed == raw
    on_disk = {p.name for p in (ROOT / "deploy" / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(listed) == on_disk


def test_skaffold_builds_the_images_on_the_engine(rendered: list[Doc]) -> None:
    _check(_run("build", timeout=3600), "scripts/deploy-check.sh build")
    build = json.loads((ROOT / ".local" / "deploy-check" / "build.json").read_text())
    assert sorted(b["imageName"] for b in build["builds"]) == sorted(SERVICES)
