"""The one typed schema for a stack file.

Every key a stack file may say is a field here. Defaults are the production-safe choice; a
stack opts out explicitly (dev says `multi_az: false`, prod never has to say `multi_az: true`).
Unknown keys are errors so that a typo never falls back silently to a default.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PROJECT = "refarch"
ENVIRONMENTS = ("dev", "staging", "prod")

# Fargate accepts only these cpu -> memory (MiB) combinations.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}

# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)

# Tiers carved from the VPC CIDR: public, private (app), isolated (data); one subnet per AZ each.
SUBNET_TIERS = 3
SUBNET_NEWBITS = 4  # 16 equal slots: enough for 3 tiers x 5 AZs
MAX_AZS = 5

# The one mutable tag of a service's repository: the registry build cache every build overwrites.
BUILD_CACHE_TAG = "buildcache"

# Environment names the platform injects itself; a service may not override them.
RESERVED_ENV = re.compile(r"^(DATABASE_|CACHE_|OTEL_|AWS_|ECS_)")
SECRET_LOOKING = re.compile(r"(PASSWORD|SECRET|TOKEN|PRIVATE_KEY|API_KEY)$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class NetworkConfig(Strict):
    cidr: str = "10.0.0.0/16"
    az_count: Annotated[int, Field(ge=2, le=MAX_AZS)] = 3
    # none: no egress at all; instance: one NAT instance (cheap, not HA);
    # single: one NAT gateway; per-az: one NAT gateway per AZ (HA).
    nat: Literal["none", "instance", "single", "per-az"] = "per-az"
    nat_instance_type: str = "t4g.nano"
    flow_logs: bool = True

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            net = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid IPv4 CIDR ({exc})") from None
        if not 16 <= net.prefixlen <= 24:
            raise ValueError(
                f"{value} leaves no room for {SUBNET_TIERS} subnet tiers x {MAX_AZS} AZs: "
                f"use a prefix between /16 and /24"
            )
        if not net.is_private:
            raise ValueError(f"{value} is not a private (RFC 1918) range")
        return value

    def subnet_cidrs(self) -> dict[str, list[str]]:
        """Public, private and isolated subnet CIDRs, one per AZ, from fixed slots."""
        slots = list(ipaddress.IPv4Network(self.cidr).subnets(prefixlen_diff=SUBNET_NEWBITS))
        tiers = ("public", "private", "isolated")
        return {
            tier: [str(slots[t * MAX_AZS + az]) for az in range(self.az_count)]
            for t, tier in enumerate(tiers)
        }


class GatewayConfig(Strict):
    # TLS: either an existing ACM certificate, or a domain in a Route 53 zone to issue one for.
    certificate_arn: str | None = None
    domain: str | None = None
    hosted_zone_id: str | None = None
    waf: bool = True
    waf_rate_limit: Annotated[int, Field(ge=100, le=2_000_000_000)] = 2000  # requests / 5 min / IP
    access_logs: bool = True
    deletion_protection: bool = True
    idle_timeout: Annotated[int, Field(ge=1, le=4000)] = 60

    @field_validator("certificate_arn")
    @classmethod
    def _cert(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/", value):
            raise ValueError(f"{value!r} is not an ACM certificate ARN")
        return value

    @model_validator(mode="after")
    def _domain_needs_zone(self) -> GatewayConfig:
        if self.domain and not self.hosted_zone_id and not self.certificate_arn:
            raise ValueError("domain needs hosted_zone_id (to validate the certificate) or certificate_arn")
        return self

    @property
    def tls(self) -> bool:
        return bool(self.certificate_arn or self.domain)


class Route(Strict):
    path: str = "/*"
    host: str | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"path {value!r} must start with '/'")
        return value

    def prefix(self) -> str:
        return re.split(r"[*?]", self.path, maxsplit=1)[0]

    def overlaps(self, other: Route) -> bool:
        if (self.host or "").lower() != (other.host or "").lower():
            return False
        if self.path == other.path:
            return True
        mine, theirs = self.prefix(), other.prefix()
        wild_mine, wild_theirs = mine != self.path, theirs != other.path
        return (wild_theirs and mine.startswith(theirs)) or (wild_mine and theirs.startswith(mine))

    def __str__(self) -> str:
        return f"{self.host or '*'}{self.path}"


class HealthCheck(Strict):
    path: str = "/health"
    interval: Annotated[int, Field(ge=5, le=300)] = 10
    timeout: Annotated[int, Field(ge=2, le=120)] = 5
    healthy_threshold: Annotated[int, Field(ge=2, le=10)] = 2
    unhealthy_threshold: Annotated[int, Field(ge=2, le=10)] = 2
    # Seconds the ALB keeps draining a deregistered task: AWS's default is 300.
    deregistration_delay: Annotated[int, Field(ge=0, le=3600)] = 15
    grace_period: Annotated[int, Field(ge=0, le=3600)] = 30
    # Container-level check (ECS does not read the image's HEALTHCHECK); None: the ALB check only.
    command: list[str] | None = None

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> HealthCheck:
        if self.timeout >= self.interval:
            raise ValueError(f"timeout ({self.timeout}s) must be shorter than interval ({self.interval}s)")
        return self

    @property
    def rollout_lower_bound(self) -> int:
        """Seconds a rolling deployment cannot beat: new targets healthy, old ones drained."""
        return self.healthy_threshold * self.interval + self.deregistration_delay


class ServiceConfig(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,23}$")]
    # Exactly one: an image reference to run as is, or a build context the pipeline builds.
    image: str | None = None
    build: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    cpu: int = 256
    memory: int = 512
    architecture: Literal["ARM64", "X86_64"] = "ARM64"
    desired_count: Annotated[int, Field(ge=0, le=1000)] = 2
    min_count: Annotated[int, Field(ge=0, le=1000)] = 2
    max_count: Annotated[int, Field(ge=1, le=1000)] = 10
    health_check: HealthCheck = HealthCheck()
    routes: Annotated[list[Route], Field(min_length=1)] = [Route()]
    # Path the deploy smoke check GETs through the gateway (expects < 400); default: first route's prefix.
    smoke_path: str | None = None
    environment: dict[str, str] = {}
    # Env var name -> Secrets Manager secret ARN (optionally ":json-key::" suffixed).
    secrets: dict[str, str] = {}
    uses_database: bool = False
    uses_cache: bool = False
    # Command run as a one-off task before a deploy switches traffic (schema migrations).
    migrate_command: list[str] | None = None
    spot_share: Annotated[int, Field(ge=0, le=100)] = 0  # percent of tasks on FARGATE_SPOT
    read_only_root_filesystem: bool = True
    # Carried as an AWS tag value, hence the character set.
    writable_root_reason: Annotated[str, Field(pattern=r"^[A-Za-z0-9 _.:/=+\-@]+$", min_length=3, max_length=256)] | None = None

    @field_validator("environment", "secrets")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not ENV_NAME.match(key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
            if RESERVED_ENV.match(key):
                raise ValueError(f"{key!r} is reserved: the platform injects DATABASE_*, CACHE_*, OTEL_*, AWS_*, ECS_*")
        return value

    @field_validator("environment")
    @classmethod
    def _no_plain_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if SECRET_LOOKING.search(key):
                raise ValueError(f"{key!r} looks like a secret: move it to `secrets` (a Secrets Manager reference)")
        return value

    @field_validator("secrets")
    @classmethod
    def _secret_refs(cls, value: dict[str, str]) -> dict[str, str]:
        for key, ref in value.items():
            if not re.match(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:", ref):
                raise ValueError(f"{key}: {ref!r} is not a Secrets Manager secret ARN")
        return value

    @property
    def smoke_url_path(self) -> str:
        return self.smoke_path or self.routes[0].prefix() or "/"

    @model_validator(mode="after")
    def _checks(self) -> ServiceConfig:
        if (self.image is None) == (self.build is None):
            raise ValueError("set exactly one of `image` (run as is) or `build` (context to build)")
        if self.memory not in FARGATE_SIZES.get(self.cpu, ()):
            if self.cpu not in FARGATE_SIZES:
                raise ValueError(f"cpu {self.cpu} is not a Fargate size: use one of {sorted(FARGATE_SIZES)}")
            allowed = FARGATE_SIZES[self.cpu]
            raise ValueError(
                f"Fargate does not accept cpu {self.cpu} with memory {self.memory}: "
                f"use memory {allowed[0]}..{allowed[-1]} in steps of {allowed[1] - allowed[0] if len(allowed) > 1 else allowed[0]}"
            )
        if not self.min_count <= self.desired_count <= self.max_count:
            raise ValueError(
                f"counts must satisfy min_count <= desired_count <= max_count "
                f"(got {self.min_count} <= {self.desired_count} <= {self.max_count})"
            )
        overlap = set(self.environment) & set(self.secrets)
        if overlap:
            raise ValueError(f"{sorted(overlap)} set in both environment and secrets")
        if not self.read_only_root_filesystem and not self.writable_root_reason:
            raise ValueError("read_only_root_filesystem: false needs writable_root_reason")
        return self


class DatabaseConfig(Strict):
    # A major version alone lets RDS apply minor upgrades without the next `up` reverting them.
    engine_version: Annotated[str, Field(pattern=r"^\d{2}(\.\d+)?$")] = "16"
    instance_class: Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")] = "db.t4g.medium"
    allocated_storage: Annotated[int, Field(ge=20, le=65536)] = 50
    max_allocated_storage: Annotated[int, Field(ge=20, le=65536)] = 200
    db_name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")] = "app"
    username: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,15}$")] = "app"
    multi_az: bool = True
    backup_retention_days: Annotated[int, Field(ge=1, le=35)] = 14
    deletion_protection: bool = True
    performance_insights: bool = True

    @model_validator(mode="after")
    def _storage(self) -> DatabaseConfig:
        if self.max_allocated_storage < self.allocated_storage:
            raise ValueError("max_allocated_storage must be >= allocated_storage")
        return self

    @property
    def major_version(self) -> str:
        return self.engine_version.split(".")[0]


class CacheConfig(Strict):
    engine: Literal["redis", "valkey"] = "valkey"
    engine_version: Annotated[str, Field(pattern=r"^\d+\.\d+$")] = "8.0"
    node_type: Annotated[str, Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")] = "cache.t4g.small"
    replicas: Annotated[int, Field(ge=0, le=5)] = 1
    snapshot_retention_days: Annotated[int, Field(ge=0, le=35)] = 7

    @property
    def failover(self) -> bool:
        return self.replicas >= 1


class MonitoringConfig(Strict):
    alert_emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = []
    log_retention_days: int = 30
    tracing: bool = True
    container_insights: bool = True

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"{value} is not a CloudWatch Logs retention period: use one of {LOG_RETENTION_DAYS}")
        return value


class DeliveryConfig(Strict):
    protected: bool = True  # destroy refused, deploy only from allowed branches
    allowed_branches: list[str] = ["main"]
    bake_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    smoke_timeout_seconds: Annotated[int, Field(ge=1, le=120)] = 10
    rollback_on_failure: bool = True


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


class StackConfig(Strict):
    environment: Literal["dev", "staging", "prod"]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]
    network: NetworkConfig = NetworkConfig()
    gateway: GatewayConfig = GatewayConfig()
    services: Annotated[list[ServiceConfig], Field(min_length=1)]
    database: DatabaseConfig = DatabaseConfig()
    cache: CacheConfig = CacheConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    usage: UsageConfig = UsageConfig()
    # Service name -> image pinned by digest; written by `invoke deploy`, not by hand.
    images: dict[str, str] = {}

    @model_validator(mode="after")
    def _cross_checks(self) -> StackConfig:
        problems: list[str] = []
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
        for name, ref in self.images.items():
            if name not in seen:
                problems.append(f"images.{name}: no service named {name!r}")
            elif not re.match(r"^[^\s@]+@sha256:[0-9a-f]{64}$", ref):
                problems.append(f"images.{name}: {ref!r} is not pinned by digest (repo@sha256:<64 hex>)")
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
        if problems:
            raise CrossFieldError(problems)
        return self


class CrossFieldError(ValueError):
    """Cross-field problems, each already prefixed with its key path."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


class ConfigError(Exception):
    """Every problem of one stack's config, one `<source>: <key path>: <what is wrong>` line each."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def parse(values: dict[str, object], stack: str, source: str) -> StackConfig:
    """Validate a stack's config (`<namespace>:<key>` -> value, as Pulumi holds it).

    Values may be JSON strings (how the Pulumi runtime passes structured config) or already
    decoded (how a stack file reads). Raises ConfigError naming every wrong field.
    """
    data: dict[str, object] = {}
    for key, value in values.items():
        namespace, _, name = key.partition(":")
        if key == "aws:region":
            data["region"] = _decode(value)
        elif namespace == PROJECT:
            data[name] = _decode(value)
    if "environment" not in data and stack in ENVIRONMENTS:
        data["environment"] = stack
    try:
        return StackConfig.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError; imported lazily by pydantic itself
        from pydantic import ValidationError

        if not isinstance(exc, ValidationError):
            raise
        raise ConfigError([f"{source}: {line}" for line in _explain(exc)]) from None


def _decode(value: object) -> object:
    import json

    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _explain(exc) -> list[str]:
    lines: list[str] = []
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, CrossFieldError):
            lines.extend(f"{PROJECT}:{problem}" for problem in cause.problems)
            continue
        loc = err["loc"]
        path = _key_path(loc)
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + _suggest(loc)
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if "input" in err and err["type"] not in ("value_error",) and not isinstance(err["input"], (dict, list)):
                msg += f" (got {err['input']!r})"
        lines.append(f"{path}: {msg}")
    return lines


def _key_path(loc: tuple) -> str:
    if not loc:
        return f"{PROJECT}"
    head, *rest = loc
    if head == "region":
        path = "aws:region"
    else:
        path = f"{PROJECT}:{head}"
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _suggest(loc: tuple) -> str:
    import difflib

    model: type[BaseModel] | None = StackConfig
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _model_of(field.annotation) if field else None
    if model is None:
        return ""
    known = list(model.model_fields)
    match = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return f" (did you mean {match[0]!r}?)" if match else f" (known keys: {', '.join(known)})"


def _model_of(annotation) -> type[BaseModel] | None:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found:
            return found
    return None
