"""Delivery fixtures: a real moto server process, a small deployed stack in it, a local gateway.

The moto server is started once per session (per xdist worker) and reset before every test, so
tests see real HTTP round trips through boto3 (`AWS_ENDPOINT_URL`) without sharing state.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from infra.config import Route, ServiceConfig
from ops.delivery.aws import Clients

REGION = "us-east-1"
# The ECS services_stable waiter needs running == desired; moto reports this many running tasks.
RUNNING_TASKS = 2
LOCAL = "127.0.0.1,localhost"
# Fixture traffic to 127.0.0.1 never goes through a proxy a CI machine may have configured.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The URL of a moto server process of our own (never a shared one)."""
    port = free_port()
    binary = Path(sys.executable).with_name("moto_server")
    env = {**os.environ, "MOTO_ECS_SERVICE_RUNNING": str(RUNNING_TASKS)}
    proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                with _direct.open(f"{url}/moto-api/", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"moto_server exited with {proc.returncode}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not answer within 30s") from None
                time.sleep(0.1)
        yield url
    finally:
        # Nothing to flush (all state is in memory); a polite exit spends ~2 s tearing down backends.
        proc.kill()
        proc.wait()


def _point_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # A missing file keeps a developer's ~/.aws config (profiles, endpoints) out of the tests.
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    _no_proxy(monkeypatch)


def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, ",".join(filter(None, (os.environ.get(name), LOCAL))))


@pytest.fixture
def aws_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """boto3 pointed at the moto server with fake credentials (for this test only), moto emptied,
    and the account's delivery tables there as ci/bootstrap creates them."""
    _point_at(monkeypatch, moto_server)
    _post(f"{moto_server}/moto-api/reset")
    create_delivery_tables(_dynamodb(moto_server))
    return moto_server


_DYNAMODB: dict[str, Any] = {}


def _dynamodb(url: str) -> Any:
    import boto3

    if url not in _DYNAMODB:
        _DYNAMODB[url] = boto3.client("dynamodb", endpoint_url=url, region_name=REGION,
                                      aws_access_key_id="testing", aws_secret_access_key="testing")
    return _DYNAMODB[url]


def bootstrap_tables() -> Any:
    """ci/bootstrap/delivery_tables.py (a script directory, not a package): the one key schema."""
    import importlib.util

    name = "refarch_delivery_tables"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "ci" / "bootstrap" / "delivery_tables.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


def create_delivery_tables(dynamodb: Any, project: str = "refarch") -> None:
    tables = bootstrap_tables()
    for spec in (tables.lock_table(project), tables.ledger_table(project)):
        keys = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
        if spec.sort_key:
            keys.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
        dynamodb.create_table(TableName=spec.name, KeySchema=keys, BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": a["name"], "AttributeType": a["type"]}
                                                    for a in spec.attributes()])


def _post(url: str) -> None:
    with _direct.open(urllib.request.Request(url, method="POST", data=b""), timeout=30):
        pass


@pytest.fixture(scope="session")
def _session_clients(moto_server: str) -> Iterator[Clients]:
    # Building a boto3 client loads its service model (~0.3 s each): build them once, eagerly,
    # inside the moto environment (endpoint and credentials are resolved at creation).
    with pytest.MonkeyPatch.context() as monkeypatch:
        _point_at(monkeypatch, moto_server)
        shared = Clients(REGION)
        for name in ("ecs", "elbv2", "cloudwatch", "ecr", "ssm", "s3", "sts", "logs", "dynamodb"):
            getattr(shared, name)
        shared.ec2 = shared.client("ec2")  # type: ignore[attr-defined]  # fixtures only
        # moto builds its EC2 backend (AMIs, instance types) on first use: ~4 s, paid once here.
        shared.ec2.describe_vpcs()
    yield shared
    # Release the pooled sockets before the server process goes away.
    for name in ("ecs", "elbv2", "cloudwatch", "ecr", "ssm", "s3", "sts", "logs", "dynamodb", "ec2"):
        getattr(shared, name).close()


@pytest.fixture
def clients(aws_env: str, _session_clients: Clients) -> Clients:
    """`ops.delivery.aws.Clients` on the moto server, emptied for this test."""
    return _session_clients


# -- the local gateway -----------------------------------------------------------------------------

@dataclass
class Gateway:
    """A local HTTP server standing in for the ALB: status per path, every request recorded."""

    url: str
    statuses: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)

    def set(self, path: str, status: int) -> None:
        self.statuses[path] = status


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    _no_proxy(monkeypatch)  # the smoke checks use urllib, which honours proxy variables
    state = Gateway(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            state.requests.append((self.path, self.headers.get("Host", "")))
            status = state.statuses.get(self.path, 200)
            body = json.dumps({"path": self.path, "status": status}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- a small deployed stack ------------------------------------------------------------------------

STACK = "test"
PREFIX = f"refarch-{STACK}"
SERVICE_NAMES = ("products", "orders")


@dataclass
class DeployedStack:
    outputs: dict[str, Any]  # shaped like `pulumi stack output --json` (see infra/aws/program.py)
    services: list[ServiceConfig]
    images: dict[str, str]  # service -> repo@sha256:... present in the moto ECR
    cluster: str
    task_definitions: dict[str, list[str]]  # service -> revision ARNs, oldest first

    def service_name(self, service: str) -> str:
        return str(self.outputs["services"][service]["service_name"])


def _manifest(service: str, revision: int) -> str:
    # moto derives the image digest from the layer digests: one distinct layer, one distinct digest.
    layer = "sha256:" + hashlib.sha256(f"{service}:{revision}".encode()).hexdigest()
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7, "digest": layer},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 7, "digest": layer}],
    })


def build_stack(aws: Clients, gateway_url: str, desired_count: int = RUNNING_TASKS,
                images: dict[str, str] | None = None) -> DeployedStack:
    """ECS cluster + one service per name (task definitions at revisions 1 and 2, running 2), an ALB
    with a target group per service and two healthy targets each, health alarms, an ECR image each.

    With `images` (service -> repo@digest already in ECR) it is what a first full `up` creates: no
    repository or image of its own, one task definition revision per service running that image,
    real security groups, and a VPC and migration task definitions moto's run_task accepts.
    """
    ec2 = getattr(aws, "ec2", None) or aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    if images is not None:
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # awsvpc ENIs need it
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}")
               ["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
    aws.elbv2.create_load_balancer(Name=f"{PREFIX}-gw", Subnets=subnets, Type="application")
    cluster = aws.ecs.create_cluster(clusterName=PREFIX)["cluster"]["clusterName"]

    services: list[ServiceConfig] = []
    outputs_services: dict[str, Any] = {}
    built: dict[str, str] = {}
    revisions: dict[str, list[str]] = {}
    all_alarms: list[str] = []
    for index, name in enumerate(SERVICE_NAMES):
        full = f"{PREFIX}-{name}"
        if images is None:
            repo = aws.ecr.create_repository(repositoryName=full)["repository"]["repositoryUri"]
            digest = aws.ecr.put_image(repositoryName=full, imageManifest=_manifest(name, 2),
                                       imageTag="v2")["image"]["imageId"]["imageDigest"]
            built[name] = f"{repo}@{digest}"
            tags = [f"{repo}:v{rev}" for rev in (1, 2)]
            security_group = f"sg-{index:017x}"
        else:
            built[name] = images[name]
            repo, tags = images[name].split("@")[0], [images[name]]
            security_group = ec2.create_security_group(GroupName=full, Description=f"{name} tasks",
                                                       VpcId=vpc)["GroupId"]
        revisions[name] = [
            aws.ecs.register_task_definition(
                family=full, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
                containerDefinitions=[{"name": name, "image": image, "essential": True,
                                       "portMappings": [{"containerPort": 8080}]}],
            )["taskDefinition"]["taskDefinitionArn"]
            for image in tags
        ]
        # A migration family whose name extends the service's: never a rollback target for it.
        migrate = aws.ecs.register_task_definition(
            family=f"{full}-migrate", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
            memory="512", containerDefinitions=[{"name": name, "image": tags[-1], "essential": True,
                                                 "memory": 512}],
        )["taskDefinition"]["taskDefinitionArn"]
        tg = aws.elbv2.create_target_group(Name=full, Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip",
                                           HealthCheckPath="/health")["TargetGroups"][0]["TargetGroupArn"]
        aws.elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": f"10.0.{i}.{10 + index}", "Port": 8080}
                                                                for i in range(2)])
        aws.ecs.create_service(
            cluster=cluster, serviceName=full, taskDefinition=revisions[name][-1], desiredCount=desired_count,
            launchType="FARGATE",
            loadBalancers=[{"targetGroupArn": tg, "containerName": name, "containerPort": 8080}],
        )
        alarms = [f"{full}-5xx", f"{full}-unhealthy-hosts"]
        for alarm in alarms:
            aws.cloudwatch.put_metric_alarm(
                AlarmName=alarm, Namespace="AWS/ApplicationELB", MetricName="HTTPCode_Target_5XX_Count",
                Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=5,
                ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching",
            )
        all_alarms += alarms
        services.append(ServiceConfig(name=name, build=f"services/{name}", routes=[Route(path=f"/{name}/*")]))
        outputs_services[name] = {
            "service_name": full,
            "target_group_arn": tg,
            "repository_url": repo,
            "security_group_id": security_group,
            "task_definition_arn": revisions[name][-1],
            "migration_task_definition_arn": migrate,
            "migration_task_definition_urn": f"urn:pulumi:{STACK}::refarch::aws:ecs/taskDefinition:TaskDefinition::"
                                             f"{name}-migrate",
            "log_group_name": f"/refarch/{STACK}/{name}",
            "routes": [f"/{name}/*"],
            "health_check_path": "/health",
            "health_alarm_names": alarms,
        }
    gateway_alarm = f"{PREFIX}-gateway-5xx"
    aws.cloudwatch.put_metric_alarm(
        AlarmName=gateway_alarm, Namespace="AWS/ApplicationELB", MetricName="HTTPCode_ELB_5XX_Count",
        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold",
    )
    outputs = {
        "gateway_url": gateway_url,
        "cluster_name": cluster,
        "private_subnet_ids": subnets,
        "services": outputs_services,
        "health_alarm_names": [gateway_alarm, *all_alarms],
        "database_endpoint": f"{PREFIX}-db.abcdefghijkl.{REGION}.rds.amazonaws.com",
        "cache_endpoint": f"master.{PREFIX}-cache.abcdef.use1.cache.amazonaws.com",
        "alert_topic_arn": f"arn:aws:sns:{REGION}:123456789012:{PREFIX}-alerts",
        "dashboard_name": PREFIX,
    }
    return DeployedStack(outputs=outputs, services=services, images=built, cluster=cluster,
                         task_definitions=revisions)


@pytest.fixture
def deployed_stack(clients: Clients, gateway: Gateway) -> DeployedStack:
    return build_stack(clients, gateway.url)


@pytest.fixture
def stack_builder(clients: Clients, gateway: Gateway):
    """`stack_builder(desired_count=3)`: the same stack with other settings (test modules cannot
    import from conftest under --import-mode=importlib)."""
    return lambda **kwargs: build_stack(clients, gateway.url, **kwargs)
