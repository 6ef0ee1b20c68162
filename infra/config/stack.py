"""The whole stack file: every section, and the rules that span sections."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from infra.config.analytics import AnalyticsConfig, analytics_problems
from infra.config.auth import AuthConfig, auth_problems
from infra.config.base import Strict
from infra.config.data import CacheConfig, DatabaseConfig
from infra.config.deployment import routing_problems
from infra.config.edge import EdgeConfig, edge_problems
from infra.config.flags import FlagsConfig
from infra.config.gateway import GatewayConfig
from infra.config.local import LocalConfig, Target
from infra.config.network import NetworkConfig
from infra.config.operations import DeliveryConfig, MonitoringConfig, UsageConfig
from infra.config.regions import REGION_AZS, suggest_region
from infra.config.services import DIGEST_PINNED, ServiceConfig

LISTENER_RULES_MAX = 100  # ALB quota: rules per listener, the default rule not counted


def listener_rules(deployment, services: list[ServiceConfig]) -> int:
    """Rules the layers put on the listener: one per route under `rolling`, else production + test."""
    if deployment.rolling:
        return sum(len(svc.routes) for svc in services)
    return 2 * len(services)

PROD_AUDIT_LOG_DAYS = 365
LOCAL_REGION = "us-east-1"


class StackConfig(Strict):
    environment: Literal["dev", "staging", "prod"]
    # What the stack renders to: AWS, or the Docker engine on this machine (`refarch:local` then).
    target: Target = "aws"
    region: str
    network: NetworkConfig = NetworkConfig()
    gateway: GatewayConfig = GatewayConfig()
    edge: EdgeConfig = EdgeConfig()
    auth: AuthConfig = AuthConfig()  # the token issuer of routes with auth: jwt
    services: Annotated[list[ServiceConfig], Field(min_length=1)]
    database: DatabaseConfig = DatabaseConfig()
    cache: CacheConfig = CacheConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    usage: UsageConfig = UsageConfig()
    flags: FlagsConfig = FlagsConfig()
    analytics: AnalyticsConfig = AnalyticsConfig()
    # Service name -> image pinned by digest; written by `invoke deploy`, not by hand.
    images: dict[str, str] = {}
    local: LocalConfig | None = None

    @property
    def analytics_enabled(self) -> bool:
        """Product events flow to Firehose: AWS stacks only (a local service counts them and drops them)."""
        return self.target == "aws" and self.analytics.enabled

    @property
    def local_target(self) -> LocalConfig:
        """The local target's settings (defaults when the section is left out)."""
        return self.local or LocalConfig()

    @model_validator(mode="before")
    @classmethod
    def _local_region(cls, data: object) -> object:
        # A local stack names no region; the mocks and the pipeline's types still want one, and no
        # AWS call is ever made with it.
        if isinstance(data, dict) and data.get("target") == "local" and "region" not in data:
            return {**data, "region": LOCAL_REGION}
        return data

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value not in REGION_AZS:
            raise ValueError(f"{value!r} is not an AWS region this program knows{suggest_region(value)}")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> StackConfig:
        problems: list[str] = []
        available = REGION_AZS[self.region]
        if self.network.az_count > available:
            problems.append(f"network.az_count: {self.region} has {available} availability zones, "
                            f"{self.network.az_count} asked for")
        seen: dict[str, int] = {}
        for i, svc in enumerate(self.services):
            if svc.name in seen:
                problems.append(f"services[{i}].name: {svc.name!r} is already used by services[{seen[svc.name]}]")
            seen.setdefault(svc.name, i)
        routes = [(i, j, r) for i, s in enumerate(self.services) for j, r in enumerate(s.routes)]
        for a, (i, j, route) in enumerate(routes):
            for k, m, other in routes[a + 1:]:
                if route.overlaps(other):
                    problems.append(
                        f"services[{k}].routes[{m}]: {other} overlaps {route} of services[{i}].routes[{j}]"
                    )
                elif route.shadows(other):
                    problems.append(
                        f"services[{k}].routes[{m}]: {other} is shadowed by {route} of services[{i}].routes[{j}], "
                        f"matched first: the route never receives a request"
                    )
        for name, ref in self.images.items():
            if name not in seen:
                problems.append(f"images.{name}: no service named {name!r}")
            elif self.target == "local" and re.match(r"^sha256:[0-9a-f]{64}$", ref):
                pass  # the engine's own image id (a local stack's `invoke up` builds it)
            elif not DIGEST_PINNED.match(ref):
                problems.append(f"images.{name}: {ref!r} is not pinned by digest (repo@sha256:<64 hex>)")
        problems += self._target_problems()
        problems += routing_problems(self.delivery.deployment, self.services)
        problems += edge_problems(self)
        problems += auth_problems(self)
        problems += analytics_problems(self.analytics)
        rules = listener_rules(self.delivery.deployment, self.services)
        if rules > LISTENER_RULES_MAX:
            problems.append(f"services: {rules} listener rules (production and test rules included), an ALB "
                            f"listener holds {LISTENER_RULES_MAX}")
        if self.environment == "prod":
            problems += [f"services[{i}].image: {self.environment} runs images pinned by digest "
                         f"(repo@sha256:<64 hex>), got {svc.image!r}"
                         for i, svc in enumerate(self.services) if svc.image and not DIGEST_PINNED.match(svc.image)]
        if self.environment == "prod":
            if not self.gateway.tls:
                problems.append("gateway: prod needs TLS: set certificate_arn or domain")
            if not self.database.multi_az:
                problems.append("database.multi_az: prod needs a multi-AZ database")
            if not self.database.deletion_protection:
                problems.append("database.deletion_protection: prod needs deletion protection")
            if not self.cache.failover:
                problems.append("cache.replicas: prod needs >= 1 replica for automatic failover")
            if self.network.nat != "per-az" :
                problems.append("network.nat: prod needs per-az NAT gateways (no single point of egress)")
            if not self.delivery.protected:
                problems.append("delivery.protected: prod must be protected")
            if self.monitoring.audit_log_retention_days < PROD_AUDIT_LOG_DAYS:
                problems.append(f"monitoring.audit_log_retention_days: prod keeps audit logs at least "
                                f"{PROD_AUDIT_LOG_DAYS} days (got {self.monitoring.audit_log_retention_days})")
        if self.environment in ("staging", "prod") and self.database.monitoring_interval == 0:
            problems.append(f"database.monitoring_interval: {self.environment} needs enhanced monitoring "
                            f"(1, 5, 10, 15, 30 or 60 seconds)")
        if problems:
            raise CrossFieldError(problems)
        return self


    def _target_problems(self) -> list[str]:
        if self.target == "aws":
            out = []
            if self.local is not None:
                out.append("local: only a stack with target: local reads this section")
            return out
        out = [f"{problem}" for problem in self.local_target.problems()]
        if self.environment != "dev":
            out.append(f"environment: a local stack behaves as dev (got {self.environment!r})")
        db_tag = self.local_target.image("database", major=self.database.major_version)
        match = re.search(r":(\d+)", db_tag.split("/")[-1])
        if match and match.group(1) != self.database.major_version:
            out.append(f"local.images.database: {db_tag!r} is PostgreSQL {match.group(1)}, "
                       f"database.engine_version is {self.database.major_version}")
        cache_tag = self.local_target.image("cache", version=self.cache.engine_version)
        if self.cache.engine == "valkey" and "valkey" not in cache_tag:
            out.append(f"local.images.cache: {cache_tag!r} is not Valkey, cache.engine is valkey")
        return out


class CrossFieldError(ValueError):
    """Cross-field problems, each already prefixed with its key path."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems
