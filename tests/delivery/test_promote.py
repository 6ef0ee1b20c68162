"""Promote: only a verified release moves, by digest, into the target stack's repositories."""

from __future__ import annotations

import copy

import pytest

from ops.delivery import promote
from ops.delivery.aws import AssumedClients
from ops.delivery.ledger import Ledger
from ops.errors import OpsError
from tests.delivery.conftest import create_delivery_tables
from tests.delivery.flow_fakes import STACK, DockerRunner, RecordingStack, World, make_deps, stack_config


class Stacks:
    """deps.pulumi(): one recording stack per stack name."""

    def __init__(self, **stacks):
        self.stacks = stacks

    def select(self, name):
        return self.stacks[name].select(name)


class CopyingRunner(DockerRunner):
    """`imagetools create` really copies the manifest between moto's repositories."""

    def __init__(self, clients):
        super().__init__()
        self.ecr = clients.ecr

    def __call__(self, argv, *, input=None, capture=False):
        if argv[:4] == ["docker", "buildx", "imagetools", "create"]:
            dst, src = argv[5], argv[6]
            src_repo, digest = src.split("/", 1)[1].split("@")
            dst_repo, tag = dst.split("/", 1)[1].split(":")
            image = self.ecr.batch_get_image(repositoryName=src_repo, imageIds=[{"imageDigest": digest}])["images"][0]
            self.ecr.put_image(repositoryName=dst_repo, imageManifest=image["imageManifest"], imageTag=tag)
        return super().__call__(argv, input=input, capture=capture)


@pytest.fixture
def setup(clients, deployed_stack, gateway):
    world = World(clients, deployed_stack, gateway)  # the source stack, "test"
    prod_outputs = copy.deepcopy(deployed_stack.outputs)
    for name, entry in prod_outputs["services"].items():
        entry["repository_url"] = clients.ecr.create_repository(
            repositoryName=f"refarch-prod/{name}")["repository"]["repositoryUri"]
    prod = RecordingStack(outputs=prod_outputs)
    runner = CopyingRunner(clients)
    deps = make_deps(stack=Stacks(**{STACK: world.stack, "prod": prod}), runner=runner,
                     configs={STACK: world.config, "prod": stack_config(protected=True, environment="prod", base="prod")})
    deps.clients = world.deps.clients
    return world, prod, runner, deps, prod_outputs


def test_promote_copies_by_digest_and_deploys_exactly_those_digests(setup, clients):
    world, prod, runner, deps, prod_outputs = setup
    world.deploy(world.deployed.images)
    source = world.ledger().current()

    promote.run(STACK, "prod", deps=deps)

    copies = [argv for argv in runner.argvs if argv[:4] == ["docker", "buildx", "imagetools", "create"]]
    assert copies == [["docker", "buildx", "imagetools", "create", "--tag",
                       f"{prod_outputs['services'][name]['repository_url']}:{STACK}-{source.id}", source.images[name]]
                      for name in ("products", "orders")]
    expected = {name: f"{prod_outputs['services'][name]['repository_url']}@{source.images[name].split('@')[1]}"
                for name in ("products", "orders")}
    assert prod.changes() == [("set_images", expected), ("up", None)]
    release = Ledger(clients, "prod").current()
    assert (release.kind, release.verified, release.images) == ("promote", True, expected)
    assert f"promoted from {STACK} release {source.id}" in release.notes[0]


def test_promote_of_a_failed_release_is_refused(setup, clients):
    world, prod, runner, deps, _ = setup
    world.deploy(world.deployed.images)
    world.gateway.set("/orders/", 500)
    with pytest.raises(OpsError):
        world.deploy(world.push_images(), rollback_on_failure=False)
    with pytest.raises(OpsError, match=f"the newest release of {STACK}, .* \\(deploy\\), is failed: only a verified"):
        promote.run(STACK, "prod", deps=deps)
    assert prod.calls == [] and runner.calls == []
    assert Ledger(clients, "prod").history() == []


def test_promote_of_an_unverified_release_is_refused(setup, clients):
    world, prod, runner, deps, _ = setup
    ledger = world.ledger()
    release = ledger.begin("a" * 40, world.deployed.images, "h", "deploy")
    ledger.finish(release.id, "succeeded", verified=False)
    with pytest.raises(OpsError, match="is succeeded but was never verified"):
        promote.run(STACK, "prod", deps=deps)
    assert prod.calls == [] and runner.calls == []


def test_promote_without_releases_is_refused(setup):
    _, prod, runner, deps, _ = setup
    with pytest.raises(OpsError, match=f"{STACK} has no releases: nothing to promote"):
        promote.run(STACK, "prod", deps=deps)
    assert prod.calls == [] and runner.calls == []


def test_promote_a_named_verified_release_past_a_newer_failed_one(setup, clients, capsys):
    world, prod, runner, deps, prod_outputs = setup
    world.deploy(world.deployed.images)
    good = world.ledger().current()
    world.gateway.set("/orders/", 500)
    with pytest.raises(OpsError):
        world.deploy(world.push_images(), rollback_on_failure=False)
    world.gateway.set("/orders/", 200)

    promote.run(STACK, "prod", release_id=good.id, deps=deps)
    assert f"promoting {STACK} release {good.id} (git {good.git_sha[:12]}) to prod" in capsys.readouterr().err
    expected = {name: f"{prod_outputs['services'][name]['repository_url']}@{good.images[name].split('@')[1]}"
                for name in ("products", "orders")}
    assert Ledger(clients, "prod").current().images == expected


def test_promote_of_a_named_failed_release_is_refused(setup, clients):
    world, prod, runner, deps, _ = setup
    world.deploy(world.deployed.images)
    world.gateway.set("/orders/", 500)
    with pytest.raises(OpsError):
        world.deploy(world.push_images(), rollback_on_failure=False)
    failed = world.ledger().history(limit=1)[0]
    with pytest.raises(OpsError, match=f"release {failed.id} of {STACK} \\(deploy\\) is failed: only a verified"):
        promote.run(STACK, "prod", release_id=failed.id, deps=deps)
    assert prod.calls == [] and runner.calls == []


def test_promote_reads_the_source_ledger_with_a_role_in_the_source_account(setup, clients):
    world, prod, runner, deps, _ = setup
    world.deploy(world.deployed.images)  # a release in this (the target's) account: not the one to promote
    role = "arn:aws:iam::111111111111:role/refarch-promotion-source-test"
    source = AssumedClients(clients.region, role, via=clients)
    assert source.sts.get_caller_identity()["Account"] == "111111111111"  # moto keeps accounts apart
    create_delivery_tables(source.dynamodb)
    ledger = Ledger(source, STACK)
    there = ledger.begin("d" * 40, world.deployed.images, "h", "deploy")
    ledger.finish(there.id, "succeeded", verified=True)

    promote.run(STACK, "prod", source_role=role, deps=deps)

    release = Ledger(clients, "prod").current()
    assert f"promoted from {STACK} release {there.id} (git dddddddddddd)" in release.notes[0]
