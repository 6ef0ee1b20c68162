"""Data access: IAM logins to the database and the cache, no shared master secret, database monitoring."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policy_support import (
    CACHE_GROUP,
    ECS_SERVICE,
    ECS_TASK_DEFINITION,
    MANDATORY,
    RDS_CLUSTER,
    RDS_INSTANCE,
    Finding,
    Policy,
    PolicyResource,
    Stack,
    by_environment,
    environment_of,
    get,
    guarded,
    is_map,
    items,
    parse_document,
    resource_policy,
    stack_policy,
    true,
)
from pulumi_policy import ResourceValidationArgs

# RDS names the master-user secrets it manages `rds!db-...` / `rds!cluster-...`.
RDS_MANAGED_SECRET = ":secret:rds!"


def _rds_iam_auth(args: ResourceValidationArgs) -> Iterator[str]:
    engine = str(args.props.get("engine") or "")
    if any(e in engine for e in ("postgres", "mysql", "mariadb")) \
            and not true(args.props.get("iamDatabaseAuthenticationEnabled")):
        yield (f"Database '{args.name}' accepts only passwords (iamDatabaseAuthenticationEnabled is not true), so "
               "applications share long-lived credentials. Set iam_database_authentication_enabled=True and log "
               "the application in with IAM tokens.")


def _cache_users(args: ResourceValidationArgs) -> Iterator[str]:
    props = args.props
    if props.get("authToken") is not None or props.get("authTokenWo") is not None:
        yield (f"Cache '{args.name}' uses one static AUTH token, which never rotates. Remove auth_token and "
               "log clients in as ElastiCache users (user_group_ids, IAM authentication).")
    elif not items(props.get("userGroupIds")):
        yield (f"Cache '{args.name}' has no user group, so any client that reaches it is let in. Attach a user "
               "group with user_group_ids (an IAM-authenticated user and a disabled default user).")


def _enhanced_monitoring(stack: Stack) -> Iterator[Finding]:
    def check(db: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        interval = props.get("monitoringInterval")
        monitored = bool(interval) and bool(props.get("monitoringRoleArn"))
        if not monitored and props.get("databaseInsightsMode") != "advanced":
            yield Finding(f"Database '{db.name}' has neither enhanced monitoring nor Database Insights, so its "
                          "OS-level metrics (per-process CPU, memory, I/O) are not collected. Set "
                          "database.monitoring_interval in the stack file.", db.urn, environment_of(props))

    yield from guarded(check, stack.known(RDS_INSTANCE, RDS_CLUSTER))


def _no_master_secret_in_services(stack: Stack) -> Iterator[Finding]:
    tasks = stack.index([ECS_TASK_DEFINITION], "arn", "id")

    def check(service: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        task = tasks.get(props.get("taskDefinition"))
        if task is None:
            return
        for container in items(parse_document(task.props.get("containerDefinitions"))):
            if not is_map(container):
                continue
            for secret in items(get(container, "secrets")):
                if RDS_MANAGED_SECRET in str(get(secret, "valueFrom") or ""):
                    yield Finding(f"Service '{service.name}' injects the database master secret into container "
                                  f"'{get(container, 'name')}' as {get(secret, 'name')}. Log the application "
                                  "in as its own role with IAM authentication; only migrations use the master "
                                  "secret.", service.urn, environment_of(props))

    yield from guarded(check, stack.known(ECS_SERVICE))


POLICIES: list[Policy] = [
    resource_policy("rds-iam-auth", "Databases accept IAM authentication (short-lived tokens, nothing to rotate).",
                    MANDATORY, [RDS_INSTANCE, RDS_CLUSTER], _rds_iam_auth),
    resource_policy("cache-user-auth", "Caches log clients in as users of a user group, never with one AUTH token.",
                    MANDATORY, [CACHE_GROUP], _cache_users),
    *by_environment("rds-enhanced-monitoring",
                    "Databases have enhanced monitoring (or Database Insights advanced mode).", _enhanced_monitoring),
    stack_policy("ecs-service-no-master-secret",
                 "No ECS service's containers receive the RDS-managed master secret (migrations only).",
                 MANDATORY, _no_master_secret_in_services),
]
