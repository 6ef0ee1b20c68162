"""The AWS target: composes the layers from the typed stack config and exports what the delivery
pipeline needs. Importing it registers nothing; `build` runs inside the Pulumi runtime (or its mocks).
"""

from __future__ import annotations

import pulumi

from infra import config as cfg
from infra.aws.analytics import Analytics, AnalyticsArgs
from infra.aws.auth import Auth, AuthArgs
from infra.aws.autoscaling import Autoscaling, AutoscalingArgs
from infra.aws.cache import Cache, CacheArgs
from infra.aws.database import Database, DatabaseArgs
from infra.aws.edge import Edge, EdgeArgs
from infra.aws.encryption import Encryption, EncryptionArgs
from infra.aws.flags import Flags, FlagsArgs, flag_names
from infra.aws.gateway import Gateway, GatewayArgs
from infra.aws.identity import permissions_boundary_arn
from infra.aws.monitoring import Monitoring, MonitoringArgs
from infra.aws.network import Network, NetworkArgs
from infra.aws.services import Services, ServicesArgs
from infra.aws.web_client import WebClient, WebClientArgs
from infra.config import naming
from infra.config.auth import cognito_of, needs_tokens, required_scopes
from infra.tags import base_tags


def build(config: cfg.StackConfig) -> None:
    stack = pulumi.get_stack()
    project = pulumi.get_project()
    prefix = naming.name_prefix(stack, project)
    tags = base_tags(project, stack, config.environment)
    prod = config.environment == "prod"

    # Application logs follow monitoring.log_retention_days; audit logs (flow, WAF, access,
    # database) monitoring.audit_log_retention_days.
    audit_days = config.monitoring.audit_log_retention_days
    boundary = permissions_boundary_arn(prefix, config.delivery.permissions_boundary)

    encryption = Encryption("encryption", EncryptionArgs(name_prefix=prefix, region=config.region, tags=tags))

    network = Network("network", NetworkArgs(
        config=config.network,
        name_prefix=prefix,
        log_retention_days=audit_days,
        kms_key_arn=encryption.key_arn,
        tags=tags,
        permissions_boundary_arn=boundary,
    ))

    gateway = Gateway("gateway", GatewayArgs(
        config=config.gateway,
        name_prefix=prefix,
        vpc_id=network.vpc_id,
        subnet_ids=network.private_subnet_ids,
        kms_key_arn=encryption.key_arn,
        audit_log_retention_days=audit_days,
        tags=tags,
        fetches_jwks=any(r.auth_enforced_by == "alb" for svc in config.services for r in svc.routes),
    ))

    web_client = WebClient("web-client", WebClientArgs(
        name_prefix=prefix, force_destroy=not prod, tags=tags,
    )) if config.edge.web_client else None
    edge = Edge("edge", EdgeArgs(
        config=config,
        name_prefix=prefix,
        gateway=gateway,
        web_client=web_client,
        kms_key_arn=encryption.key_arn,
        audit_log_retention_days=audit_days,
        tags=tags,
    ))
    # Clients, the pipeline's smoke check and the deployment smoke hook (a Lambda outside the VPC)
    # all reach the now-internal gateway through the edge.
    gateway.url = edge.url

    # The token issuer of routes with auth: jwt: a Cognito pool unless the stack names its own.
    auth = Auth("auth", AuthArgs(
        config=config.auth,
        cognito=cognito_of(config),
        scopes=required_scopes(config),
        name_prefix=prefix,
        region=config.region,
        kms_key_arn=encryption.key_arn,
        protect=prod,
        tags=tags,
    )) if needs_tokens(config) else None

    database = Database("database", DatabaseArgs(
        config=config.database,
        name_prefix=prefix,
        vpc_id=network.vpc_id,
        isolated_subnet_ids=network.isolated_subnet_ids,
        kms_key_arn=encryption.key_arn,
        log_retention_days=audit_days,
        protect=prod,
        tags=tags,
        permissions_boundary_arn=boundary,
    ))

    cache = Cache("cache", CacheArgs(
        config=config.cache,
        name_prefix=prefix,
        vpc_id=network.vpc_id,
        isolated_subnet_ids=network.isolated_subnet_ids,
        kms_key_arn=encryption.key_arn,
        log_retention_days=config.monitoring.log_retention_days,
        protect=prod,
        tags=tags,
    ))

    # Product events: Firehose -> Parquet in S3 -> Glue -> Athena (docs/analytics.md).
    analytics = Analytics("analytics", AnalyticsArgs(
        config=config.analytics,
        name_prefix=prefix,
        region=config.region,
        kms_key_arn=encryption.key_arn,
        log_retention_days=config.monitoring.log_retention_days,
        force_destroy=not prod,
        tags=tags,
        permissions_boundary_arn=boundary,
    )) if config.analytics_enabled else None

    services = Services("services", ServicesArgs(
        services=config.services,
        images=config.images,
        name_prefix=prefix,
        region=config.region,
        vpc_id=network.vpc_id,
        private_subnet_ids=network.private_subnet_ids,
        gateway=gateway,
        database=database,
        cache=cache,
        log_retention_days=config.monitoring.log_retention_days,
        kms_key_arn=encryption.key_arn,
        tracing=config.monitoring.tracing,
        container_insights=config.monitoring.container_insights,
        tags=tags,
        deployment=config.delivery.deployment,
        smoke_timeout_seconds=config.delivery.smoke_timeout_seconds,
        permissions_boundary_arn=boundary,
        auth=auth,
        flags=flag_names(prefix, config.environment, config.flags) if config.flags.declared else None,
        analytics=analytics,
    ))

    Autoscaling("autoscaling", AutoscalingArgs(
        services=config.services,
        deployed=services.deployed,
        gateway=gateway,
        tags=tags,
    ))

    monitoring = Monitoring("monitoring", MonitoringArgs(
        config=config.monitoring,
        services=config.services,
        name_prefix=prefix,
        region=config.region,
        kms_key_arn=encryption.key_arn,
        gateway=gateway,
        deployed=services.deployed,
        cluster_name=services.cluster_name,
        database=database,
        cache=cache,
        tags=tags,
        analytics=analytics,
    ))

    flags = Flags("flags", FlagsArgs(
        config=config.flags, environment=config.environment, name_prefix=prefix, region=config.region,
        health_alarm_names=monitoring.all_health_alarm_names,
        task_role_names={name: d.task_role_name for name, d in services.deployed.items() if d.task_role_name},
        tags=tags, permissions_boundary_arn=boundary,
    )) if config.flags.declared else None

    # The ALB is internal: the pipeline's smoke check (and every viewer) goes through the edge.
    pulumi.export("gateway_url", edge.url)
    pulumi.export("edge_url", edge.url)
    pulumi.export("distribution_id", edge.distribution_id)
    pulumi.export("web_client_bucket", web_client.bucket_name if web_client else None)
    pulumi.export("cluster_name", services.cluster_name)
    pulumi.export("private_subnet_ids", network.private_subnet_ids)
    pulumi.export("services", {
        svc.name: {
            "service_name": services.deployed[svc.name].service_name,
            "target_group_arn": services.deployed[svc.name].target_group_arn,
            # ECS alternates a traffic-shifting service between the two; None under `rolling`.
            "alternate_target_group_arn": services.deployed[svc.name].alternate_target_group_arn,
            "deployment_strategy": config.delivery.deployment.strategy,
            "repository_url": services.deployed[svc.name].repository_url,
            "security_group_id": services.deployed[svc.name].security_group_id,
            "task_definition_arn": services.deployed[svc.name].task_definition_arn,
            "migration_task_definition_arn": services.deployed[svc.name].migration_task_definition_arn,
            "migration_task_definition_urn": services.deployed[svc.name].migration_task_definition_urn,
            "log_group_name": services.deployed[svc.name].log_group_name,
            "routes": [route.path for route in svc.routes],
            "health_check_path": svc.health_check.path,
            "health_alarm_names": monitoring.health_alarm_names[svc.name],
            # The alarms the ECS service itself rolls back on.
            "deployment_alarm_names": monitoring.deployment_alarm_names[svc.name],
        }
        for svc in config.services
    })
    pulumi.export("health_alarm_names", monitoring.all_health_alarm_names)
    pulumi.export("database_endpoint", database.endpoint)
    pulumi.export("cache_endpoint", cache.endpoint)
    pulumi.export("alert_topic_arn", monitoring.alert_topic_arn)
    pulumi.export("dashboard_name", monitoring.dashboard_name)
    # The client secret stays in Secrets Manager: only its ARN is an output.
    if auth is not None:
        pulumi.export("auth", {
            "issuer": auth.issuer,
            "jwks_url": auth.jwks_url,
            "token_endpoint": auth.token_endpoint,
            "client_id": auth.client_id,
            "client_secret_arn": auth.client_secret_arn,
        })
    pulumi.export("flags", {"application_id": flags.application_id, "environment_id": flags.environment_id,
                            "profile_id": flags.profile_id, "strategy_id": flags.strategy_id} if flags else None)
    pulumi.export("analytics", {
        "stream_name": analytics.stream_name,
        "bucket_name": analytics.bucket_name,
        "database_name": analytics.database_name,
        "workgroup_name": analytics.workgroup_name,
        "reader_role_arn": analytics.reader_role_arn,
    } if analytics else None)
