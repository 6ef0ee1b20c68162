"""Recording stand-ins for the two adapters (Pulumi, Docker) and git, shared by the flow tests.

Only the adapters are faked: the ledger, lock, verification, ECR check and break-glass in the
flow tests are the real modules against the moto server of tests/delivery/conftest.py.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from pulumi.automation import events as ev

from ops.delivery.docker_adapter import Docker, Result
from ops.delivery.pulumi_adapter import RefreshOutcome
from ops.errors import OpsError
from tests.delivery.ecs_records import EcsRecords

ROOT = Path(__file__).resolve().parents[2]

# A committer for test repositories, whatever the machine's git config says.
GIT_IDENTITY = ("-c", "user.email=t@example.com", "-c", "user.name=t")


def git(repo: Path, *args: str) -> str:
    """Run git in a test repository; its stripped standard output."""
    return subprocess.run(["git", *GIT_IDENTITY, *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()
DIGEST = "sha256:" + "ab" * 32


def step_event(op: str, type_: str, name: str, *, done: bool = False, diffs: list[str] | None = None,
               stack: str = "dev") -> ev.EngineEvent:
    """An engine event as the Automation API hands it to on_event."""
    meta = ev.StepEventMetadata(op=ev.OpType(op), urn=f"urn:pulumi:{stack}::refarch::{type_}::{name}",
                                type=type_, provider="", diffs=diffs)
    if done:
        return ev.EngineEvent(sequence=0, timestamp=0, res_outputs_event=ev.ResOutputsEvent(metadata=meta))
    return ev.EngineEvent(sequence=0, timestamp=0, resource_pre_event=ev.ResourcePreEvent(metadata=meta))


class RecordingStack:
    """The PulumiStack adapter's methods; records each call in order, changes nothing."""

    def __init__(self, outputs: dict[str, Any] | None = None, *, resources: list[dict[str, Any]] | None = None,
                 events: tuple[Any, ...] | list[Any] = (), up_error: str | None = None, refresh: RefreshOutcome | None = None):
        self.calls: list[tuple] = []
        self.outputs_value = outputs or {}
        self.resources_value = resources or []
        self.events = list(events)
        self.up_error = up_error
        self.refresh_value = refresh or RefreshOutcome({"same": 3})
        self.on_up: list[Any] = []  # callables run at each up (a test's way to change the world)

    def select(self, stack: str) -> RecordingStack:
        self.calls.append(("select", stack))
        return self

    def set_config(self, key: str, value: str, path: bool = False) -> None:
        self.calls.append(("set_config", key, value, path))

    def set_images(self, images: dict[str, str]) -> None:
        self.calls.append(("set_images", dict(images)))

    def preview(self, on_event=None) -> None:
        self.calls.append(("preview",))
        for event in self.events:
            on_event(event)

    def up(self, target_urns: list[str] | None = None, on_event=None) -> None:
        self.calls.append(("up", list(target_urns) if target_urns else None))
        for hook in self.on_up:
            hook(target_urns)
        if self.up_error:
            raise OpsError(self.up_error)

    def refresh(self, preview_only: bool = True) -> RefreshOutcome:
        self.calls.append(("refresh", preview_only))
        return self.refresh_value

    def destroy(self, on_event=None) -> None:
        self.calls.append(("destroy",))

    def outputs(self) -> dict[str, Any]:
        self.calls.append(("outputs",))
        return self.outputs_value

    def resources(self) -> list[dict[str, Any]]:
        self.calls.append(("resources",))
        return self.resources_value

    def changes(self) -> list[tuple]:
        """The calls that change something (select/outputs/resources only read)."""
        return [c for c in self.calls if c[0] not in ("select", "outputs", "resources")]


class FakeGit:
    def __init__(self, sha: str = "c0ffee" + "0" * 34, dirty: list[str] | None = None, branch: str | None = "main",
                 remote: str | None = "https://github.com/acme/refarch", root: Path = ROOT,
                 committed: dict[str, str] | None = None):
        self._sha, self._dirty, self._branch, self._remote = sha, list(dirty or []), branch, remote
        self.root = root
        self.committed = committed or {}

    def sha(self) -> str:
        return self._sha

    def commit_time(self) -> int:
        return 1795804200  # 2026-11-27T18:30:00Z

    def has_commit(self, sha: str) -> bool:
        return sha == self._sha  # a shallow clone: only its own commit

    def dirty_paths(self) -> list[str]:
        return list(self._dirty)

    def branch(self) -> str | None:
        return self._branch

    def remote_url(self) -> str | None:
        return self._remote

    def show(self, path: str, rev: str = "HEAD") -> str | None:
        return self.committed.get(path)


class DockerRunner:
    """A docker stand-in for the real Docker adapter: records argv, writes buildx's metadata file.

    With `ecr` (a boto3 ECR client on moto) a `buildx build --push` really pushes: the image goes
    into the repository its `--tag` names (which must exist, as in ECR) and the metadata file
    carries the digest ECR gave it; `on_push(repository, tag)` runs just before.
    """

    def __init__(self, digest: str = DIGEST, returncode: int = 0, stderr: str = "", ecr: Any = None,
                 on_push: Any = None):
        self.calls: list[tuple[list[str], str | None]] = []
        self.envs: list[dict[str, str] | None] = []
        self.digest, self.returncode, self.stderr = digest, returncode, stderr
        self.ecr, self.on_push = ecr, on_push
        self.pushed: dict[str, str] = {}  # repository URL -> digest ECR holds

    def __call__(self, argv: list[str], *, input: str | None = None, capture: bool = False,
                 env: dict[str, str] | None = None) -> Result:
        self.calls.append((list(argv), input))
        self.envs.append(env)
        if "--metadata-file" in argv:
            digest = self._push(argv) if self.ecr is not None and "--push" in argv else self.digest
            data = {"containerimage.digest": digest} if digest else {}
            Path(argv[argv.index("--metadata-file") + 1]).write_text(json.dumps(data))
        if argv[:5] == ["docker", "buildx", "imagetools", "inspect", "--raw"]:
            # What a docker-container builder pushes with SBOM and provenance: an image index.
            return Result(0, json.dumps({"mediaType": "application/vnd.oci.image.index.v1+json"}), "")
        return Result(self.returncode, "", self.stderr)

    def _push(self, argv: list[str]) -> str:
        url, _, tag = argv[argv.index("--tag") + 1].rpartition(":")
        if self.on_push:
            self.on_push(url, tag)
        # ECR's put_image fails with RepositoryNotFoundException for a repository that is not there.
        pushed = self.ecr.put_image(repositoryName=url.split("/", 1)[1], imageTag=tag,
                                    imageManifest=image_manifest(f"{url}:{tag}"))
        self.pushed[url] = pushed["image"]["imageId"]["imageDigest"]
        return self.pushed[url]

    @property
    def argvs(self) -> list[list[str]]:
        return [argv for argv, _ in self.calls]


class InstalledDocker(Docker):
    """The real Docker adapter over a recording runner, on any machine (docker installed or not)."""

    def __init__(self, runner: Any, dry_run: bool = False):
        super().__init__(runner, dry_run=dry_run, driver="docker-container")

    def ensure_cli(self) -> None:  # type: ignore[override]
        return None


def make_deps(*, stack: Any = None, runner: DockerRunner | None = None, git: FakeGit | None = None,
              configs: dict[str, Any] | None = None, answers: list[str] | None = None, tty: bool = False,
              **verify_options: Any) -> Any:
    """Real AWS half (boto3 -> moto via AWS_ENDPOINT_URL), recording adapters, instant sleeps."""
    from ops import stackfile
    from ops.delivery import Deps, aws, breakglass, images, ledger, lock, verify
    stack = stack if stack is not None else RecordingStack()
    runner = runner or DockerRunner()
    replies = list(answers or [])
    return Deps(
        pulumi=lambda: stack,
        docker=lambda dry_run=False: InstalledDocker(runner, dry_run=dry_run),
        git=git or FakeGit(),
        clients=aws.clients,
        ledger=ledger.Ledger,
        lock=lock.StackLock,
        verify=verify.verify,
        missing_digests=images.missing_digests,
        rollback_services=breakglass.rollback_services,
        caller=aws.caller,
        translate_errors=aws.translate_errors,
        load_config=(lambda name: configs[name]) if configs else stackfile.load,
        # moto has no ECS service-deployment records: ecs_records stands in for them.
        verify_options={"sleep": lambda seconds: None, "poll_seconds": 1, "stable_timeout": 5,
                        "health_timeout": 5, "deployments": EcsRecords(), **verify_options},
        sleep=lambda seconds: None,
        prompt=lambda text: replies.pop(0),
        is_tty=lambda: tty,
    )


# --- a stack "test" in moto, driven through the real deploy path -------------------------------

STACK = "test"  # the conftest's deployed stack is named refarch-test-*


def image_manifest(seed: str) -> str:
    """A distinct minimal image manifest per seed: moto derives the digest from the layer digests."""
    layer = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                       "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7,
                                  "digest": layer},
                       "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 7,
                                   "digest": layer}]})


def stack_config(*, migrate: bool = False, protected: bool = False, rollback: bool = True,
                 environment: str = "dev", base: str = "dev") -> Any:
    """The `base` stack file with the conftest's two services, instant bake, our delivery settings."""
    from infra.config import parse
    from ops import stackfile

    values = stackfile.read_values(base)
    services = []
    for name in ("products", "orders"):
        svc: dict[str, Any] = {"name": name, "build": f"services/{name}", "routes": [{"path": f"/{name}/*"}]}
        if migrate and name == "products":
            svc["migrate_command"] = ["python", "-m", "products.migrate"]
        services.append(svc)
    values["refarch:services"] = services
    values["refarch:environment"] = environment
    values["refarch:delivery"] = {"protected": protected, "allowed_branches": ["main"], "bake_seconds": 0,
                                  "rollback_on_failure": rollback}
    return parse(values, STACK, f"stacks/Pulumi.{base}.yaml (test)")


class MigrationEcs:
    """The moto ECS client, except that a migration task stops at once with `exit_code` and logs
    `log_lines` lines (moto never runs or stops a task by itself); both read live from `settings`."""

    def __init__(self, real: Any, logs: Any, timeline: list[tuple], settings: dict[str, int],
                 log_group: str = "/refarch/test/products"):
        self.real, self.logs, self.timeline, self.settings = real, logs, timeline, settings
        self.log_group = log_group
        self.run_calls: list[dict[str, Any]] = []

    def run_task(self, **kwargs: Any) -> dict[str, Any]:
        self.run_calls.append(kwargs)
        self.timeline.append(("run_task", kwargs["taskDefinition"]))
        started = self.real.run_task(**kwargs)
        for task in started["tasks"]:
            self.real.stop_task(cluster=kwargs["cluster"], task=task["taskArn"], reason="Essential container exited")
            if self.settings["log_lines"]:
                self._log(task)
        return started

    def describe_tasks(self, **kwargs: Any) -> dict[str, Any]:
        found = self.real.describe_tasks(**kwargs)
        for task in found["tasks"]:
            for container in task.get("containers", []):
                container["exitCode"] = self.settings["exit_code"]
        return found

    def _log(self, task: dict[str, Any]) -> None:
        stream = f"migrate/{task['containers'][0]['name']}/{task['taskArn'].rsplit('/', 1)[-1]}"
        try:
            self.logs.create_log_group(logGroupName=self.log_group)
        except self.logs.exceptions.ResourceAlreadyExistsException:
            pass
        self.logs.create_log_stream(logGroupName=self.log_group, logStreamName=stream)
        now = int(time.time() * 1000)  # CloudWatch drops events older than 14 days
        self.logs.put_log_events(logGroupName=self.log_group, logStreamName=stream, logEvents=[
            {"timestamp": now + i, "message": f"migration line {i}"} for i in range(self.settings["log_lines"])])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class World:
    """The conftest's deployed stack, a recording Pulumi adapter over it, and the real AWS half."""

    def __init__(self, clients: Any, deployed: Any, gateway: Any, *, config: Any = None, git: FakeGit | None = None,
                 **verify_options: Any):
        from ops.delivery.aws import Clients

        self.clients, self.deployed, self.gateway = clients, deployed, gateway
        self.config = config or stack_config()
        self.stack = RecordingStack(outputs=deployed.outputs)
        self.migration = {"exit_code": 0, "log_lines": 0}
        self.deps = make_deps(stack=self.stack, git=git, configs={STACK: self.config}, **verify_options)

        # One set of clients for every flow in the test: botocore loads each service model once.
        shared = Clients(clients.region)
        self.ecs = MigrationEcs(shared.ecs, shared.logs, self.stack.calls, self.migration)
        shared.ecs = self.ecs  # type: ignore[misc]
        self.deps.clients = lambda region: shared
        self._pushed = 0
        # moto quirks for run_task with awsvpc: the ENI needs DNS hostnames on its VPC, and the
        # container definition a memory size.
        ec2 = clients.client("ec2")
        subnet = ec2.describe_subnets(SubnetIds=deployed.outputs["private_subnet_ids"][:1])["Subnets"][0]
        ec2.modify_vpc_attribute(VpcId=subnet["VpcId"], EnableDnsHostnames={"Value": True})
        self.stack.on_up.append(self._register_migration_revision)

    def _register_migration_revision(self, target_urns: Any) -> None:
        """What an up does to a migration task definition: a new revision with the set image."""
        images: dict[str, str] = next((c[1] for c in reversed(self.stack.calls) if c[0] == "set_images"), {})
        for name, entry in self.deployed.outputs["services"].items():
            arn = entry.get("migration_task_definition_arn")
            if not arn or name not in images:
                continue
            self.clients.ecs.register_task_definition(
                family=arn.rsplit("/", 1)[-1].rsplit(":", 1)[0], requiresCompatibilities=["FARGATE"],
                networkMode="awsvpc", cpu="256", memory="512",
                containerDefinitions=[{"name": name, "image": images[name], "essential": True, "memory": 512}])

    def push_images(self) -> dict[str, str]:
        """A new image per service in its ECR repository: a new release's digests."""
        self._pushed += 1
        images: dict[str, str] = {}
        for name, ref in self.deployed.images.items():
            repo = ref.split("@")[0]
            pushed = self.clients.ecr.put_image(repositoryName=repo.split("/", 1)[1],
                                                imageManifest=image_manifest(f"{name}-{self._pushed}"),
                                                imageTag=f"build-{self._pushed}")
            images[name] = f"{repo}@{pushed['image']['imageId']['imageDigest']}"
        return images

    def ledger(self, stack: str = STACK) -> Any:
        from ops.delivery.ledger import Ledger

        return Ledger(self.clients, stack)

    def request(self, images: dict[str, str], **kwargs: Any) -> Any:
        from ops.delivery.deploy import Request

        return Request(stack=STACK, images=images, source="test", **kwargs)

    def deploy(self, images: dict[str, str], **kwargs: Any) -> Any:
        from ops.delivery import deploy

        return deploy.run(self.request(images, **kwargs), self.deps)

    def full_ups(self) -> int:
        return sum(1 for call in self.stack.calls if call == ("up", None))
