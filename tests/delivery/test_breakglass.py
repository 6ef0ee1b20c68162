"""Break-glass rollback against a real moto server: ECS services really move to an older revision."""

from __future__ import annotations

import pytest

from ops.delivery.breakglass import family_revision, plan, reconcile_hint, rollback_services
from ops.errors import OpsError


def running(clients, stack, service: str) -> str:
    found = clients.ecs.describe_services(cluster=stack.cluster, services=[stack.service_name(service)])
    return found["services"][0]["taskDefinition"]


def names(stack) -> list[str]:
    return [stack.service_name(s) for s in ("products", "orders")]


def test_each_service_moves_to_its_previous_revision(deployed_stack, clients):
    stack = deployed_stack
    assert running(clients, stack, "products").endswith("refarch-test-products:2")

    notes = rollback_services(clients, stack.cluster, names(stack), timeout=2, poll_seconds=0.1)

    for service in ("products", "orders"):
        assert running(clients, stack, service) == stack.task_definitions[service][0]  # revision 1
    assert notes[:2] == [
        "break-glass: ECS service refarch-test-products moved from refarch-test-products:2 to refarch-test-products:1",
        "break-glass: ECS service refarch-test-orders moved from refarch-test-orders:2 to refarch-test-orders:1",
    ]
    assert notes[2].startswith("break-glass: services stable after")


def test_inactive_revisions_are_skipped(deployed_stack, clients):
    stack = deployed_stack
    base = stack.task_definitions["products"][0]
    newer = clients.ecs.register_task_definition(
        family="refarch-test-products", containerDefinitions=[{"name": "products", "image": "x:3", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    clients.ecs.update_service(cluster=stack.cluster, service=stack.service_name("products"), taskDefinition=newer)
    # Revision 2 was deregistered (what Pulumi does to a replaced task definition by default).
    clients.ecs.deregister_task_definition(taskDefinition=stack.task_definitions["products"][1])

    rollback_services(clients, stack.cluster, [stack.service_name("products")], wait=False)
    assert running(clients, stack, "products") == base


def test_a_given_revision_wins_over_the_previous_one(deployed_stack, clients):
    stack = deployed_stack
    third = clients.ecs.register_task_definition(
        family="refarch-test-orders", containerDefinitions=[{"name": "orders", "image": "x:3", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    clients.ecs.update_service(cluster=stack.cluster, service=stack.service_name("orders"), taskDefinition=third)

    rollback_services(clients, stack.cluster, [stack.service_name("orders")], wait=False,
                      task_definitions={stack.service_name("orders"): "refarch-test-orders:1"})
    assert running(clients, stack, "orders") == stack.task_definitions["orders"][0]


def test_refused_and_nothing_changed_when_one_service_has_nowhere_to_go(deployed_stack, clients):
    stack = deployed_stack
    # orders back on revision 1: no older ACTIVE revision exists for it.
    clients.ecs.update_service(cluster=stack.cluster, service=stack.service_name("orders"),
                               taskDefinition=stack.task_definitions["orders"][0])

    with pytest.raises(OpsError) as refused:
        rollback_services(clients, stack.cluster, names(stack), wait=False)
    assert refused.value.message == (
        "break-glass rollback refused, nothing changed:\n"
        "  refarch-test-orders: no ACTIVE revision of refarch-test-orders older than refarch-test-orders:1 "
        "to go back to"
    )
    assert running(clients, stack, "products") == stack.task_definitions["products"][1]  # untouched


def test_unknown_service_is_refused(deployed_stack, clients):
    with pytest.raises(OpsError, match=r"refarch-test-gone: MISSING in cluster refarch-test"):
        plan(clients, deployed_stack.cluster, ["refarch-test-gone"])


def test_plan_changes_nothing(deployed_stack, clients):
    steps = plan(clients, deployed_stack.cluster, names(deployed_stack))
    assert [(s.service, family_revision(s.current)[1], family_revision(s.target)[1]) for s in steps] == [
        ("refarch-test-products", 2, 1), ("refarch-test-orders", 2, 1)]
    assert running(clients, deployed_stack, "products") == deployed_stack.task_definitions["products"][1]


def test_reconcile_hint_names_the_commands():
    hint = reconcile_hint("prod", "20261127T183000.000Z-abc1234")
    assert "invoke rollback --stack prod --to 20261127T183000.000Z-abc1234" in hint
    assert "pulumi refresh --stack prod" in hint
