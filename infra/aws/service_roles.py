"""Each service's IAM roles: what ECS needs to start its tasks, and what the application may do.

Apart from the services layer because it is the part a security review reads line by line: every
policy a service's roles get is attached here (the documents themselves are in `service_policies`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from infra.aws.service_policies import (
    data_access_policy,
    ecr_repository_arn,
    execution_policy,
    put_events_policy,
    secret_arn,
    tracing_policy,
    trust_policy,
)
from infra.config import ServiceConfig
from infra.tags import with_name

if TYPE_CHECKING:
    from infra.aws.services import ServicesArgs


@dataclass
class ServiceRoles:
    execution: aws.iam.Role
    task: aws.iam.Role
    # Only a service with migrations on the database: the one role that may read the master secret.
    migration_execution: aws.iam.Role | None
    policies: list[aws.iam.RolePolicy]


def service_roles(parent: pulumi.Resource, args: ServicesArgs, account: pulumi.Output[str],
                  partition: pulumi.Output[str], base: str, full: str, svc: ServiceConfig,
                  repository: aws.ecr.Repository | None, log_group: aws.cloudwatch.LogGroup,
                  image: pulumi.Output[str]) -> ServiceRoles:
    """Execution, task and (with migrations) migration-execution roles, each with only its own policies."""
    child = pulumi.ResourceOptions(parent=parent)
    trust = pulumi.Output.all(account, partition).apply(
        lambda v: json.dumps(trust_policy(v[0], v[1], args.region)))

    def role(suffix: str, description: str) -> aws.iam.Role:
        return aws.iam.Role(
            f"{base}-{suffix}-role",
            name=f"{full}-{suffix}",
            description=description,
            assume_role_policy=trust,
            permissions_boundary=args.permissions_boundary_arn,
            tags=with_name(args.tags, f"{full}-{suffix}"),
            opts=child,
        )

    execution_role = role("execution", f"ECS starts {svc.name} tasks: pull its image, write its logs, read its secrets")
    task_role = role("task", f"{svc.name} application identity")
    # Built services pull only from their own repository; a service running a given image
    # may pull that image's private ECR repository (public registries need no permission).
    repo_arn: pulumi.Input[str | None] = (
        repository.arn if repository is not None
        else pulumi.Output.all(image, partition).apply(lambda v: ecr_repository_arn(v[0], v[1])))

    def start_tasks(secret_refs: list[pulumi.Input[str]]) -> pulumi.Output[str]:
        return pulumi.Output.all(
            repo=repo_arn, log_group=log_group.arn, secrets=pulumi.Output.all(*secret_refs),
            account=account, partition=partition,
        ).apply(lambda v: json.dumps(execution_policy(
            pull_repository_arns=[v["repo"]] if v["repo"] else [],
            log_group_arn=v["log_group"], secret_arns=list(v["secrets"]),
            account=v["account"], partition=v["partition"], region=args.region,
        )))

    # The service's own secrets only: the database master secret is the migration's alone.
    own_secrets: list[pulumi.Input[str]] = [secret_arn(ref) for ref in svc.secrets.values()]
    policies = [aws.iam.RolePolicy(f"{base}-execution-policy", role=execution_role.id,
                                   name="start-tasks", policy=start_tasks(own_secrets), opts=child)]
    migration_execution = None
    if svc.migrate_command and svc.uses_database:
        migration_execution = role("migrate-execution",
                                   f"ECS starts {svc.name} migrations: its image, its logs, the master secret")
        policies.append(aws.iam.RolePolicy(
            f"{base}-migrate-execution-policy", role=migration_execution.id, name="start-tasks",
            policy=start_tasks([*own_secrets, args.database.master_secret_arn]), opts=child))
    if svc.uses_database or svc.uses_cache:
        policies.append(aws.iam.RolePolicy(f"{base}-task-data", role=task_role.id, name="data-access",
                                           policy=_data_access(args, account, partition, svc), opts=child))
    if args.analytics is not None:
        policies.append(aws.iam.RolePolicy(
            f"{base}-task-events", role=task_role.id, name="put-events",
            policy=args.analytics.stream_arn.apply(lambda arn: json.dumps(put_events_policy(arn))), opts=child))
    if args.tracing:
        policies.append(aws.iam.RolePolicy(f"{base}-task-tracing", role=task_role.id, name="xray-write",
                                           policy=json.dumps(tracing_policy()), opts=child))
    return ServiceRoles(execution_role, task_role, migration_execution, policies)

def _data_access(args: ServicesArgs, account: pulumi.Output[str], partition: pulumi.Output[str],
                 svc: ServiceConfig) -> pulumi.Output[str]:
    db, cache, region = args.database, args.cache, args.region
    prefix = pulumi.Output.concat("arn:", partition, ":")
    db_user = (pulumi.Output.concat(prefix, "rds-db:", region, ":", account, ":dbuser:",
                                    db.resource_id, "/", db.app_username)
               if svc.uses_database else None)
    cache_arns = [cache.replication_group_arn, cache.user_arn] if svc.uses_cache else []
    return pulumi.Output.all(db_user, *cache_arns).apply(
        lambda v: json.dumps(data_access_policy(db_user_arn=v[0], cache_arns=list(v[1:]))))
