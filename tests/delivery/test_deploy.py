"""The deploy path end to end: the Pulumi adapter is a recording fake; the ledger, lock, ECR check and
verification are the real modules against the moto server (and a local HTTP gateway)."""

from __future__ import annotations

import json

import pytest

from infra.config import ConfigError
from ops.delivery import deploy
from ops.delivery.lock import StackLock
from ops.errors import OpsError
from tests.delivery.flow_fakes import STACK, FakeGit, RecordingStack, World, make_deps, stack_config

MIGRATE_URN = "urn:pulumi:test::refarch::aws:ecs/taskDefinition:TaskDefinition::products-migrate"


@pytest.fixture
def world(clients, deployed_stack, gateway) -> World:
    return World(clients, deployed_stack, gateway)


def good_release(world: World):
    """A first deploy of the images already running: the known-good release to go back to."""
    world.deploy(world.deployed.images)
    world.stack.calls.clear()
    return world.ledger().current()


# --- the good path ---------------------------------------------------------------------------

def test_good_deploy_exact_adapter_sequence_with_migration(clients, deployed_stack, gateway):
    world = World(clients, deployed_stack, gateway, config=stack_config(migrate=True))
    first = good_release(world)
    new = world.push_images()

    world.deploy(new)

    assert world.stack.calls == [
        ("select", STACK),
        ("set_images", new),
        ("outputs",),
        ("up", [MIGRATE_URN]),  # only the migration task definition gets the new image
        ("outputs",),
        ("run_task", "refarch-test-products-migrate"),  # the family: its newest revision
        ("up", None),  # services switch only after the migration exited 0
        ("outputs",),
    ]
    run = world.ecs.run_calls[0]
    assert run["launchType"] == "FARGATE"
    assert run["networkConfiguration"] == {"awsvpcConfiguration": {
        "subnets": deployed_stack.outputs["private_subnet_ids"],
        "securityGroups": [deployed_stack.outputs["services"]["products"]["security_group_id"]],
        "assignPublicIp": "DISABLED"}}
    release = world.ledger().current()
    assert (release.outcome, release.verified, release.kind, release.images, release.replaces) == (
        "succeeded", True, "deploy", new, first.id)
    assert StackLock(clients, STACK, "me").holder() is None


def test_first_deploy_runs_the_full_up_before_the_migration(clients, deployed_stack, gateway, capsys):
    for svc in deployed_stack.outputs["services"].values():
        svc["migration_task_definition_urn"] = None  # nothing deployed yet
    world = World(clients, deployed_stack, gateway, config=stack_config(migrate=True))

    world.deploy(deployed_stack.images)

    assert world.stack.changes() == [("set_images", deployed_stack.images), ("up", None),
                                     ("run_task", "refarch-test-products-migrate")]
    assert "first deploy: no migration task definition exists yet" in capsys.readouterr().err


# --- migrations ------------------------------------------------------------------------------

def test_failed_migration_stops_with_the_log_tail_and_no_full_up(clients, deployed_stack, gateway):
    world = World(clients, deployed_stack, gateway, config=stack_config(migrate=True))
    first = good_release(world)
    world.migration.update(exit_code=3, log_lines=25)
    new = world.push_images()

    with pytest.raises(OpsError) as failure:
        world.deploy(new)

    message = failure.value.message
    assert message.startswith("migration of products failed (products exit 3; task ")
    assert "the running services are untouched (only the migration task definition changed)" in message
    assert "migration line 24" in message and "migration line 5" in message
    assert "migration line 4\n" not in message + "\n"  # the last 20 of 25 lines only
    assert world.full_ups() == 0
    # The stack config goes back to what the services still run.
    assert world.stack.changes() == [("set_images", new), ("up", [MIGRATE_URN]),
                                     ("run_task", "refarch-test-products-migrate"), ("set_images", first.images)]
    failed = world.ledger().history(limit=1)[0]
    assert (failed.outcome, failed.verified) == ("failed", False)
    assert failed.notes[-1].startswith("migration of products failed")


# --- verification failures -> automatic rollback ---------------------------------------------

class FlakyTargets:
    """TargetHealth seam (moto always answers healthy): unhealthy while `bad` is set."""

    def __init__(self):
        self.bad = False

    def describe(self, target_group_arn):
        from ops.delivery.verify import TargetState

        state = "unhealthy" if self.bad else "healthy"
        return [TargetState("10.0.0.10", 8080, state, "Health checks failed" if self.bad else "")]


def break_during_first_up(world: World, breaks, heals):
    """The new release is broken: `breaks()` at its up, `heals()` at the rollback's up."""
    ups = []

    def hook(target_urns):
        if target_urns is None:
            ups.append(1)
            (breaks if len(ups) == 1 else heals)()

    world.stack.on_up.append(hook)


@pytest.mark.parametrize("fault", ["alarm", "unhealthy target", "smoke 500"])
def test_failed_verification_rolls_back_to_the_previous_digests(clients, deployed_stack, gateway, fault):
    targets = FlakyTargets()
    world = World(clients, deployed_stack, gateway, target_health=targets)
    first = good_release(world)
    new = world.push_images()
    alarm = deployed_stack.outputs["services"]["products"]["health_alarm_names"][0]
    faults = {
        "alarm": (lambda: clients.cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx"),
                  lambda: clients.cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="ok")),
        "unhealthy target": (lambda: setattr(targets, "bad", True), lambda: setattr(targets, "bad", False)),
        "smoke 500": (lambda: gateway.set("/products/", 500), lambda: gateway.set("/products/", 200)),
    }
    break_during_first_up(world, *faults[fault])

    with pytest.raises(OpsError) as failure:
        world.deploy(new)

    assert world.stack.changes() == [("set_images", new), ("up", None), ("set_images", first.images), ("up", None)]
    rollback, failed = world.ledger().history(limit=2)
    assert (failed.outcome, failed.verified, failed.images) == ("failed", False, new)
    assert any(note.startswith("verification failed: ") for note in failed.notes)
    assert (rollback.kind, rollback.outcome, rollback.verified) == ("rollback", "succeeded", True)
    assert (rollback.images, rollback.replaces) == (first.images, failed.id)
    assert world.ledger().current().id == rollback.id
    assert f"rolled back to release {first.id}" in failure.value.message
    assert StackLock(clients, STACK, "me").holder() is None


def test_failed_verification_without_a_good_release_is_recorded_and_refused(world):
    world.gateway.set("/orders/", 503)
    with pytest.raises(OpsError) as failure:
        world.deploy(world.deployed.images)
    assert "there is no earlier verified release to roll back to" in failure.value.message
    assert world.stack.changes() == [("set_images", world.deployed.images), ("up", None)]  # no rollback attempt
    [only] = world.ledger().history()
    assert (only.outcome, only.verified) == ("failed", False)


def test_no_rollback_leaves_the_failed_release_in_place(world):
    good_release(world)
    world.stack.on_up.append(lambda urns: world.gateway.set("/products/", 500))
    with pytest.raises(OpsError, match="automatic rollback is off"):
        world.deploy(world.push_images(), rollback_on_failure=False)
    assert world.full_ups() == 1
    assert [r.kind for r in world.ledger().history()] == ["deploy", "deploy"]


# --- refusals before anything changes --------------------------------------------------------

def assert_nothing_changed(world: World):
    assert world.stack.calls == []
    assert world.ledger().history() == []
    assert StackLock(world.clients, STACK, "me").holder() is None


def test_digest_missing_in_ecr_is_refused_before_any_change(world):
    images = dict(world.deployed.images)
    images["orders"] = images["orders"].split("@")[0] + "@sha256:" + "0" * 64
    with pytest.raises(OpsError) as failure:
        world.deploy(images)
    assert failure.value.message.startswith(f"not in ECR, refusing to deploy {STACK}: orders: ")
    assert_nothing_changed(world)


def test_concurrent_deploy_is_refused(world):
    StackLock(world.clients, STACK, "alice@ci").acquire()
    with pytest.raises(OpsError, match=f"stack {STACK} is locked by alice@ci since "):
        world.deploy(world.deployed.images)
    assert world.stack.changes() == []
    assert world.ledger().history() == []


PINNED = {name: f"123456789012.dkr.ecr.us-east-1.amazonaws.com/refarch-test-{name}@sha256:{'1' * 64}"
          for name in ("products", "orders")}


def offline_deps(git: FakeGit, stack: RecordingStack, **config):
    """Deps whose every cloud client fails the test: these refusals must come before any AWS call."""
    deps = make_deps(stack=stack, git=git, configs={STACK: stack_config(**config)})

    def no_cloud(region):
        raise AssertionError("a local preflight refusal must not reach AWS")

    deps.clients = no_cloud
    return deps


@pytest.mark.parametrize("git, message", [
    (FakeGit(dirty=["infra/aws/services.py"]), r"uncommitted changes \(infra/aws/services.py\)"),
    (FakeGit(branch="feature/x"), "protected: deploys only from main \\(this checkout is on feature/x\\)"),
    (FakeGit(branch=None), "on a detached HEAD"),
])
def test_dirty_tree_and_wrong_branch_are_refused_for_a_protected_stack(git, message):
    stack = RecordingStack()
    with pytest.raises(OpsError, match=message):
        deploy.run(deploy.Request(stack=STACK, images=PINNED), offline_deps(git, stack, protected=True))
    assert stack.calls == []


def test_any_branch_deploys_an_unprotected_stack_but_never_a_dirty_tree():
    stack = RecordingStack()
    deps = offline_deps(FakeGit(branch="feature/x"), stack, protected=False)
    with pytest.raises(AssertionError, match="must not reach AWS"):  # got past the local preflight
        deploy.run(deploy.Request(stack=STACK, images=PINNED), deps)
    deps.git = FakeGit(dirty=["a.txt"])
    with pytest.raises(OpsError, match="uncommitted changes"):
        deploy.run(deploy.Request(stack=STACK, images=PINNED), deps)


def test_an_image_for_every_built_service():
    stack = RecordingStack()
    with pytest.raises(OpsError, match="no image digest for orders in manifest m.json"):
        deploy.run(deploy.Request(stack=STACK, images={"products": PINNED["products"]}, source="manifest m.json"),
                   offline_deps(FakeGit(), stack))
    assert stack.calls == []


def test_images_must_be_pinned_by_digest():
    with pytest.raises(ConfigError, match="refarch:images.orders: 'repo:latest' is not pinned by digest"):
        deploy.run(deploy.Request(stack=STACK, images={**PINNED, "orders": "repo:latest"}),
                   offline_deps(FakeGit(), RecordingStack()))


def test_stack_file_changed_only_in_its_images_is_not_dirty(tmp_path):
    committed = "config:\n  aws:region: us-east-1\n  refarch:delivery:\n    protected: false\n"
    (tmp_path / "stacks").mkdir()
    path = tmp_path / "stacks" / "Pulumi.dev.yaml"
    path.write_text(committed + "  refarch:images: '{\"products\": \"r@sha256:1\"}'\n")
    git = FakeGit(dirty=["stacks/Pulumi.dev.yaml"], root=tmp_path, committed={"stacks/Pulumi.dev.yaml": committed})
    assert deploy.blocking_changes(git, "dev") == []
    path.write_text(committed.replace("false", "true"))
    assert deploy.blocking_changes(git, "dev") == ["stacks/Pulumi.dev.yaml"]


# --- crashes ---------------------------------------------------------------------------------

def test_interrupted_deploy_is_reported_and_marked_by_the_next_run(world, capsys):
    stuck = world.ledger().begin("dead" * 10, world.deployed.images, "h", "deploy")  # a run killed mid-way
    world.deploy(world.deployed.images)
    assert f"release {stuck.id} (deploy by " in capsys.readouterr().err
    marked = world.ledger().get(stuck.id)
    assert marked.outcome == "failed" and marked.notes[-1].startswith("interrupted")


def test_up_failure_records_failed_and_frees_the_stack(world):
    world.stack.up_error = "pulumi failed on stack test: aws:ecs:Service products: timeout"
    with pytest.raises(OpsError, match="timeout"):
        world.deploy(world.deployed.images)
    [release] = world.ledger().history()
    assert release.outcome == "failed" and release.notes == ["images from test",
                                                             "pulumi failed on stack test: aws:ecs:Service products: "
                                                             "timeout"]
    assert StackLock(world.clients, STACK, "me").holder() is None


# --- dry run, manifest -----------------------------------------------------------------------

def test_dry_run_prints_the_plan_and_changes_nothing(world, capsys):
    deploy.run(world.request(world.deployed.images), world.deps, dry_run=True)
    err = capsys.readouterr().err
    assert f"would: pulumi up --stack {STACK}" in err
    assert f"would: pulumi config set refarch:images '{json.dumps(world.deployed.images, sort_keys=True)}'" in err
    assert_nothing_changed(world)


def test_deploy_reads_the_build_manifest(world, tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"git_sha": "b" * 40, "created_at": "2026-11-27T18:30:00Z",
                                "images": world.deployed.images}))
    deploy.deploy(STACK, manifest_path=path, deps=world.deps)
    release = world.ledger().current()
    assert release.images == world.deployed.images
    assert f"images built from {'b' * 12}, infrastructure code at c0ffee000000" in release.notes


def test_a_stack_pulumi_cannot_select_is_refused_before_lock_and_ledger(world):
    class NoCli(type(world.stack)):
        def select(self, stack):
            raise OpsError("the Pulumi CLI is not installed: https://www.pulumi.com/docs/install/")

    world.deps.pulumi = NoCli
    with pytest.raises(OpsError, match="^the Pulumi CLI is not installed"):
        world.deploy(world.deployed.images)
    assert world.ledger().history() == []
    assert StackLock(world.clients, STACK, "me").holder() is None


def test_verify_task_checks_the_live_stack(world, capsys):
    assert deploy.verify_stack(STACK, deps=world.deps).ok
    assert world.stack.calls == [("select", STACK), ("outputs",)]
    world.gateway.set("/orders/", 502)
    with pytest.raises(OpsError, match=f"{STACK} failed verification: smoke: orders: GET .*/orders/ -> 502"):
        deploy.verify_stack(STACK, deps=world.deps)
    assert "FAIL smoke: orders" in capsys.readouterr().err


def test_failure_with_unchanged_digests_does_not_pretend_to_roll_back(world):
    first = good_release(world)
    world.stack.on_up.append(lambda urns: world.gateway.set("/products/", 500))  # an infra change broke it
    with pytest.raises(OpsError, match=f"with the digests of the last good release {first.id}: the cause is the "
                                       "infrastructure change"):
        world.deploy(first.images)
    assert world.full_ups() == 1
    assert [r.outcome for r in world.ledger().history()] == ["failed", "succeeded"]


def test_a_deploy_publishes_the_web_client_to_the_stacks_bucket(clients, deployed_stack, gateway):
    """Against moto's S3: the page and its hashed assets are in the bucket the stack exports."""
    bucket = "refarch-test-web-client"
    clients.s3.create_bucket(Bucket=bucket)
    deployed_stack.outputs["web_client_bucket"] = bucket
    world = World(clients, deployed_stack, gateway)
    world.deploy(world.deployed.images)
    keys = {o["Key"] for o in clients.s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert "index.html" in keys and len(keys) > 1
    index = clients.s3.get_object(Bucket=bucket, Key="index.html")
    assert index["CacheControl"] == "no-cache"
    page = index["Body"].read().decode()
    assert all(key in page for key in keys - {"index.html"}), (keys, page[:400])
    assert world.ledger().current().verified
