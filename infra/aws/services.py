"""The services layer: one ECS Fargate service per configured service, behind the gateway's ALB.

Per service: an ECR repository (built services only), a log group, least-privilege execution and
task roles, the task definition (app container, plus an ADOT collector when tracing), a migration
task definition when the service has a migrate command, a security group with the matching rules
on the ALB, database and cache groups, a target group with its listener rules, and the service.
The roles and their policies are built by `service_roles`, the security group and target groups by
`service_network`, the container definitions by `containers`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.aws import deployment
from infra.aws.containers import ADOT_CONTAINER, TMP_VOLUME, ContainerDefinitions
from infra.aws.flags import FlagNames
from infra.aws.listener_rules import TokenCheck, auth_marker, route_rules
from infra.aws.monitoring import deployment_alarm_names
from infra.aws.service_network import service_security_group, service_target_group
from infra.aws.service_policies import (
    lifecycle_policy,
)
from infra.aws.service_roles import service_roles
from infra.config import BUILD_CACHE_TAG, DeploymentConfig, ServiceConfig, naming
from infra.config.services import rule_priorities as route_priorities
from infra.tags import with_name

# Listener rule priority = base + 10 * service index + route index: stable, unique, readable.

class _Gateway(Protocol):
    security_group_id: pulumi.Output[str]
    listener_arn: pulumi.Output[str]
    url: pulumi.Output[str]


class _Database(Protocol):
    security_group_id: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    port: pulumi.Output[int]
    db_name: str
    username: str
    app_username: str
    resource_id: pulumi.Output[str]
    master_secret_arn: pulumi.Output[str]


class _Issuer(Protocol):
    issuer: pulumi.Output[str]
    jwks_url: pulumi.Output[str]
    audience: pulumi.Output[str] | None
class _Analytics(Protocol):
    stream_name: pulumi.Output[str]
    stream_arn: pulumi.Output[str]
    events: list[str]


class _Cache(Protocol):
    security_group_id: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    port: pulumi.Output[int]
    user_name: str
    user_arn: pulumi.Output[str]
    replication_group_id: pulumi.Output[str]
    replication_group_arn: pulumi.Output[str]


@dataclass
class ServicesArgs:
    services: list[ServiceConfig]
    images: dict[str, str]
    name_prefix: str
    region: str
    vpc_id: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    gateway: _Gateway
    database: _Database
    cache: _Cache
    log_retention_days: int
    # The application log groups' key (the stack key).
    kms_key_arn: pulumi.Input[str]
    tracing: bool
    container_insights: bool
    tags: dict[str, str]
    deployment: DeploymentConfig = field(default_factory=DeploymentConfig)
    smoke_timeout_seconds: int = 10  # per request of the smoke hook
    permissions_boundary_arn: pulumi.Input[str] | None = None
    auth: _Issuer | None = None  # the token issuer, when a route has auth: jwt (infra/aws/auth.py)
    # Where the AppConfig agent sidecar reads the stack's flags (None: no flags declared).
    flags: FlagNames | None = None
    # The stack's product-event stream (infra/aws/analytics.py); None: analytics off.
    analytics: _Analytics | None = None


@dataclass
class DeployedService:
    name: str
    service_name: pulumi.Output[str]
    service_arn: pulumi.Output[str]
    target_group_arn: pulumi.Output[str]
    target_group_arn_suffix: pulumi.Output[str]
    repository_url: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    task_definition_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    resource_id: pulumi.Output[str]
    migration_task_definition_arn: pulumi.Output[str] | None
    migration_task_definition_urn: pulumi.Output[str] | None
    # The second target group of a traffic-shifting strategy (ECS alternates between the two).
    alternate_target_group_arn: pulumi.Output[str] | None = None
    alternate_target_group_arn_suffix: pulumi.Output[str] | None = None
    deployment_alarm_names: list[str] = field(default_factory=list)  # what ECS rolls back on
    task_role_name: pulumi.Output[str] | None = None  # the flags layer attaches its read policy to it


# --- pure decisions (unit-testable without a synth) -------------------------------------------

def capacity_strategy(spot_share: int) -> list[dict[str, Any]]:
    """FARGATE / FARGATE_SPOT split for a spot share in percent."""
    if spot_share == 0:
        return [{"capacity_provider": "FARGATE", "weight": 1}]
    if spot_share == 100:
        return [{"capacity_provider": "FARGATE_SPOT", "weight": 1}]
    g = math.gcd(spot_share, 100 - spot_share)
    # base 1: a Spot reclaim wave can never take the last task down.
    return [
        {"capacity_provider": "FARGATE", "base": 1, "weight": (100 - spot_share) // g},
        {"capacity_provider": "FARGATE_SPOT", "weight": spot_share // g},
    ]


def rule_priorities(service_index: int, svc: ServiceConfig) -> list[int]:
    """One listener rule priority per route of the service at `service_index`."""
    # At most ROUTES_PER_SERVICE routes: checked by the schema (infra/config/services.py).
    return route_priorities(service_index, len(svc.routes))


class Services(pulumi.ComponentResource):
    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    deployed: dict[str, DeployedService]

    def __init__(self, name: str, args: ServicesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:services:Services", name, None, opts)
        self._name, self._args = name, args
        self._containers = ContainerDefinitions(args)
        prefix = args.name_prefix
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        self._account = aws.get_caller_identity_output(opts=invoke).account_id
        self._partition = aws.get_partition_output(opts=invoke).partition

        cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=prefix,
            settings=[{"name": "containerInsights",
                       "value": "enabled" if args.container_insights else "disabled"}],
            tags=self._tags(prefix),
            opts=child,
        )
        self._capacity = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity",
            cluster_name=cluster.name,
            capacity_providers=["FARGATE", "FARGATE_SPOT"],
            default_capacity_provider_strategies=[{"capacity_provider": "FARGATE", "weight": 1}],
            opts=child,
        )
        self._cluster = cluster
        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self._token, self._hook = self._progressive(name)
        self.deployed = {svc.name: self._service(i, svc) for i, svc in enumerate(args.services)}
        self.register_outputs({
            "cluster_name": self.cluster_name,
            "services": {n: d.service_name for n, d in self.deployed.items()},
        })

    def _tags(self, name: str) -> dict[str, str]:
        return with_name(self._args.tags, name)

    def _progressive(self, name: str) -> tuple[pulumi.Output[str] | None, deployment.SmokeHook | None]:
        """The test-route secret and the smoke hook a traffic-shifting strategy needs (None: rolling)."""
        args = self._args
        if args.deployment.rolling:
            return None, None
        # A routing key, not a credential: it keeps internet traffic off an unreleased revision.
        password = random.RandomPassword(f"{name}-test-route-token", length=32, special=False,
                                         opts=pulumi.ResourceOptions(parent=self))
        token: pulumi.Output[str] = pulumi.Output.secret(password.result)  # type: ignore[arg-type]
        if not args.deployment.smoke_hook:
            return token, None
        hook = deployment.SmokeHook(f"{name}-smoke-hook", deployment.SmokeHookArgs(
            name_prefix=args.name_prefix, log_retention_days=args.log_retention_days,
            test_routes={svc.name: deployment.test_route_value(svc.name, token) for svc in args.services},
            timeout_seconds=args.smoke_timeout_seconds, paths_per_service=2, tags=args.tags,
            kms_key_arn=args.kms_key_arn, permissions_boundary_arn=args.permissions_boundary_arn,
        ), opts=pulumi.ResourceOptions(parent=self))
        return token, hook

    def _service(self, index: int, svc: ServiceConfig) -> DeployedService:
        args, base = self._args, f"{self._name}-{svc.name}"
        full = naming.service_name(args.name_prefix, svc.name)
        child = pulumi.ResourceOptions(parent=self)
        priorities = rule_priorities(index, svc)  # raises before anything is registered

        repository = self._repository(base, svc) if svc.build else None
        log_group = aws.cloudwatch.LogGroup(
            f"{base}-logs",
            name=naming.service_log_group(args.name_prefix, svc.name),
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=self._tags(f"/ecs/{args.name_prefix}/{svc.name}"),
            opts=child,
        )
        image = self._image(svc, repository)
        roles = service_roles(self, self._args, self._account, self._partition, base, full, svc, repository,
                              log_group, image)
        execution_role, task_role, role_policies = roles.execution, roles.task, roles.policies

        env, secrets = self._containers.environment(svc), self._containers.secrets(svc)
        app = self._containers.app_container(svc, image, log_group, env, secrets)
        containers: list[dict[str, Any]] = [app]
        if args.tracing:
            app["dependsOn"] = [{"containerName": ADOT_CONTAINER, "condition": "START"}]
            containers.append(self._containers.collector(log_group))
        if args.flags:
            containers.append(self._containers.flags_agent(args.flags, log_group))
        task_definition = self._task_definition(f"{base}-task", full, svc, containers, execution_role, task_role)

        migration = None
        if svc.migrate_command:
            migration = self._task_definition(
                f"{base}-migrate", f"{full}-migrate", svc,
                [self._containers.migration_container(
                    svc, image, log_group, *self._containers.migration_access(svc, env, secrets))],
                roles.migration_execution or execution_role, task_role,
            )

        sg, sg_rules = service_security_group(self, self._args, base, full, svc)
        target_group = service_target_group(self, self._args, base, svc)
        shift = None if self._token is None else deployment.traffic_shift(
            self, base, full, svc, primary=target_group, alternate=service_target_group(self, self._args, base, svc, alternate=True),
            listener_arn=args.gateway.listener_arn, priority=priorities[0],
            test_priority=deployment.TEST_RULE_PRIORITY_BASE + index, token=self._token,
            tags={**args.tags, **auth_marker(svc.routes)},
            permissions_boundary_arn=args.permissions_boundary_arn)
        token_check = None if args.auth is None else TokenCheck(
            issuer=args.auth.issuer, jwks_endpoint=args.auth.jwks_url,
            scopes=sorted({s for route in svc.routes for s in route.scopes}))
        listener_rules = shift.rules if shift else [
            rule
            for j, route in enumerate(svc.routes)
            for rule in route_rules(
                self, f"{base}-rule-{j}", args.gateway.listener_arn, priorities[j], route, target_group.arn,
                self._tags(f"{full}-{j}"), token_check)
        ]
        alarm_names = deployment_alarm_names(args.name_prefix, svc.name, args.container_insights)

        service = aws.ecs.Service(
            f"{base}-service",
            name=full,
            cluster=self._cluster.arn,
            task_definition=task_definition.arn,
            desired_count=svc.desired_count,
            capacity_provider_strategies=[aws.ecs.ServiceCapacityProviderStrategyArgs(**s)
                                          for s in capacity_strategy(svc.spot_share)],
            # The provider only applies a changed capacity strategy with a forced deployment.
            force_new_deployment=True,
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=list(args.private_subnet_ids), security_groups=[sg.id], assign_public_ip=False),
            load_balancers=[shift.load_balancer(target_group.arn, svc.name, svc.port) if shift else aws.ecs.ServiceLoadBalancerArgs(
                target_group_arn=target_group.arn, container_name=svc.name, container_port=svc.port)],
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            # ECS itself rolls back on these (monitoring.py names them so), even with no pipeline left.
            alarms=aws.ecs.ServiceAlarmsArgs(alarm_names=alarm_names, enable=True, rollback=True),
            deployment_configuration=deployment.ecs_deployment_configuration(
                args.deployment, self._hook,
                deployment.hook_details(svc, args.gateway.url, args.smoke_timeout_seconds) if self._hook else None),
            # Never below desired capacity during a rollout; new tasks start beside the old ones.
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            health_check_grace_period_seconds=svc.health_check.grace_period,
            # `pulumi up` returns only once the rollout is stable (or the breaker rolled it back);
            # Ctrl-C (SIGINT) during that wait rolls the deployment back instead of leaving it half done.
            wait_for_steady_state=True,
            sigint_rollback=True,
            enable_execute_command=False,
            propagate_tags="SERVICE",
            enable_ecs_managed_tags=True,
            tags=self._tags(full),
            opts=pulumi.ResourceOptions(
                parent=self,
                # Autoscaling owns the count after creation; a deploy must not reset it. ECS swaps
                # the primary and alternate target groups at every traffic-shifting deployment.
                ignore_changes=["desired_count", *(deployment.ECS_MANAGED_SERVICE_FIELDS if shift else [])],
                # A target group must belong to a listener before ECS registers into it; tasks
                # need their permissions and network paths before they start, or the first
                # deployment fails health checks and the circuit breaker rolls back to nothing.
                depends_on=[*listener_rules, self._capacity, *role_policies, *sg_rules,
                            *(shift.resources if shift else [])],
                custom_timeouts=deployment.service_timeout(args.deployment),
            ),
        )
        return DeployedService(
            name=svc.name,
            service_name=service.name,
            service_arn=service.arn,
            target_group_arn=target_group.arn,
            target_group_arn_suffix=target_group.arn_suffix,
            repository_url=repository.repository_url if repository else pulumi.Output.from_input(""),
            security_group_id=sg.id,
            task_definition_arn=task_definition.arn,
            log_group_name=log_group.name,
            resource_id=pulumi.Output.concat("service/", self._cluster.name, "/", service.name),
            migration_task_definition_arn=migration.arn if migration else None,
            migration_task_definition_urn=migration.urn if migration else None,
            alternate_target_group_arn=shift.alternate.arn if shift else None,
            alternate_target_group_arn_suffix=shift.alternate.arn_suffix if shift else None,
            deployment_alarm_names=alarm_names,
            task_role_name=task_role.name,
        )

    # --- per-service parts ---------------------------------------------------------------------

    def _repository(self, base: str, svc: ServiceConfig) -> aws.ecr.Repository:
        repo_name = naming.ecr_repository(self._args.name_prefix, svc.name)
        repository = aws.ecr.Repository(
            f"{base}-repo",
            name=repo_name,
            # Deploys pin digests; immutable tags make a tag mean one image forever as well. The
            # one exception is the build cache, which every build overwrites (`--cache-to`).
            image_tag_mutability="IMMUTABLE_WITH_EXCLUSION",
            image_tag_mutability_exclusion_filters=[{"filter": BUILD_CACHE_TAG, "filter_type": "WILDCARD"}],
            image_scanning_configuration={"scan_on_push": True},
            # The stack key is not an input of this layer; the AWS-managed ECR key still gives
            # KMS encryption with CloudTrail-audited use, and needs no grant for task pulls.
            encryption_configurations=[{"encryption_type": "KMS"}],
            tags=self._tags(repo_name),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.ecr.LifecyclePolicy(
            f"{base}-repo-lifecycle",
            repository=repository.name,
            policy=json.dumps(lifecycle_policy()),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return repository

    def _image(self, svc: ServiceConfig, repository: aws.ecr.Repository | None) -> pulumi.Output[str]:
        pinned = self._args.images.get(svc.name)
        if pinned:
            return pulumi.Output.from_input(pinned)
        if repository is not None:
            # Placeholder until the first build: `invoke deploy` refuses to deploy a built
            # service without a digest, so this tag never reaches a real rollout.
            return repository.repository_url.apply(lambda url: f"{url}:initial")
        return pulumi.Output.from_input(svc.image or "")

    def _task_definition(self, resource_name: str, family: str, svc: ServiceConfig,
                         containers: list[dict[str, Any]], execution_role: aws.iam.Role,
                         task_role: aws.iam.Role) -> aws.ecs.TaskDefinition:
        return aws.ecs.TaskDefinition(
            resource_name,
            family=family,
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(svc.cpu),
            memory=str(svc.memory),
            runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": svc.architecture},
            execution_role_arn=execution_role.arn,
            task_role_arn=task_role.arn,
            container_definitions=pulumi.Output.json_dumps(containers),
            # A task-scoped scratch volume: /tmp stays writable while the root FS is read-only.
            volumes=[{"name": TMP_VOLUME}] if svc.read_only_root_filesystem else [],
            # The opt-out's reason travels with the task definition, where the policy pack reads it.
            tags=self._tags(family) | (
                {} if svc.read_only_root_filesystem else {"writable-root-reason": svc.writable_root_reason or ""}),
            # Replaced revisions stay registered: break-glass rollback points services back at them.
            skip_destroy=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
