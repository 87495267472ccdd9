"""The pipeline on a real Kubernetes: `make cluster` and `skaffold run -p local-k8s`, checked.

One module, one cluster (the slow part, ~10 minutes the first time on a new machine, while Go
builds Kubernetes): scripts/local-k8s.sh brings a one-node cluster up, skaffold builds the four
images and deploys deploy/k8s through the local-k8s profile, and then the deployment is judged as
a user would: every workload ready with no container restarted (the services wait for their
brokers instead of crashing), the topics Job complete, the restricted Pod Security level refusing
a root pod, the NetworkPolicies enforced (kube-router) on a connection they deny and one they
allow, VIP actions in the RabbitMQ queue inside the cluster equal to the oracle's answer for
what the generator wrote, also after a pod of each service was deleted mid-stream. Then the
developer's loop: `skaffold delete`, `skaffold dev` deploying it all again, a source file of the
generator added and that service alone rebuilt and rolled out, Ctrl-C; and `down`.

Needs root (containerd, kubelet, iptables) and Go; outside CI a machine without them skips with
that reason, in CI (CI=true) it fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.brokers import ROOT
from tests.support.collect import drain_queue
from tests.support.eventually import eventually
from tests.support.oracle import KafkaRow, compare, expected_outcome
from tests.support.services import free_port

pytestmark = pytest.mark.cluster

NAMESPACE = "clickstream-vip"
SERVICES = ("user-state", "enricher", "vip-sessions", "vip-days", "rabbit-bridge", "generator")
# the consumer-group members, whose pod names are their static member ids
STATEFUL = frozenset({"enricher", "vip-sessions", "vip-days", "rabbit-bridge"})
LOCAL_K8S = ROOT / "scripts" / "local-k8s.sh"
LOGS = ROOT / ".local" / "k8s" / "log"


def _missing_prerequisite() -> str | None:
    if os.geteuid() != 0:
        return "the local cluster needs root (containerd, kubelet, iptables)"
    if shutil.which("go") is None and not (ROOT / ".local/k8s/bin/.stamp-kubelet").exists():
        return "the go command builds the cluster (scripts/local-k8s.sh install)"
    return None


@dataclass
class Cluster:
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        result = subprocess.run(
            list(args),
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check:
            assert result.returncode == 0, (
                f"{' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result.stdout

    def kubectl(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        return self.run("kubectl", "--namespace", NAMESPACE, *args, timeout=timeout, check=check)

    def kafka(self, tool: str, *args: str, timeout: float = 120) -> str:
        """A Kafka command-line tool run inside the broker's pod, against that broker."""
        return self.kubectl(
            "exec",
            "kafka-0",
            "--",
            "env",
            "LOG_DIR=/tmp/kafka-tools",
            "KAFKA_HEAP_OPTS=-Xmx256m",
            f"/opt/kafka/bin/{tool}",
            "--bootstrap-server",
            "localhost:9092",
            *args,
            timeout=timeout,
        )


def _shell_exports(text: str) -> dict[str, str]:
    """`export A=b C=d` lines (scripts/local-k8s.sh env) as a dict, $PATH expanded."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("export "):
            continue
        for assignment in line.removeprefix("export ").split():
            name, _, value = assignment.partition("=")
            env[name] = value.replace("$PATH", os.environ.get("PATH", "")).strip("'\"")
    return env


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    problem = _missing_prerequisite()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}; CI must run the cluster test")
        pytest.skip(problem)
    up = subprocess.run(
        [str(LOCAL_K8S), "up"], cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    assert up.returncode == 0, f"scripts/local-k8s.sh up failed:\n{up.stderr[-4000:]}"
    env = {**os.environ, **_shell_exports(up.stdout), "SKAFFOLD_INTERACTIVE": "false"}
    # skaffold's own settings (no update check, no metrics upload) as scripts/deploy-check.sh
    # writes them, in the home it keeps under .local
    home = ROOT / ".local" / "deploy-check" / "home"
    (home / ".skaffold").mkdir(parents=True, exist_ok=True)
    (home / ".skaffold" / "config").write_text(
        "global:\n  update-check: false\n  collect-metrics: false\n"
        "  survey:\n    disable-prompt: true\n"
    )
    env["HOME"] = str(home)
    yield Cluster(env)
    subprocess.run([str(LOCAL_K8S), "down"], cwd=ROOT, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def deployed(cluster: Cluster) -> Iterator[Cluster]:
    started = time.monotonic()
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / "skaffold-run.log"
    # no --tolerate-failures-until-deadline: a container that exits fails the deploy
    result = subprocess.run(
        ["skaffold", "run", "-p", "local-k8s", "--kube-context", "k8s-local"],
        env=cluster.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        stdin=subprocess.DEVNULL,
    )
    log.write_text(result.stdout + result.stderr)
    assert result.returncode == 0, f"skaffold run failed (log {log}):\n{result.stdout[-4000:]}"
    print(f"skaffold run -p local-k8s: {time.monotonic() - started:.0f}s")
    yield cluster
    cluster.run("skaffold", "delete", "-p", "local-k8s", "--kube-context", "k8s-local")
    _namespace_gone(cluster)


def test_every_workload_ready_without_a_restart(deployed: Cluster) -> None:
    deployed.kubectl("wait", "--for=condition=complete", "job/kafka-topics", "--timeout=60s")
    for kind in ("deployment", "statefulset"):
        for name in deployed.kubectl("get", kind, "-o", "name").split():
            deployed.kubectl("rollout", "status", name, "--timeout=120s", timeout=180)
    restarts = deployed.kubectl(
        "get",
        "pods",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} "
        "{range .status.containerStatuses[*]}{.restartCount}{end}{'\\n'}{end}",
    )
    restarted = [line for line in restarts.splitlines() if line.split()[-1] != "0"]
    assert not restarted, f"containers restarted on the first deploy: {restarted}"


def test_restricted_pod_security_refuses_a_root_pod(deployed: Cluster) -> None:
    pod = (
        '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"root-probe"},'
        '"spec":{"containers":[{"name":"c","image":"registry.k8s.io/pause:3.10.1",'
        '"securityContext":{"runAsUser":0}}]}}'
    )
    refused = subprocess.run(
        ["kubectl", "--namespace", NAMESPACE, "apply", "--dry-run=server", "-f", "-"],
        input=pod,
        env=deployed.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in refused.stderr, refused.stderr


_CONNECT = """
import socket, sys
for target in sys.argv[1:]:
    host, port = target.split(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
        print(target, "open")
    except OSError as exc:
        print(target, "refused", type(exc).__name__)
"""


def test_the_network_policies_let_through_only_what_they_allow(deployed: Cluster) -> None:
    """kube-router enforces deploy/k8s/network-policies.yaml: the generator may reach Kafka and
    nothing else of the pipeline; the bridge may reach RabbitMQ."""
    generator = deployed.kubectl(
        "get", "pods", "-l", "app.kubernetes.io/name=generator", "-o", "name"
    ).split()[0]
    seen = deployed.kubectl(
        "exec",
        generator,
        "--",
        "python",
        "-c",
        _CONNECT,
        "kafka:9092",
        "rabbitmq:5672",
        "user-state:8080",
        "schema-registry:8080",
    )
    outcome = dict(line.split(" ", 1) for line in seen.splitlines())
    assert outcome["kafka:9092"] == "open", seen
    assert outcome["schema-registry:8080"] == "open", seen
    assert outcome["rabbitmq:5672"].startswith("refused"), seen
    assert outcome["user-state:8080"].startswith("refused"), seen
    bridge = deployed.kubectl(
        "exec",
        "rabbit-bridge-0",
        "--",
        "python",
        "-c",
        _CONNECT,
        "rabbitmq:5672",
        "user-state:8080",
    )
    assert "rabbitmq:5672 open" in bridge and "user-state:8080 refused" in bridge, bridge


def _read_topic(cluster: Cluster, topic: str) -> list[KafkaRow]:
    out = cluster.kafka(
        "kafka-console-consumer.sh",
        "--topic",
        topic,
        "--from-beginning",
        "--timeout-ms",
        "15000",
        "--property",
        "print.timestamp=true",
        "--property",
        "print.partition=true",
        "--property",
        "print.offset=true",
        "--property",
        "print.key=true",
        timeout=300,
    )
    rows = []
    for line in out.splitlines():
        if not line.startswith("CreateTime:"):  # the tool's own log lines share its stdout
            continue
        created, partition, offset, key, value = line.split("\t", 4)
        rows.append(
            KafkaRow(
                int(partition.removeprefix("Partition:")),
                int(offset.removeprefix("Offset:")),
                None if key == "null" else key.encode(),
                None if value == "null" else value.encode(),
                int(created.removeprefix("CreateTime:")),
            )
        )
    return rows


def _lags(cluster: Cluster, group: str) -> list[int]:
    """The group's lag per partition (a partition with nothing committed yet counts as 1)."""
    out = cluster.kafka("kafka-consumer-groups.sh", "--describe", "--group", group)
    lags = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[0] == group:
            lags.append(int(fields[5]) if fields[5].isdigit() else 1)
    return lags


def _caught_up(cluster: Cluster) -> bool:
    """The enricher has committed every click and the bridge every VipAction. The enricher
    writes vip-action in transactions (exactly once), whose commit marker takes the last offset
    of a partition: a bridge that read everything stays one behind the end there."""
    enricher, bridge = _lags(cluster, "enricher"), _lags(cluster, "rabbit-bridge")
    return bool(enricher and bridge) and max(enricher) == 0 and max(bridge) <= 1


def _queue_depth(cluster: Cluster) -> int:
    out = cluster.kubectl("exec", "rabbitmq-0", "--", "rabbitmqctl", "list_queues", "-q")
    for line in out.splitlines():
        name, _, count = line.partition("\t")
        if name == "vip-actions":
            return int(count)
    return 0


def test_vip_actions_match_the_oracle_after_a_pod_of_each_service_is_deleted(
    deployed: Cluster,
) -> None:
    eventually(lambda: _queue_depth(deployed) > 0, timeout=180, message="no VIP action arrived")
    # mid-stream: one pod of each service deleted (graceful, as a drain or a rollout does)
    for service in SERVICES:
        pod = deployed.kubectl(
            "get", "pods", "-l", f"app.kubernetes.io/name={service}", "-o", "name"
        ).split()[0]
        deployed.kubectl("delete", pod, "--wait=false")
    for service in SERVICES:
        kind = "statefulset" if service in STATEFUL else "deployment"
        deployed.kubectl("rollout", "status", f"{kind}/{service}", "--timeout=180s", timeout=240)
    time.sleep(20)  # the pipeline runs on, with the replaced pods
    # the input made finite: the generator stopped, then everything it wrote worked through
    deployed.kubectl("scale", "deployment/generator", "--replicas=0")
    deployed.kubectl(
        "wait",
        "--for=delete",
        "pod",
        "-l",
        "app.kubernetes.io/name=generator",
        "--timeout=120s",
        timeout=180,
    )
    eventually(lambda: _caught_up(deployed), timeout=300, message="the enricher or the bridge lags")
    expected = expected_outcome(_read_topic(deployed, "user"), _read_topic(deployed, "click"))
    port = free_port()
    forward = subprocess.Popen(
        ["kubectl", "--namespace", NAMESPACE, "port-forward", "service/rabbitmq", f"{port}:5672"],
        env=deployed.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"amqp://clickstream:clickstream-demo@127.0.0.1:{port}/%2F"
        eventually(lambda: _port_open(port), timeout=30, message="port-forward did not open")
        bodies = drain_queue(url, "vip-actions")
    finally:
        forward.terminate()
        forward.wait(10)
    result = compare(expected.vip_rows, bodies)
    print(f"cluster oracle, a pod of each service deleted: {result.line()}")
    assert expected.clicks > 0 and result.expected > 0
    assert result.missing == 0 and result.unexpected == 0, result.line()


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _generator_image(cluster: Cluster) -> str:
    return cluster.kubectl(
        "get", "deployment/generator", "-o", "jsonpath={.spec.template.spec.containers[0].image}"
    )


def _namespace_gone(cluster: Cluster) -> None:
    eventually(
        lambda: NAMESPACE not in cluster.run("kubectl", "get", "namespaces", "-o", "name"),
        timeout=180,
        message=lambda: f"namespace {NAMESPACE} still there after skaffold delete",
    )


def test_skaffold_dev_after_a_delete_redeploys_an_edited_service(deployed: Cluster) -> None:
    """The developer's loop, from a clean slate: `skaffold delete` (the brokers' claims go with
    the namespace), then `skaffold dev` deploys it all again (the volumes offered anew), notices a
    new source file of the generator, rebuilds that image alone, loads it into containerd and
    rolls the generator out; Ctrl-C deletes it all. With the env `scripts/local-k8s.sh` prints
    (SKAFFOLD_TRIGGER=polling): skaffold's default notify trigger waits for a quiet second in the
    whole repo, which the brokers of `make test`, running meanwhile with their data in .local,
    never give it (CI saw this edit never redeployed)."""
    deployed.run("skaffold", "delete", "-p", "local-k8s", "--kube-context", "k8s-local")
    _namespace_gone(deployed)
    log = LOGS / "skaffold-dev.log"
    probe = ROOT / "services" / "generator" / "src" / "clickstream_generator" / "_dev_probe.py"
    with log.open("w") as sink:
        dev = subprocess.Popen(
            [
                *("skaffold", "dev", "-p", "local-k8s", "--kube-context", "k8s-local"),
                *("--no-prune", "--port-forward=off"),
            ],
            env=deployed.env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def watching() -> bool:
        if dev.poll() is not None:
            pytest.fail(f"skaffold dev exited {dev.returncode} (log {log})")
        return "Watching for changes" in log.read_text()

    try:
        eventually(
            watching,
            timeout=900,
            message=lambda: f"skaffold dev never got to watching (log {log})",
        )
        before = _generator_image(deployed)
        edited = time.monotonic()
        probe.write_text('"""Written by tests/cluster to see skaffold dev redeploy; deleted."""\n')
        eventually(
            lambda: _generator_image(deployed) != before,
            timeout=300,
            message=lambda: f"no new generator image deployed after the edit (log {log})",
        )
        deployed.kubectl("rollout", "status", "deployment/generator", "--timeout=180s", timeout=240)
        print(f"skaffold dev: the edit rolled out in {time.monotonic() - edited:.0f}s")
        assert dev.poll() is None, f"skaffold dev exited {dev.returncode} (log {log})"
    finally:
        probe.unlink(missing_ok=True)
        dev.send_signal(signal.SIGINT)  # Ctrl-C: skaffold dev deletes what it deployed
        try:
            dev.wait(180)
        except subprocess.TimeoutExpired:
            dev.kill()
    _namespace_gone(deployed)
