"""The cache layer: one ElastiCache (Valkey or Redis OSS) replication group in the isolated subnets.

Encrypted at rest with the stack key and in transit (TLS). No shared AUTH token: clients log in as
the ElastiCache user `user_name` with IAM authentication (a SigV4-signed token valid 15 minutes,
contract C2), so there is no secret to store or rotate. The engine's `default` user, which every
user group must contain, is switched off. Services open their own ingress on
`security_group_id`; this layer opens nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config import CacheConfig, naming
from infra.tags import with_name

PORT = 6379
# The application's commands: everything but the dangerous category (FLUSHALL, KEYS, CONFIG,
# DEBUG, ... ), on every key of the cache.
APP_ACCESS = "on ~* +@all -@dangerous"
# Every user group must hold a user named `default`; this one can do nothing and cannot log in.
DISABLED_DEFAULT_ACCESS = "off -@all"
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
    # The application's ElastiCache user (IAM authentication: its id is its name) and the ARNs
    # its task role may `elasticache:Connect` to.
    user_name: str
    user_arn: pulumi.Output[str]
    replication_group_arn: pulumi.Output[str]
    replication_group_id: pulumi.Output[str]
    member_cluster_ids: pulumi.Output[list[str]]
    # Known before deploy, unlike the member ids: the monitoring layer creates one alarm set per node.
    cluster_count: int

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:cache:Cache", name, None, opts)
        cfg, prefix = args.config, args.name_prefix
        self._prefix = prefix
        child = pulumi.ResourceOptions(parent=self)
        group_id = naming.cache_group_id(prefix)  # checked by the schema (infra/config/naming.py)

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

        users = self._users(name, group_id, cfg.engine, args.tags)

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
            user_group_ids=[users.user_group_id],
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
        self.user_name = self._app_user_name
        self.user_arn = self._app_user.arn
        self.replication_group_arn = group.arn
        self.replication_group_id = group.replication_group_id
        self.member_cluster_ids = group.member_clusters.apply(lambda ids: sorted(ids or []))
        self.cluster_count = count
        self.register_outputs({
            "security_group_id": self.security_group_id,
            "endpoint": self.endpoint,
            "port": self.port,
            "user_arn": self.user_arn,
            "replication_group_id": self.replication_group_id,
            "member_cluster_ids": self.member_cluster_ids,
        })

    def _users(self, name: str, group_id: str, engine: str, tags: dict[str, str]) -> aws.elasticache.UserGroup:
        child = pulumi.ResourceOptions(parent=self)
        # IAM authentication requires the user id and the user name to be the same.
        self._app_user_name = naming.cache_app_user(self._prefix)
        self._app_user = aws.elasticache.User(
            f"{name}-app-user",
            user_id=self._app_user_name,
            user_name=self._app_user_name,
            engine=engine,
            access_string=APP_ACCESS,
            authentication_mode=aws.elasticache.UserAuthenticationModeArgs(type="iam"),
            tags=with_name(tags, self._app_user_name),
            opts=child,
        )
        default = aws.elasticache.User(
            f"{name}-default-user",
            user_id=f"{group_id}-default",
            user_name="default",
            engine=engine,
            access_string=DISABLED_DEFAULT_ACCESS,
            authentication_mode=aws.elasticache.UserAuthenticationModeArgs(type="no-password-required"),
            tags=with_name(tags, f"{group_id}-default"),
            opts=child,
        )
        return aws.elasticache.UserGroup(
            f"{name}-users",
            user_group_id=f"{group_id}-users",
            engine=engine,
            user_ids=[default.user_id, self._app_user.user_id],
            tags=with_name(tags, f"{group_id}-users"),
            opts=child,
        )
