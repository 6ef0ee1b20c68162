"""The database layer: one RDS PostgreSQL instance in the isolated subnets.

No password ever passes through the program: RDS generates the master password and keeps it in a
Secrets Manager secret encrypted with the stack key (`master_secret_arn`), which only migrations
read. Applications log in as their own role (`app_username`) with IAM database authentication:
short-lived tokens, nothing to rotate (contract C2). Services open their own ingress on
`security_group_id`; this layer opens nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config import DatabaseConfig, MonitoringConfig, naming
from infra.tags import with_name

PORT = 5432
# Both in UTC and apart, as RDS requires; the backup runs first so maintenance starts from a fresh one.
BACKUP_WINDOW = "03:00-04:00"
MAINTENANCE_WINDOW = "sun:04:30-sun:05:30"
# RSA 2048 / SHA-256, valid to 2061: the CA AWS recommends for clients that pin the RDS bundle.
CA_CERT = "rds-ca-rsa2048-g1"
# 7 days is Performance Insights' free tier; longer retention is billed per vCPU-month.
PERFORMANCE_INSIGHTS_DAYS = 7
LOG_EXPORTS = ("postgresql", "upgrade")
# Statements slower than this are logged with their text: enough to find slow queries without
# logging every statement (which would also log literal values from every query).
SLOW_STATEMENT_MS = 1000
# What RDS's monitoring agent needs: AWS's own policy for it (RDSOSMetrics log group only).
ENHANCED_MONITORING_POLICY = "arn:{partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


@dataclass
class DatabaseArgs:
    config: DatabaseConfig
    name_prefix: str
    vpc_id: pulumi.Input[str]
    isolated_subnet_ids: Sequence[pulumi.Input[str]]
    kms_key_arn: pulumi.Input[str]
    protect: bool
    tags: dict[str, str]
    # Retention of the log groups RDS exports to (audit logs: monitoring.audit_log_retention_days).
    # Not in the contract's argument list: the default is the schema's, so a caller that does not
    # pass it still gets bounded retention.
    log_retention_days: int = MonitoringConfig.model_fields["audit_log_retention_days"].default
    permissions_boundary_arn: pulumi.Input[str] | None = None


class Database(pulumi.ComponentResource):
    security_group_id: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    port: pulumi.Output[int]
    db_name: str
    username: str
    app_username: str
    # DbiResourceId: what an IAM policy names in `rds-db:connect` (dbuser:<resource id>/<user>).
    resource_id: pulumi.Output[str]
    master_secret_arn: pulumi.Output[str]
    instance_identifier: pulumi.Output[str]
    # Plain values the monitoring layer sizes its thresholds from.
    allocated_storage: int
    instance_class: str

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:database:Database", name, None, opts)
        cfg, prefix = args.config, args.name_prefix
        child = pulumi.ResourceOptions(parent=self)
        identifier = naming.db_identifier(prefix)  # checked by the schema (infra/config/naming.py)

        # No rules at all: the provider removes AWS's default allow-all egress (PostgreSQL never
        # dials out), and each service that uses the database adds its own ingress on 5432.
        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=identifier,
            description="PostgreSQL: ingress only from the services that use it, added by each",
            vpc_id=args.vpc_id,
            tags=with_name(args.tags, identifier),
            opts=child,
        )
        subnets = aws.rds.SubnetGroup(
            f"{name}-subnets",
            name=identifier,
            description=f"{prefix}: isolated subnets (no route out of the VPC)",
            subnet_ids=list(args.isolated_subnet_ids),
            tags=with_name(args.tags, identifier),
            opts=child,
        )
        # The family carries the major version, so a major upgrade creates the new group beside the
        # old one instead of modifying a group the running instance still uses.
        family = cfg.parameter_group_family
        params = aws.rds.ParameterGroup(
            f"{name}-params",
            name=f"{prefix}-{family}",
            family=family,
            description=f"{prefix}: TLS only, slow statements and connections logged",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name=key, value=value, apply_method="immediate")
                for key, value in _parameters().items()
            ],
            tags=with_name(args.tags, f"{prefix}-{family}"),
            opts=child,
        )
        # Created before the instance so that RDS exports into groups with retention; the ones
        # RDS would create itself keep logs forever.
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-log-{kind}",
                name=f"/aws/rds/instance/{identifier}/{kind}",
                retention_in_days=args.log_retention_days,
                kms_key_id=args.kms_key_arn,
                tags=with_name(args.tags, f"{identifier}-{kind}"),
                opts=child,
            )
            for kind in LOG_EXPORTS
        ]

        monitoring = self._monitoring_role(name, prefix, args) if cfg.monitoring_interval else None
        final_snapshot = cfg.deletion_protection
        insights = cfg.performance_insights
        instance = aws.rds.Instance(
            f"{name}-instance",
            identifier=identifier,
            engine="postgres",
            engine_version=cfg.engine_version,
            instance_class=cfg.instance_class,
            db_name=cfg.db_name,
            username=cfg.username,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=args.kms_key_arn,
            iam_database_authentication_enabled=True,
            port=PORT,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[sg.id],
            publicly_accessible=False,
            multi_az=cfg.multi_az,
            storage_type="gp3",
            allocated_storage=cfg.allocated_storage,
            max_allocated_storage=cfg.max_allocated_storage,
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            parameter_group_name=params.name,
            ca_cert_identifier=CA_CERT,
            backup_retention_period=cfg.backup_retention_days,
            backup_window=BACKUP_WINDOW,
            maintenance_window=MAINTENANCE_WINDOW,
            copy_tags_to_snapshot=True,
            # A database worth protecting from deletion is worth its automated backups outliving it.
            delete_automated_backups=not final_snapshot,
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            auto_minor_version_upgrade=True,
            # Enhanced monitoring: OS metrics (per-process CPU and memory, disk queue) every
            # monitoring_interval seconds, which the free CloudWatch metrics do not show.
            monitoring_interval=cfg.monitoring_interval,
            monitoring_role_arn=monitoring[0].arn if monitoring else None,
            deletion_protection=cfg.deletion_protection,
            skip_final_snapshot=not final_snapshot,
            final_snapshot_identifier=f"{identifier}-final" if final_snapshot else None,
            # Protected stacks take changes that restart or fail over the instance in the
            # maintenance window, not in the middle of the day.
            apply_immediately=not args.protect,
            performance_insights_enabled=insights,
            performance_insights_kms_key_id=args.kms_key_arn if insights else None,
            performance_insights_retention_period=PERFORMANCE_INSIGHTS_DAYS if insights else None,
            tags=with_name(args.tags, identifier),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect,
                                        depends_on=[*log_groups, *(monitoring or [])]),
        )

        self.security_group_id = sg.id
        self.endpoint = instance.address
        self.port = instance.port.apply(lambda p: int(p if p is not None else PORT))
        self.db_name = cfg.db_name
        self.username = cfg.username
        self.app_username = cfg.app_username
        self.resource_id = instance.resource_id
        self.master_secret_arn = instance.master_user_secrets.apply(_master_secret_arn)
        self.instance_identifier = instance.identifier
        self.allocated_storage = cfg.allocated_storage
        self.instance_class = cfg.instance_class
        self.register_outputs({
            "security_group_id": self.security_group_id,
            "endpoint": self.endpoint,
            "port": self.port,
            "master_secret_arn": self.master_secret_arn,
            "instance_identifier": self.instance_identifier,
            "resource_id": self.resource_id,
        })

    def _monitoring_role(self, name: str, prefix: str, args: DatabaseArgs
                         ) -> tuple[aws.iam.Role, aws.iam.RolePolicyAttachment]:
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        role = aws.iam.Role(
            f"{name}-monitoring-role",
            name=f"{prefix}-db-monitoring",
            description="RDS enhanced monitoring agent: OS metrics to CloudWatch Logs (RDSOSMetrics)",
            assume_role_policy=account.apply(lambda a: json.dumps(monitoring_trust(a))),
            permissions_boundary=args.permissions_boundary_arn,
            tags=with_name(args.tags, f"{prefix}-db-monitoring"),
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-monitoring-policy",
            role=role.name,
            policy_arn=partition.apply(lambda p: ENHANCED_MONITORING_POLICY.format(partition=p)),
            opts=child,
        )
        return role, attachment


def monitoring_trust(account: str) -> dict:
    # Only RDS acting for this account (confused deputy).
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "monitoring.rds.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account}},
    }]}


def _parameters() -> dict[str, str]:
    return {
        # Clients must use TLS. RDS defaults it to 1 only from PostgreSQL 15: stated for every major.
        "rds.force_ssl": "1",
        "log_min_duration_statement": str(SLOW_STATEMENT_MS),
        "log_connections": "1",
        "log_disconnections": "1",
    }


def _master_secret_arn(secrets: Sequence[aws.rds.outputs.InstanceMasterUserSecret]) -> str:
    # With manage_master_user_password RDS always reports its secret; fail loudly if it ever does not.
    arn = secrets[0].secret_arn if secrets else None
    if not arn:
        raise ValueError("database: RDS reported no managed master user secret")
    return arn
