"""The cache layer: one ElastiCache (Valkey or Redis OSS) replication group in the isolated subnets.

Encrypted at rest with the stack key and in transit (TLS), with an AUTH token that lives only in
Pulumi's encrypted state and in a Secrets Manager secret (`auth_secret_arn`) services read at task
start. Services open their own ingress on `security_group_id`; this layer opens nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.config import CacheConfig
from infra.tags import with_name

PORT = 6379
REPLICATION_GROUP_ID_MAX = 40
# ElastiCache accepts 16-128 printable ASCII characters minus space, '"', '/' and '@'. Letters and
# digits only keep the token safe in URLs and shells too; 64 of them are ~380 bits.
AUTH_TOKEN_LENGTH = 64
# UTC, at least an hour long, and apart from each other as ElastiCache requires. Off the database's
# windows too, so the data layer never has two components in maintenance at once.
SNAPSHOT_WINDOW = "01:00-02:00"
MAINTENANCE_WINDOW = "sun:06:00-sun:07:00"
LOG_TYPES = ("slow-log", "engine-log")


@dataclass
class CacheArgs:
    config: CacheConfig
    name_prefix: str
    vpc_id: pulumi.Input[str]
    isolated_subnet_ids: Sequence[pulumi.Input[str]]
    kms_key_arn: pulumi.Input[str]
    log_retention_days: int
    protect: bool
    tags: dict[str, str]


class Cache(pulumi.ComponentResource):
    security_group_id: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    port: pulumi.Output[int]
    auth_secret_arn: pulumi.Output[str]
    replication_group_id: pulumi.Output[str]
    member_cluster_ids: pulumi.Output[list[str]]
    # Known before deploy, unlike the member ids: the monitoring layer creates one alarm set per node.
    cluster_count: int

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:cache:Cache", name, None, opts)
        cfg, prefix = args.config, args.name_prefix
        child = pulumi.ResourceOptions(parent=self)
        group_id = f"{prefix}-cache"
        if len(group_id) > REPLICATION_GROUP_ID_MAX:
            raise ValueError(
                f"cache: replication group id {group_id!r} exceeds {REPLICATION_GROUP_ID_MAX} characters"
            )

        # No rules at all: the provider removes AWS's default allow-all egress (the engine never
        # dials out), and each service that uses the cache adds its own ingress on 6379.
        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=group_id,
            description="Cache: ingress only from the services that use it, added by each",
            vpc_id=args.vpc_id,
            tags=with_name(args.tags, group_id),
            opts=child,
        )
        subnets = aws.elasticache.SubnetGroup(
            f"{name}-subnets",
            name=group_id,
            description=f"{prefix}: isolated subnets (no route out of the VPC)",
            subnet_ids=list(args.isolated_subnet_ids),
            tags=with_name(args.tags, group_id),
            opts=child,
        )

        token = random.RandomPassword(
            f"{name}-auth-token",
            length=AUTH_TOKEN_LENGTH,
            special=False,
            opts=child,
        )
        # A name prefix, not a fixed name: a deleted secret keeps its name for the whole recovery
        # window, so destroying and recreating a stack would otherwise fail for up to 30 days.
        secret = aws.secretsmanager.Secret(
            f"{name}-auth-secret",
            name_prefix=f"{prefix}/cache/auth-token-",
            description=f"{prefix}: AUTH token of the {group_id} replication group",
            kms_key_id=args.kms_key_arn,
            recovery_window_in_days=30 if args.protect else 7,
            tags=with_name(args.tags, f"{group_id}-auth-token"),
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-auth-secret-value",
            secret_id=secret.id,
            secret_string=token.result,
            opts=child,
        )

        # Slow-log lines carry command arguments (keys, sometimes values): encrypted with the stack key.
        log_groups = {
            kind: aws.cloudwatch.LogGroup(
                f"{name}-{kind}",
                name=f"/{prefix}/cache/{kind}",
                retention_in_days=args.log_retention_days,
                kms_key_id=args.kms_key_arn,
                tags=with_name(args.tags, f"{group_id}-{kind}"),
                opts=child,
            )
            for kind in LOG_TYPES
        }

        # The engine's default parameter group (default.valkey8, default.redis7, ...) already fits a
        # cluster-mode-disabled cache; a custom group would only pin the same values.
        failover = cfg.failover
        count = 1 + cfg.replicas
        group = aws.elasticache.ReplicationGroup(
            f"{name}-group",
            replication_group_id=group_id,
            description=f"{prefix}: application cache",
            engine=cfg.engine,
            engine_version=cfg.engine_version,
            node_type=cfg.node_type,
            num_cache_clusters=count,
            port=PORT,
            subnet_group_name=subnets.name,
            security_group_ids=[sg.id],
            at_rest_encryption_enabled=True,
            kms_key_id=args.kms_key_arn,
            transit_encryption_enabled=True,
            auth_token=token.result,
            # Failover needs a replica to promote; multi-AZ places that replica in another AZ.
            automatic_failover_enabled=failover,
            multi_az_enabled=failover,
            snapshot_retention_limit=cfg.snapshot_retention_days,
            snapshot_window=SNAPSHOT_WINDOW,
            maintenance_window=MAINTENANCE_WINDOW,
            final_snapshot_identifier=f"{group_id}-final" if args.protect else None,
            auto_minor_version_upgrade=True,
            # Protected stacks take node replacements and engine changes in the maintenance window.
            apply_immediately=not args.protect,
            log_delivery_configurations=[
                aws.elasticache.ReplicationGroupLogDeliveryConfigurationArgs(
                    destination=log_groups[kind].name,
                    destination_type="cloudwatch-logs",
                    log_format="json",
                    log_type=kind,
                )
                for kind in LOG_TYPES
            ],
            tags=with_name(args.tags, group_id),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )

        self.security_group_id = sg.id
        self.endpoint = group.primary_endpoint_address
        self.port = group.port.apply(lambda p: int(p if p is not None else PORT))
        self.auth_secret_arn = secret.arn
        self.replication_group_id = group.replication_group_id
        self.member_cluster_ids = group.member_clusters.apply(lambda ids: sorted(ids or []))
        self.cluster_count = count
        self.register_outputs({
            "security_group_id": self.security_group_id,
            "endpoint": self.endpoint,
            "port": self.port,
            "auth_secret_arn": self.auth_secret_arn,
            "replication_group_id": self.replication_group_id,
            "member_cluster_ids": self.member_cluster_ids,
        })
