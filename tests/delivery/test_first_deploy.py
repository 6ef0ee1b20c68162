"""The first deploy from an empty account, as the docs sequence it, against the moto server.

bootstrap (the account's delivery tables, as ci/bootstrap creates them: the `aws_env` fixture) ->
`invoke build --push` on a stack nothing was ever deployed to -> `invoke deploy` of its manifest.
Only the two adapters are stand-ins: the Pulumi one creates in moto what an `up` would (a targeted
up exactly the repositories it targets, the full up the rest of the stack), the Docker runner
really puts each pushed image into moto's ECR. At every step that names an AWS thing (a push into
a repository, the digest preflight, the images set into the config, the full up, the lock and
ledger tables, the migration's run_task, verification) the test looks that thing up in moto at
that moment: the first deploy never refers to something that does not exist yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from ops import synth
from ops.delivery import build, deploy
from ops.delivery.aws import Clients
from ops.delivery.ledger import LEDGER_TABLE
from ops.delivery.lock import LOCK_TABLE, StackLock
from tests.delivery.flow_fakes import (
    STACK,
    DockerRunner,
    FakeGit,
    MigrationEcs,
    RecordingStack,
    make_deps,
    stack_config,
)

SHA = "f1257" + "0" * 35
REPOSITORY = "aws:ecr/repository:Repository"


@dataclass
class Trail:
    """Each step in order, and each AWS thing a step referred to with whether moto had it then."""

    clients: Any
    steps: list[str] = field(default_factory=list)
    refs: list[tuple[str, str, bool]] = field(default_factory=list)
    created: list[tuple[str, str, bool]] = field(default_factory=list)  # (step, what, existed before)

    def step(self, name: str) -> str:
        self.steps.append(name)
        return name

    def refer(self, step: str, what: str, exists: bool) -> None:
        self.refs.append((step, what, exists))

    def missing(self) -> list[tuple[str, str]]:
        return [(step, what) for step, what, exists in self.refs if not exists]

    # --- what moto holds right now --------------------------------------------------------------
    def repository(self, step: str, name: str) -> None:
        self.refer(step, f"ecr repository {name}", _found(lambda: self.clients.ecr.describe_repositories(
            repositoryNames=[name])["repositories"]))

    def image(self, step: str, ref: str) -> None:
        url, digest = ref.split("@")
        self.refer(step, f"ecr image {ref}", _found(lambda: self.clients.ecr.describe_images(
            repositoryName=url.split("/", 1)[1], imageIds=[{"imageDigest": digest}])["imageDetails"]))

    def table(self, step: str, name: str) -> None:
        self.refer(step, f"dynamodb table {name}", _found(lambda: self.clients.dynamodb.describe_table(
            TableName=name)["Table"]["TableStatus"] == "ACTIVE"))

    def cluster(self, step: str, name: str) -> None:
        self.refer(step, f"ecs cluster {name}", _found(lambda: [c for c in self.clients.ecs.describe_clusters(
            clusters=[name])["clusters"] if c["status"] == "ACTIVE"]))

    def task_family(self, step: str, family: str) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def look() -> bool:
            found.update(self.clients.ecs.describe_task_definition(taskDefinition=family)["taskDefinition"])
            return found["status"] == "ACTIVE"

        self.refer(step, f"ecs task definition {family}", _found(look))
        return found

    def service(self, step: str, cluster: str, name: str) -> None:
        self.refer(step, f"ecs service {name}", _found(lambda: [s for s in self.clients.ecs.describe_services(
            cluster=cluster, services=[name])["services"] if s["status"] == "ACTIVE"]))

    def network(self, step: str, subnets: list[str], groups: list[str]) -> None:
        ec2 = self.clients.ec2
        for subnet in subnets:
            self.refer(step, f"subnet {subnet}", _found(lambda s=subnet: ec2.describe_subnets(SubnetIds=[s])["Subnets"]))
        for group in groups:
            self.refer(step, f"security group {group}",
                       _found(lambda g=group: ec2.describe_security_groups(GroupIds=[g])["SecurityGroups"]))


def _found(look: Any) -> bool:
    try:
        return bool(look())
    except Exception:  # botocore's NotFound family (RepositoryNotFoundException, ...): not there
        return False


class NeverDeployedStack(RecordingStack):
    """The Pulumi adapter on a stack `pulumi stack init` made and nothing ever updated: no outputs.

    A targeted up creates exactly the repositories it targets (URN -> the name the program gives
    it, from the offline synth), and refuses any other target; the full up creates the rest of the
    stack in moto (the conftest's `build_stack` over the images set in the config).
    """

    def __init__(self, trail: Trail, repositories: dict[str, str], create_stack: Any):
        super().__init__(outputs={})
        self.trail, self.repositories, self.create_stack = trail, repositories, create_stack
        self.images: dict[str, str] = {}

    def set_images(self, images: dict[str, str]) -> None:
        super().set_images(images)
        step = self.trail.step("pulumi config set refarch:images")
        for ref in images.values():
            self.trail.image(step, ref)
        self.images = dict(images)

    def up(self, target_urns: list[str] | None = None, on_event: Any = None) -> None:
        super().up(target_urns, on_event)
        if target_urns:
            step = self.trail.step("pulumi up --target <repositories>")
            for urn in target_urns:
                assert urn in self.repositories, f"a first push's targeted up touched {urn}, not a repository"
                name = self.repositories[urn]
                self.trail.created.append((step, f"ecr repository {name}", _found(
                    lambda n=name: self.trail.clients.ecr.describe_repositories(repositoryNames=[n]))))
                self.trail.clients.ecr.create_repository(repositoryName=name)
            return
        step = self.trail.step("pulumi up")
        # The task definitions it writes pull these images; the repositories are in its state already.
        for ref in self.images.values():
            self.trail.image(step, ref)
        for name in self.repositories.values():
            self.trail.repository(step, name)
        assert not self.outputs_value, "a second full up: the first deploy runs one"
        self.outputs_value = self.create_stack(self.images).outputs


class CheckingEcs(MigrationEcs):
    """moto's ECS with MigrationEcs's task endings; each run_task's references checked first."""

    def __init__(self, trail: Trail, *args: Any):
        super().__init__(*args)
        self.trail = trail

    def run_task(self, **kwargs: Any) -> dict[str, Any]:
        step = self.trail.step(f"ecs.run_task {kwargs['taskDefinition']}")
        self.trail.cluster(step, kwargs["cluster"])
        task_definition = self.trail.task_family(step, kwargs["taskDefinition"])
        for container in task_definition.get("containerDefinitions") or []:
            self.trail.image(step, container["image"])
        network = kwargs["networkConfiguration"]["awsvpcConfiguration"]
        self.trail.network(step, network["subnets"], network["securityGroups"])
        return super().run_task(**kwargs)


@pytest.fixture
def tree(tmp_path):
    for name in ("products", "orders"):
        (tmp_path / "services" / name).mkdir(parents=True)
        (tmp_path / "services" / name / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path


def first_deploy_world(clients: Clients, tree: Any, stack_builder: Any, config: Any) -> tuple[Trail, Any, Any]:
    shared = Clients(clients.region)  # one set for every flow: botocore loads each model once
    shared.ec2 = shared.client("ec2")  # type: ignore[attr-defined]  # the trail's network look-ups
    trail = Trail(shared)
    repositories = {r["urn"]: r["inputs"]["name"] for r in synth.run(config, STACK).of_type(REPOSITORY)}
    pulumi = NeverDeployedStack(trail, repositories, lambda images: stack_builder(images=images))

    def pushing(url: str, tag: str) -> None:
        trail.repository(trail.step(f"docker buildx build --push {url.rsplit('/', 1)[1]}"), url.split("/", 1)[1])

    runner = DockerRunner(ecr=shared.ecr, on_push=pushing)
    deps = make_deps(stack=pulumi, runner=runner, git=FakeGit(sha=SHA, root=tree), configs={STACK: config})
    migration = {"exit_code": 0, "log_lines": 0}
    shared.ecs = CheckingEcs(trail, shared.ecs, shared.logs, pulumi.calls, migration)  # type: ignore[misc]
    deps.clients = lambda region: shared

    real_missing, real_lock, real_ledger, real_verify = deps.missing_digests, deps.lock, deps.ledger, deps.verify

    def missing_digests(aws: Any, images: dict[str, str]) -> list[str]:
        step = trail.step("preflight: digests in ECR")
        for ref in images.values():
            trail.image(step, ref)
        return real_missing(aws, images)

    def lock(aws: Any, stack: str, owner: str) -> Any:
        trail.table(trail.step("stack lock"), LOCK_TABLE)
        return real_lock(aws, stack, owner)

    def ledger(aws: Any, stack: str) -> Any:
        trail.table(trail.step("release ledger"), LEDGER_TABLE)
        return real_ledger(aws, stack)

    def verify(aws: Any, outputs: dict[str, Any], **kwargs: Any) -> Any:
        step = trail.step("verify")
        trail.cluster(step, outputs["cluster_name"])
        for entry in outputs["services"].values():
            trail.service(step, outputs["cluster_name"], entry["service_name"])
            trail.task_family(step, entry["task_definition_arn"])
            trail.refer(step, f"target group {entry['target_group_arn']}", _found(
                lambda arn=entry["target_group_arn"]: shared.elbv2.describe_target_groups(TargetGroupArns=[arn])))
        alarms = shared.cloudwatch.describe_alarms(AlarmNames=outputs["health_alarm_names"])["MetricAlarms"]
        for name in outputs["health_alarm_names"]:
            trail.refer(step, f"alarm {name}", any(a["AlarmName"] == name for a in alarms))
        return real_verify(aws, outputs, **kwargs)

    deps.missing_digests, deps.lock, deps.ledger, deps.verify = missing_digests, lock, ledger, verify
    return trail, deps, runner


def test_first_deploy_from_an_empty_account_refers_only_to_what_exists(clients, tree, tmp_path, stack_builder):
    config = stack_config(migrate=True)
    # An empty account after bootstrap: the delivery tables and nothing else.
    assert clients.ecr.describe_repositories()["repositories"] == []
    assert clients.ecs.list_clusters()["clusterArns"] == []
    assert {LOCK_TABLE, LEDGER_TABLE} <= set(clients.dynamodb.list_tables()["TableNames"])
    trail, deps, runner = first_deploy_world(clients, tree, stack_builder, config)
    manifest_path = tmp_path / "out" / "manifest.json"

    built = build.run(STACK, push=True, manifest_path=manifest_path, deps=deps)
    outcome = deploy.deploy(STACK, manifest_path=manifest_path, deps=deps)

    assert trail.missing() == []
    assert trail.steps == [
        "pulumi up --target <repositories>",
        "docker buildx build --push products", "docker buildx build --push orders",
        "preflight: digests in ECR", "release ledger", "stack lock",
        "pulumi config set refarch:images",
        "pulumi up",  # the first deploy: the full up first (no migration task definition yet) ...
        "ecs.run_task refarch-test-products-migrate",  # ... then the migration, before verification
        "verify",
    ]
    # Every kind of thing the sequence names was looked up, each where it is first needed.
    kinds = {(step, what.split(" ")[0] + " " + what.split(" ")[1]) for step, what, _ in trail.refs}
    assert {("docker buildx build --push products", "ecr repository"), ("preflight: digests in ECR", "ecr image"),
            ("pulumi up", "ecr image"), ("pulumi up", "ecr repository"), ("stack lock", "dynamodb table"),
            ("release ledger", "dynamodb table"), ("ecs.run_task refarch-test-products-migrate", "ecs cluster"),
            ("ecs.run_task refarch-test-products-migrate", "ecs task"),
            ("ecs.run_task refarch-test-products-migrate", "security group"),
            ("verify", "ecs service"), ("verify", "target group")} <= kinds
    # The targeted up created exactly the two repositories the program declares, neither there before.
    assert trail.created == [("pulumi up --target <repositories>", f"ecr repository refarch-test/{name}", False)
                             for name in ("orders", "products")]
    # The manifest's digests are the ones moto's ECR holds, and the release runs exactly them.
    assert built is not None and built.images == {url.rsplit("/", 1)[1]: f"{url}@{digest}"
                                                  for url, digest in runner.pushed.items()}
    assert len(set(runner.pushed.values())) == 2
    migrate = clients.ecs.describe_task_definition(taskDefinition="refarch-test-products-migrate")["taskDefinition"]
    assert migrate["containerDefinitions"][0]["image"] == built.images["products"]
    release = outcome.release if outcome else None
    assert release is not None and release == deps.ledger(clients, STACK).current()
    assert (release.kind, release.outcome, release.verified, release.images, release.git_sha) == (
        "deploy", "succeeded", True, built.images, SHA)
    running = {s["serviceName"]: s["taskDefinition"] for s in clients.ecs.describe_services(
        cluster="refarch-test", services=["refarch-test-products", "refarch-test-orders"])["services"]}
    assert release.task_definitions == {"products": running["refarch-test-products"],
                                        "orders": running["refarch-test-orders"]}
    assert StackLock(clients, STACK, "me").holder() is None
    pulumi = deps.pulumi()
    targeted = next(call[1] for call in pulumi.calls if call[0] == "up" and call[1])
    assert sorted(targeted) == sorted(pulumi.repositories) and len(targeted) == 2
    assert pulumi.changes() == [("up", targeted), ("set_images", built.images), ("up", None),
                                ("run_task", "refarch-test-products-migrate")]
