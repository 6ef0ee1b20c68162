"""Rollback: the target it picks, the deploy path it reuses, and break-glass when Pulumi cannot run."""

from __future__ import annotations

import pytest

from ops.delivery import rollback
from ops.errors import OpsError
from tests.delivery.flow_fakes import STACK, World


@pytest.fixture
def world(clients, deployed_stack, gateway) -> World:
    return World(clients, deployed_stack, gateway)


def two_good_releases(world: World):
    world.deploy(world.deployed.images)
    world.deploy(world.push_images())
    world.stack.calls.clear()
    newer, older = world.ledger().history(limit=2)
    return older, newer


def test_rollback_redeploys_the_last_good_digests_through_the_deploy_path(world):
    older, newer = two_good_releases(world)

    rollback.run(STACK, deps=world.deps)

    # Same path as deploy (set images, up, verify), without migrations: the schema stays expanded.
    assert world.stack.calls == [("select", STACK), ("set_images", older.images), ("up", None), ("outputs",)]
    back, was = world.ledger().history(limit=2)
    assert (back.kind, back.outcome, back.verified, back.images, back.replaces) == (
        "rollback", "succeeded", True, older.images, newer.id)
    assert was.id == newer.id and was.outcome == "rolled back"
    assert was.notes[-1] == f"rolled back by {back.id}"


def test_a_second_rollback_does_not_roll_forward(world):
    two_good_releases(world)
    rollback.run(STACK, deps=world.deps)
    world.stack.calls.clear()
    before = world.ledger().history()
    # The rolled-back release is no longer good, the older one runs the current digests already.
    with pytest.raises(OpsError, match="nothing to roll back to \\(nothing changed\\)"):
        rollback.run(STACK, deps=world.deps)
    assert world.stack.calls == []
    assert world.ledger().history() == before


def test_no_good_release_is_a_clear_refusal_and_nothing_changes(world):
    with pytest.raises(OpsError, match=f"stack {STACK} has no succeeded release: nothing to roll back from"):
        rollback.run(STACK, deps=world.deps)
    world.deploy(world.deployed.images)
    world.stack.calls.clear()
    with pytest.raises(OpsError, match="nothing to roll back to"):
        rollback.run(STACK, deps=world.deps)
    assert world.stack.calls == []
    assert len(world.ledger().history()) == 1


def test_rollback_to_a_named_release(world):
    older, newer = two_good_releases(world)
    world.deploy(world.push_images())
    world.stack.calls.clear()
    rollback.run(STACK, to=older.id, deps=world.deps)
    assert ("set_images", older.images) in world.stack.calls
    assert world.ledger().current().images == older.images


def test_rollback_to_a_failed_release_is_refused(world):
    world.gateway.set("/products/", 500)
    with pytest.raises(OpsError):
        world.deploy(world.deployed.images)
    [failed] = world.ledger().history()
    world.stack.calls.clear()
    with pytest.raises(OpsError, match=f"release {failed.id} of {STACK} is failed, never verified: refusing"):
        rollback.run(STACK, to=failed.id, deps=world.deps)
    assert world.stack.calls == []


def test_break_glass_moves_services_back_without_pulumi_and_records_the_drift(world, clients, deployed_stack):
    world.deploy(world.deployed.images)
    world.stack.calls.clear()

    release = rollback.run(STACK, break_glass=True, deps=world.deps)

    assert world.stack.calls == []  # Pulumi never called
    names = [deployed_stack.service_name(s) for s in ("orders", "products")]
    running = clients.ecs.describe_services(cluster=deployed_stack.cluster, services=names)["services"]
    assert sorted(s["taskDefinition"] for s in running) == sorted(
        deployed_stack.task_definitions[s][0] for s in ("orders", "products"))  # revision 1 each
    recorded = world.ledger().get(release.id)
    assert (recorded.kind, recorded.outcome, recorded.verified) == ("break-glass", "succeeded", False)
    drift = recorded.notes[0]
    assert "the stack has drifted from its Pulumi state" in drift
    assert f"`invoke rollback --stack {STACK} --to <release>`" in drift and "`pulumi refresh" in drift
    assert any("moved from refarch-test-products:2 to refarch-test-products:1" in n for n in recorded.notes)


def test_rollback_dry_run_names_the_target_and_changes_nothing(world, capsys):
    older, newer = two_good_releases(world)
    before = world.ledger().history()
    rollback.run(STACK, dry_run=True, deps=world.deps)
    err = capsys.readouterr().err
    assert f"rolling {STACK} back to release {older.id} (current: {newer.id})" in err
    assert "would: pulumi up --stack test" in err
    assert world.stack.calls == [] and world.ledger().history() == before


def test_break_glass_moves_only_the_services_whose_task_definition_changed(world, clients, deployed_stack):
    revisions = deployed_stack.task_definitions
    ledger = world.ledger()
    good = ledger.begin("a" * 40, world.deployed.images, "h", "deploy")
    ledger.finish(good.id, "succeeded", verified=True,
                  task_definitions={"products": revisions["products"][0], "orders": revisions["orders"][-1]})
    current = ledger.begin("b" * 40, world.deployed.images, "h", "deploy")
    ledger.finish(current.id, "succeeded", verified=True,
                  task_definitions={"products": revisions["products"][-1], "orders": revisions["orders"][-1]})

    release = rollback.run(STACK, break_glass=True, deps=world.deps)

    names = {s: deployed_stack.service_name(s) for s in ("orders", "products")}
    running = {s["serviceName"]: s["taskDefinition"] for s in clients.ecs.describe_services(
        cluster=deployed_stack.cluster, services=list(names.values()))["services"]}
    assert running == {names["products"]: revisions["products"][0], names["orders"]: revisions["orders"][-1]}
    recorded = world.ledger().get(release.id)
    moved = [n for n in recorded.notes if " moved from " in n]
    assert moved == [f"break-glass: ECS service {names['products']} moved from refarch-test-products:2 "
                     f"to refarch-test-products:1"]
    assert recorded.notes[-1].startswith("now running: ")  # the images after it
    assert f"ECS services {names['products']} of cluster refarch-test were pointed at the task definitions of " \
           f"{good.id}" in recorded.notes[0]


def test_a_release_whose_commit_is_not_here_is_refused_and_nothing_changes(world):
    ledger = world.ledger()
    elsewhere = ledger.begin("e" * 40, world.deployed.images, "h", "deploy")  # made from another commit
    ledger.finish(elsewhere.id, "succeeded", verified=True)
    two_good_releases(world)
    before = world.ledger().history()
    with pytest.raises(OpsError, match=f"release {elsewhere.id} was made from commit eeeeeeeeeeee, which this "
                                       f"clone does not have"):
        rollback.run(STACK, to=elsewhere.id, deps=world.deps)
    assert world.stack.calls == [] and world.ledger().history() == before
