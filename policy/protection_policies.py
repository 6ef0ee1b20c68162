"""Prod protections: deletion protection and backups on stateful resources and the ALB."""

from __future__ import annotations

from collections.abc import Iterator

from policy_support import (
    CACHE_GROUP,
    LOAD_BALANCERS,
    MANDATORY,
    RDS_CLUSTER,
    RDS_INSTANCE,
    Policy,
    as_int,
    environment_of,
    resource_policy,
    true,
)
from pulumi_policy import ResourceValidationArgs

PROD_MIN_BACKUP_DAYS = 7


def _prod_protected(args: ResourceValidationArgs) -> Iterator[str]:
    props, kind = args.props, args.resource_type
    if environment_of(props) != "prod":
        return
    if kind in (RDS_INSTANCE, RDS_CLUSTER):
        if not true(props.get("deletionProtection")):
            yield (f"Prod database '{args.name}' can be deleted by one API call (deletionProtection is not true). "
                   "Set database.deletion_protection: true.")
        days = as_int(props.get("backupRetentionPeriod"))
        if days is None or days < PROD_MIN_BACKUP_DAYS:
            yield (f"Prod database '{args.name}' keeps {days or 0} days of backups. "
                   f"Set database.backup_retention_days to at least {PROD_MIN_BACKUP_DAYS}.")
    elif kind == CACHE_GROUP:
        if (as_int(props.get("snapshotRetentionLimit")) or 0) < 1:
            yield (f"Prod cache '{args.name}' keeps no snapshots. "
                   "Set cache.snapshot_retention_days to at least 1.")
    elif kind in LOAD_BALANCERS:
        if not true(props.get("enableDeletionProtection")):
            yield (f"Prod load balancer '{args.name}' can be deleted by one API call. "
                   "Set gateway.deletion_protection: true.")


POLICIES: list[Policy] = [
    resource_policy("prod-stateful-protected",
                    "Prod databases, caches and load balancers have deletion protection and backups.",
                    MANDATORY, [RDS_INSTANCE, RDS_CLUSTER, CACHE_GROUP, *LOAD_BALANCERS], _prod_protected),
]
