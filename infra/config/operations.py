"""`refarch:monitoring`, `refarch:delivery` and `refarch:usage`: how the stack is run, shipped and priced."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from infra.config.base import LOG_RETENTION_DAYS, Strict
from infra.config.deployment import ALARM_WINDOW_SECONDS, DeploymentConfig


class MonitoringConfig(Strict):
    alert_emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = []
    log_retention_days: int = 30
    # VPC flow logs, WAF logs, load balancer access logs and database logs: what an incident
    # review or an auditor asks for. Prod keeps them at least a year.
    audit_log_retention_days: int = 365
    tracing: bool = True
    container_insights: bool = True

    @field_validator("log_retention_days", "audit_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"{value} is not a CloudWatch Logs retention period: use one of {LOG_RETENTION_DAYS}")
        return value


class DeliveryConfig(Strict):
    protected: bool = True  # destroy refused, deploy only from allowed branches
    allowed_branches: list[str] = ["main"]
    # The pipeline's own alarm watch after `up`, used only when ECS did not watch the deployment
    # alarms itself (one was already in ALARM when the deployment started); 0 turns it off.
    bake_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    smoke_timeout_seconds: Annotated[int, Field(ge=1, le=120)] = 10
    rollback_on_failure: bool = True
    deployment: DeploymentConfig = DeploymentConfig()
    # Roles carry the environment's permissions boundary (`<project>-<stack>-boundary`, created by
    # ci/bootstrap): the deploy role can create no role without it. Off only for stacks deployed
    # by other means, in accounts without the bootstrap.
    permissions_boundary: bool = True

    @field_validator("bake_seconds")
    @classmethod
    def _bake(cls, value: int) -> int:
        if 0 < value < ALARM_WINDOW_SECONDS:
            raise ValueError(f"{value} s is shorter than the deployment alarms need to fire "
                             f"({ALARM_WINDOW_SECONDS} s): use 0 (off) or at least {ALARM_WINDOW_SECONDS}")
        return value


class UsageConfig(Strict):
    """Usage assumptions the cost estimate prices; nothing deploys from these."""

    requests_per_month: Annotated[float, Field(ge=0)] = 10_000_000
    alb_lcu: Annotated[float, Field(ge=0)] = 1.0  # average LCUs consumed per hour
    log_gb_per_month: Annotated[float, Field(ge=0)] = 10
    nat_gb_per_month: Annotated[float, Field(ge=0)] = 50
    backup_gb_beyond_free: Annotated[float, Field(ge=0)] = 0
    # Credit CloudWatch's always-free tier (3 dashboards, 10 alarm metrics, 5 GB logs): only true
    # when the stack has its AWS account to itself, since the tier is per account.
    cloudwatch_free_tier: bool = False
    # Data CloudFront sends to viewers (the edge's transfer out), GB a month.
    edge_gb_per_month: Annotated[float, Field(ge=0)] = 10
    # Product analytics (refarch:analytics): events the services emit, and what analysts query.
    events_per_month: Annotated[float, Field(ge=0)] = 10_000_000
    event_parquet_bytes: Annotated[float, Field(gt=0)] = 100  # one event as stored, compressed
    athena_queries_per_month: Annotated[float, Field(ge=0)] = 300
    athena_gb_per_query: Annotated[float, Field(ge=0)] = 0.1
