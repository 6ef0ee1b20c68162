"""ECS tasks: no public IP, not privileged, read-only root file system, Fargate only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from policy_support import (
    ECS_CAPACITY_PROVIDER,
    ECS_CLUSTER_CAPACITY,
    ECS_SERVICE,
    ECS_TASK_DEFINITION,
    MANDATORY,
    Policy,
    get,
    is_map,
    items,
    parse_document,
    resource_policy,
    tags_of,
    true,
)
from pulumi_policy import ResourceValidationArgs

# Opt-out marker for a writable root file system: the tag's value is the reason.
WRITABLE_ROOT_TAG = "writable-root-reason"
FARGATE_PROVIDERS = frozenset({"FARGATE", "FARGATE_SPOT"})


def _no_public_ip(args: ResourceValidationArgs) -> Iterator[str]:
    if true(get(args.props, "networkConfiguration", "assignPublicIp")):
        yield (f"Service '{args.name}' gives its tasks public IPs. "
               "Set network_configuration.assign_public_ip=False and run tasks in private subnets.")


def _containers(args: ResourceValidationArgs) -> list[Any]:
    containers = parse_document(args.props.get("containerDefinitions"))
    return [c for c in items(containers) if is_map(c)]


def _not_privileged(args: ResourceValidationArgs) -> Iterator[str]:
    for container in _containers(args):
        if true(get(container, "privileged")):
            yield (f"Container '{get(container, 'name')}' of task definition '{args.name}' runs privileged. "
                   "Remove privileged=true; grant the single Linux capability it needs instead.")


def _read_only_root(args: ResourceValidationArgs) -> Iterator[str]:
    reason = tags_of(args.props).get(WRITABLE_ROOT_TAG)
    if isinstance(reason, str) and reason.strip():
        return
    for container in _containers(args):
        if not true(get(container, "readonlyRootFilesystem")):
            yield (f"Container '{get(container, 'name')}' of task definition '{args.name}' has a writable root "
                   f"file system and the task definition has no '{WRITABLE_ROOT_TAG}' tag. Set "
                   "readonlyRootFilesystem=true (mount a volume for scratch space), or opt out with "
                   "read_only_root_filesystem: false and writable_root_reason in the stack file.")


def _fargate_only(args: ResourceValidationArgs) -> Iterator[str]:
    props, kind = args.props, args.resource_type
    if kind == ECS_CAPACITY_PROVIDER:
        yield (f"Capacity provider '{args.name}' adds EC2 capacity to ECS. "
               "Remove it; run tasks on FARGATE or FARGATE_SPOT.")
    elif kind == ECS_TASK_DEFINITION:
        compat = [c for c in items(props.get("requiresCompatibilities")) if isinstance(c, str)]
        if compat != ["FARGATE"]:
            yield (f"Task definition '{args.name}' requires compatibilities {compat or 'unset (EC2)'}. "
                   "Set requires_compatibilities=['FARGATE'].")
    elif kind == ECS_CLUSTER_CAPACITY:
        providers = set(items(props.get("capacityProviders")))
        providers |= {get(s, "capacityProvider") for s in items(props.get("defaultCapacityProviderStrategies"))}
        if providers - FARGATE_PROVIDERS:
            yield (f"Cluster capacity providers '{args.name}' include {sorted(map(str, providers - FARGATE_PROVIDERS))}. "
                   "Use only FARGATE and FARGATE_SPOT.")
    elif kind == ECS_SERVICE:
        launch = props.get("launchType")
        strategy = {get(s, "capacityProvider") for s in items(props.get("capacityProviderStrategies"))}
        if launch is not None and launch != "FARGATE":
            yield f"Service '{args.name}' launches on {launch}. Set launch_type='FARGATE' or a Fargate capacity strategy."
        elif strategy - FARGATE_PROVIDERS:
            yield (f"Service '{args.name}' uses capacity providers {sorted(map(str, strategy - FARGATE_PROVIDERS))}. "
                   "Use only FARGATE and FARGATE_SPOT in capacity_provider_strategies.")
        elif launch is None and not strategy:
            yield (f"Service '{args.name}' sets neither a launch type nor a capacity strategy, so its capacity "
                   "depends on the cluster default. Set capacity_provider_strategies with FARGATE/FARGATE_SPOT.")


POLICIES: list[Policy] = [
    resource_policy("ecs-no-public-ip", "ECS tasks get no public IP.", MANDATORY, [ECS_SERVICE], _no_public_ip),
    resource_policy("ecs-not-privileged", "No ECS container runs privileged.",
                    MANDATORY, [ECS_TASK_DEFINITION], _not_privileged),
    resource_policy("ecs-read-only-root",
                    f"ECS containers have a read-only root file system unless tagged {WRITABLE_ROOT_TAG}.",
                    MANDATORY, [ECS_TASK_DEFINITION], _read_only_root),
    resource_policy("ecs-fargate-only", "ECS capacity is Fargate only.", MANDATORY,
                    [ECS_SERVICE, ECS_TASK_DEFINITION, ECS_CLUSTER_CAPACITY, ECS_CAPACITY_PROVIDER], _fargate_only),
]
